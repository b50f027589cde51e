import { createHash } from 'node:crypto';
import type { Delivery } from '@switchboard/core';
import { AtMostOnceDelivery, type PushSubscription, type ReceivedFields } from '@switchboard/core/kit';
import type { Redis } from 'ioredis';
import { decodeFrame, isFrame, PLAIN_HEADERS, plainMessageId } from './pubsub-codec.js';

const RESOLVED: Promise<void> = Promise.resolve();
/** `ack` and `nack` of every delivery: nothing to settle on pub/sub. */
const settled = (): Promise<void> => RESOLVED;
const JOIN = 'join:';
const LEAVE = 'leave:';
const HERE = 'here:';
const WHO = 'who';
/** How long a joining member waits to hear from the members already there before receiving. */
const MEMBERS_WAIT_MS = 1000;

/** A plain message: a structured CloudEvent document, named by its `id` (read only when asked). */
class PlainDelivery extends AtMostOnceDelivery {
  protected readFields(): ReceivedFields {
    return { id: plainMessageId(this.body), headers: PLAIN_HEADERS, key: undefined };
  }
}

/** FNV-1a: spreads claim tokens over the members. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface MemberConfig {
  readonly id: string;
  readonly topic: string;
  readonly group: string;
  /** Every message of the topic. */
  readonly topicChannel: string;
  /** The group's members listen here; a joining member announces itself here. */
  readonly groupChannel: string;
  readonly claimKeyPrefix: string;
  readonly claimTtlMs: number;
  /** How long a member that is not a delivery's preferred member waits before claiming it too (in case that one is gone). */
  readonly fallbackClaimDelayMs: number;
  readonly membershipIntervalMs: number;
  /** The broker's command connection (claims, PUBLISH, PUBSUB NUMSUB). */
  readonly commands: Redis;
  /** This member's own subscriber connection. */
  readonly subscriber: Redis;
  readonly onError: (error: unknown, action: string) => void;
}

/**
 * One subscriber of a group on Redis pub/sub, which has no groups: every connection subscribed to
 * a channel gets every message. Balancing is built on top:
 *
 * - A member alone in its group (the common case) handles every message with no extra command.
 * - When the group has several members, each delivery is claimed first with
 *   `SET <claim> <member> NX PX <claimTtlMs>`: exactly one member wins and handles it. The
 *   members know each other (`join` / `here` / `leave` on the group channel); a hash of the
 *   publish's nonce names a preferred member, which claims at once, while the others claim
 *   `fallbackClaimDelayMs` later, only winning when the preferred one is gone or slow. Views of the
 *   membership that differ for a moment change who claims first, never how many handle it.
 * - Members learn about each other without polling the hot path. A joining member subscribes to the
 *   group channel, then PUBLISHes `join` there (the reply counts the members), and only then
 *   subscribes to the topic. Redis delivers a connection's messages in the order it processed
 *   them, so every older member sees `join` before any message the newcomer can receive: no
 *   message reaches two members unclaimed. A member goes back to claim-free mode only when
 *   `PUBSUB NUMSUB` says it is alone and no `join` arrived since it asked.
 */
export class PubSubMember {
  readonly #config: MemberConfig;
  readonly #subscription: PushSubscription;
  #shared = false;
  /** Known members of the group, this one included, sorted. */
  #members: string[];
  #joinsSeen = 0;
  #pendingClaims = 0;
  #tail: Promise<void> = RESOLVED;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #stopped = false;
  /** While starting: how many members to wait for, and what to call once they are known. */
  #knowing: { readonly count: number; readonly done: () => void } | undefined;

  constructor(config: MemberConfig, subscription: PushSubscription) {
    this.#config = config;
    this.#subscription = subscription;
    this.#members = [config.id];
  }

  /** Announces itself to the group, then starts receiving the topic. */
  async start(): Promise<void> {
    const { subscriber, commands, groupChannel, topicChannel, id } = this.#config;
    subscriber.on('messageBuffer', this.#onMessage);
    await subscriber.subscribe(groupChannel);
    const members = await commands.publish(groupChannel, `${JOIN}${id}`);
    if (members > 1) {
      this.#share();
      // Learn who the others are (their `here` answers) before the first message: a newcomer that
      // knows only itself would take itself for the preferred member of every delivery, claim them
      // all at once and leave the others nothing until it learns better.
      await this.#know(members);
    }
    await subscriber.subscribe(topicChannel);
  }

  /** Resolves once `count` members are known, or after MEMBERS_WAIT_MS (a member may have gone meanwhile). */
  #know(count: number): Promise<void> {
    if (this.#members.length >= count) return RESOLVED;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#knowing = undefined;
        resolve();
      };
      const timer = setTimeout(done, MEMBERS_WAIT_MS);
      timer.unref();
      this.#knowing = { count, done };
    });
  }

  /** Stops receiving the topic and tells the group (so the others may stop claiming sooner). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    const { subscriber, commands, groupChannel, topicChannel, id } = this.#config;
    await subscriber.unsubscribe(topicChannel, groupChannel).catch(() => {});
    await commands.publish(groupChannel, `${LEAVE}${id}`).catch(() => {});
    await this.#tail;
  }

  readonly #onMessage = (channelBytes: Buffer, message: Buffer): void => {
    const channel = channelBytes.toString();
    if (channel === this.#config.topicChannel) {
      this.#receive(message);
      return;
    }
    if (channel !== this.#config.groupChannel) return;
    const text = message.toString();
    const { id, commands, groupChannel } = this.#config;
    if (text.startsWith(JOIN)) {
      const other = text.slice(JOIN.length);
      if (other === id) return;
      this.#joinsSeen++;
      this.#addMember(other);
      this.#share();
      commands.publish(groupChannel, `${HERE}${id}`).catch((error: unknown) => this.#config.onError(error, 'answer a join'));
    } else if (text.startsWith(HERE)) {
      this.#addMember(text.slice(HERE.length));
    } else if (text.startsWith(LEAVE)) {
      const other = text.slice(LEAVE.length);
      this.#members = this.#members.filter((member) => member !== other);
      void this.#check();
    } else if (text === WHO && !this.#stopped) {
      commands.publish(groupChannel, `${HERE}${id}`).catch((error: unknown) => this.#config.onError(error, 'answer a roll call'));
    }
  };

  #receive(message: Buffer): void {
    let delivery: Delivery;
    let nonce: string | undefined;
    if (isFrame(message)) {
      const frame = decodeFrame(message);
      if (frame === undefined) {
        this.#subscription.dropped({ id: '' }, 'malformed');
        return;
      }
      nonce = frame.nonce;
      delivery = {
        id: frame.id,
        topic: this.#config.topic,
        headers: frame.headers,
        body: frame.body,
        ...(frame.key === undefined ? {} : { key: frame.key }),
        attempt: 1,
        ack: settled,
        nack: settled,
      };
    } else {
      delivery = new PlainDelivery(this.#config.topic, message);
    }
    if (!this.#shared && this.#pendingClaims === 0) {
      this.#subscription.push(delivery);
      return;
    }
    // Claimed or not, deliveries keep their arrival order behind the claims still in flight.
    this.#pendingClaims++;
    const claim: Promise<boolean | Error> = this.#shared ? this.#claim(nonce, delivery.body) : Promise.resolve(true);
    this.#tail = this.#tail
      .then(() => claim)
      .then((won) => {
        this.#pendingClaims--;
        if (won === true) this.#subscription.push(delivery);
        else if (won instanceof Error) this.#subscription.dropped(delivery, 'claim-failed', won);
      });
  }

  /**
   * Claims a delivery for this member: at once when it is the preferred member, after
   * `fallbackClaimDelayMs` otherwise. An unframed message (a plain CloudEvent) is named by its
   * bytes: a second publish of the very same event within claimTtlMs is the same event to the
   * group, handled once.
   */
  #claim(nonce: string | undefined, body: Uint8Array): Promise<boolean | Error> {
    const { commands, claimKeyPrefix, claimTtlMs, fallbackClaimDelayMs, id } = this.#config;
    const token = nonce ?? `d:${createHash('sha256').update(body).digest('base64url')}`;
    const tryClaim = (): Promise<boolean | Error> =>
      commands.set(`${claimKeyPrefix}${token}`, id, 'PX', claimTtlMs, 'NX').then(
        (reply) => reply === 'OK',
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
    const members = this.#members;
    if (members[hash(token) % members.length] === id) return tryClaim();
    return new Promise<void>((resolve) => setTimeout(resolve, fallbackClaimDelayMs)).then(tryClaim);
  }

  #addMember(member: string): void {
    if (this.#members.includes(member)) return;
    this.#members = [...this.#members, member].sort();
    if (this.#knowing !== undefined && this.#members.length >= this.#knowing.count) this.#knowing.done();
  }

  #share(): void {
    this.#shared = true;
    if (this.#timer === undefined && !this.#stopped) {
      this.#timer = setInterval(() => void this.#check(), this.#config.membershipIntervalMs);
      this.#timer.unref();
    }
  }

  /** Back to claim-free mode when this member is alone in its group. */
  async #check(): Promise<void> {
    if (!this.#shared || this.#checking || this.#stopped) return;
    this.#checking = true;
    const joinsBefore = this.#joinsSeen;
    try {
      const reply = (await this.#config.commands.pubsub('NUMSUB', this.#config.groupChannel)) as unknown[];
      const count = Number(reply[1] ?? 0);
      if (this.#stopped || this.#joinsSeen !== joinsBefore) return;
      if (count <= 1) {
        this.#shared = false;
        this.#members = [this.#config.id];
        clearInterval(this.#timer);
        this.#timer = undefined;
      } else if (count !== this.#members.length) {
        // A member vanished without a word (crash) or one is not known yet: roll call.
        this.#members = [this.#config.id];
        await this.#config.commands.publish(this.#config.groupChannel, WHO);
      }
    } catch (error) {
      this.#config.onError(error, 'count the members of a group');
    } finally {
      this.#checking = false;
    }
  }
}
