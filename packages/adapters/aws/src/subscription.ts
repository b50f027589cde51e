import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { backoffDelay, isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { DeliveryTracker, idle } from '@switchboard/core/kit';
import { Lease, type Outcome, SqsDelivery } from './delivery.js';
import { isQueueMissing } from './errors.js';
import { QueueSettler } from './settle.js';
import type { GroupQueue } from './topology.js';
import { ATTRIBUTE, type DecodedMessage, decodeMessage, type PayloadPointer } from './wire.js';

/** Most messages one `ReceiveMessage` returns. */
const RECEIVE_MAX = 10;
/** The system attributes read with every message. */
const SYSTEM_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SentTimestamp',
  'MessageGroupId',
  'MessageDeduplicationId',
  'SequenceNumber',
] as const;
/** Header telling a handler (and a dead letter) why an extended-client pointer was delivered as it came. */
export const PAYLOAD_ERROR_HEADER = 'sb-payload-error';

/** Codes of a payload that cannot be read however often it is tried. */
const PERMANENT_PAYLOAD = ['SB_DATAREF_REFUSED', 'SB_CLAIM_CHECK_MISSING', 'SB_CLAIM_CHECK_HASH_MISMATCH', 'SB_MESSAGE_TOO_LARGE'] as const;

export interface SqsSubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  readonly sqs: SQSClient;
  readonly queue: GroupQueue;
  /** Creates the group's topology again after SQS said its queue does not exist (`create` mode); `undefined` in `verify` mode. */
  readonly redeclare: (() => Promise<GroupQueue>) | undefined;
  readonly handler: DeliveryHandler;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  /** Visibility of a receive, in seconds: how long a message stays hidden if this process dies. Heartbeats renew it. */
  readonly leaseSeconds: number;
  readonly waitTimeSeconds: number;
  readonly receiveLoops: number;
  readonly drainTimeoutMs: number;
  /** Reads the body an AWS extended-client pointer names (S3). */
  readonly fetchPayload: ((pointer: PayloadPointer) => Promise<Uint8Array>) | undefined;
  readonly report: (error: unknown, action: string) => void;
  readonly onClosed: (subscription: SqsSubscription) => void;
}

/** A message of a receive not yet handed to the handler: read, and for FIFO waiting for the one before it. */
interface Received {
  readonly message: Message;
  readonly decoded: DecodedMessage;
  readonly lease: Lease;
  readonly attempt: number;
}

/**
 * A consumer group's subscription on its SQS queue. `receiveLoops` long-poll loops each ask for no
 * more messages than there are free slots (at most 10), so SQS never hides more messages for this
 * process than it can work on; an empty receive is normal, an error backs off. Deliveries go
 * through the kit's `DeliveryTracker` (slots, ack deadlines, handler runs, drain). A heartbeat
 * renews the visibility of every message held or handed out and not settled, in batches, within
 * SQS's 12-hour cap; a handle that stopped working expires its delivery and aborts its signal.
 *
 * FIFO: messages of one `MessageGroupId` in a receive run one after the other; when one is not
 * acknowledged (nacked, failed, expired), the later ones of its group in that receive are neither
 * handed out nor acknowledged: they are made visible again, behind it.
 *
 * `close` stops asking, lets the long polls running finish (an aborted poll can still take a
 * message on the server, which would then stay hidden until its visibility ends) and makes what
 * they bring visible again at once, drains the handlers, and releases what is left.
 */
export class SqsSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #config: SqsSubscriptionConfig;
  readonly #tracker: DeliveryTracker<SqsDelivery>;
  readonly #held = new Set<Lease>();
  readonly #chains = new Set<Promise<void>>();
  #queue: GroupQueue;
  #settler: QueueSettler;
  #asking = 0;
  #waiters: (() => void)[] = [];
  #loops: Promise<void>[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #beats = new Map<Lease, Promise<void>>();
  #closing: Promise<void> | undefined;
  #redeclaring: Promise<void> | undefined;

  constructor(config: SqsSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#queue = config.queue;
    this.#settler = new QueueSettler(config.sqs, () => this.#queue.queueUrl);
    this.#tracker = new DeliveryTracker<SqsDelivery>({
      maxInFlight: config.maxInFlight,
      ackTimeoutMs: config.ackTimeoutMs,
      handler: config.handler,
      report: config.report,
    });
  }

  /** The queue this subscription reads (changes when it was created again). */
  get queue(): GroupQueue {
    return this.#queue;
  }

  start(): void {
    for (let i = 0; i < this.#config.receiveLoops; i++) this.#loops.push(this.#loop());
    const every = Math.max(200, Math.floor((this.#config.leaseSeconds * 1000) / 3));
    this.#heartbeat = setInterval(() => this.#beat(), every);
    this.#heartbeat.unref();
  }

  /** Slots neither handed out, nor held for a FIFO predecessor, nor asked for by another poll. */
  #wanted(): number {
    return this.#tracker.free - this.#held.size - this.#asking;
  }

  /** Resolves when an ask ended or a held message left (or after `ms`). */
  #changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #loop(): Promise<void> {
    let failures = 0;
    let quickEmpties = 0;
    while (!this.#tracker.closing) {
      const wanted = Math.min(RECEIVE_MAX, this.#wanted());
      if (wanted <= 0) {
        // Free slots taken by another poll's ask or by held messages: wait for those to end; else for a slot.
        if (this.#tracker.free > 0) await this.#changed(250);
        else await this.#tracker.waitForCapacity(1);
        continue;
      }
      this.#asking += wanted;
      const startedAt = Date.now();
      let messages: Message[];
      try {
        const answer = await this.#config.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#queue.queueUrl,
            MaxNumberOfMessages: wanted,
            WaitTimeSeconds: this.#config.waitTimeSeconds,
            VisibilityTimeout: this.#config.leaseSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: [...SYSTEM_ATTRIBUTES],
          }),
        );
        messages = answer.Messages ?? [];
        failures = 0;
      } catch (error) {
        this.#asking -= wanted;
        this.#notify();
        failures += 1;
        if (isQueueMissing(error) && this.#config.redeclare !== undefined) {
          this.#config.report(error, `receive from ${this.#queue.queueName}: the queue is gone, creating it again`);
          await this.#redeclare();
        } else {
          this.#config.report(error, `receive from ${this.#queue.queueName}`);
        }
        if (!this.#tracker.closing) await idle(backoffDelay(failures, { baseMs: 100, maxMs: 20_000, jitter: 'equal' }));
        continue;
      }
      this.#asking -= wanted;
      this.#notify();
      if (this.#tracker.closing) {
        this.#releaseAll(messages);
        break;
      }
      if (messages.length === 0) {
        // An empty long poll that came back at once (another poll was woken for the same message): pause a little.
        if (this.#config.waitTimeSeconds > 0 && Date.now() - startedAt < 50) {
          quickEmpties += 1;
          await idle(Math.min(1000, 25 * 2 ** quickEmpties));
        } else quickEmpties = 0;
        continue;
      }
      quickEmpties = 0;
      this.#accept(messages, startedAt);
    }
  }

  #redeclare(): Promise<void> {
    this.#redeclaring ??= (async () => {
      try {
        const queue = await this.#config.redeclare?.();
        if (queue !== undefined) this.#queue = queue;
      } catch (error) {
        this.#config.report(error, `create the queue of ${this.topic}/${this.group} again`);
      } finally {
        this.#redeclaring = undefined;
      }
    })();
    return this.#redeclaring;
  }

  #accept(messages: readonly Message[], receivedAt: number): void {
    const visibleUntil = Date.now() + this.#config.leaseSeconds * 1000;
    const received: Received[] = messages.map((message) => {
      const lease = new Lease(message.ReceiptHandle ?? '', receivedAt, visibleUntil);
      this.#held.add(lease);
      const count = Number(message.Attributes?.ApproximateReceiveCount);
      return { message, decoded: decodeMessage(message), lease, attempt: Number.isSafeInteger(count) && count > 0 ? count : 1 };
    });
    if (!this.#queue.fifo) {
      for (const item of received) this.#track(this.#dispatch(item));
      return;
    }
    const groups = new Map<string, Received[]>();
    for (const item of received) {
      const group = item.message.Attributes?.MessageGroupId ?? '';
      const chain = groups.get(group);
      if (chain === undefined) groups.set(group, [item]);
      else chain.push(item);
    }
    for (const chain of groups.values()) this.#track(this.#runChain(chain));
  }

  #track(work: Promise<unknown>): void {
    const tracked: Promise<void> = work.then(
      () => undefined,
      (error: unknown) => this.#config.report(error, 'dispatch'),
    );
    this.#chains.add(tracked);
    void tracked.finally(() => this.#chains.delete(tracked));
  }

  /** One FIFO group's messages of a receive, in order: the next is handed out only once the one before it was acknowledged. */
  async #runChain(chain: readonly Received[]): Promise<void> {
    for (let i = 0; i < chain.length; i++) {
      const item = chain[i]!;
      const outcome = item.lease.lost || this.#tracker.closing ? undefined : await this.#dispatch(item);
      if (outcome !== 'acked') {
        // Not processed, not acknowledged: visible again, behind the one that did not succeed.
        const rest = outcome === undefined ? chain.slice(i) : chain.slice(i + 1);
        await Promise.all(rest.map((later) => this.#release(later.lease)));
        return;
      }
    }
  }

  /** Hands a received message to the handler (after reading its S3 payload, if it has one); resolves to how it ended. */
  async #dispatch(item: Received): Promise<Outcome | undefined> {
    const { decoded, lease } = item;
    let body = decoded.body;
    const headers = decoded.headers;
    if (decoded.pointer !== undefined) {
      try {
        if (this.#config.fetchPayload === undefined) {
          throw new SwitchboardError('SB_DATAREF_REFUSED', { detail: 'the message points to S3, and no payload store is configured' });
        }
        body = await this.#config.fetchPayload(decoded.pointer);
      } catch (error) {
        const code = isSwitchboardError(error) ? error.code : (error as { code?: string }).code;
        if (!PERMANENT_PAYLOAD.includes(code as (typeof PERMANENT_PAYLOAD)[number])) {
          // S3 unreachable: try again later (the receive count grows; the redrive backstop stays in force).
          this.#config.report(error, `read the S3 payload of a message from ${this.#queue.queueName}`);
          await this.#release(lease, Math.max(1, Math.ceil(backoffDelay(item.attempt, { baseMs: 1000, maxMs: 60_000 }) / 1000)));
          return undefined;
        }
        // Never readable: delivered as it came (the pointer), so the consumer dead-letters it with its reason.
        body = new Uint8Array(Buffer.from(decoded.pointer.text, 'utf8'));
        headers[ATTRIBUTE.extendedPayloadSize] = String(decoded.pointer.size ?? '');
        headers[PAYLOAD_ERROR_HEADER] = error instanceof Error ? error.message : String(error);
      }
    }
    if (lease.lost || this.#tracker.closing) {
      await this.#release(lease);
      return undefined;
    }
    this.#held.delete(lease);
    const delivery = new SqsDelivery(
      {
        id: decoded.id,
        topic: this.topic,
        headers,
        body: body ?? new Uint8Array(0),
        key: decoded.key,
        attempt: item.attempt,
      },
      lease,
      { settler: this.#settler, report: this.#config.report, beat: (beating) => this.#beats.get(beating) },
    );
    this.#tracker.dispatch(delivery);
    return delivery.outcome;
  }

  /** Makes a held message visible again (in `seconds`) without handing it out. */
  async #release(lease: Lease, seconds = 0): Promise<void> {
    if (this.#held.delete(lease)) this.#notify();
    if (lease.lost) return;
    await this.#beats.get(lease);
    try {
      await this.#settler.visibility(lease.handle, seconds);
    } catch (error) {
      this.#config.report(error, 'release a message');
    }
  }

  #releaseAll(messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.ReceiptHandle === undefined) continue;
      this.#track(this.#settler.visibility(message.ReceiptHandle, 0));
    }
  }

  /** Renews the visibility of every message held or handed out whose renewal is due (a third of the lease left to run out). */
  #beat(): void {
    const now = Date.now();
    const leaseMs = this.#config.leaseSeconds * 1000;
    const due = (lease: Lease) => !lease.lost && !this.#beats.has(lease) && lease.visibleUntil - now < (leaseMs * 2) / 3;
    for (const delivery of this.#tracker.deliveries()) {
      if (due(delivery.lease)) this.#renew(delivery.lease, now, delivery);
    }
    for (const lease of this.#held) if (due(lease)) this.#renew(lease, now, undefined);
  }

  #renew(lease: Lease, now: number, delivery: SqsDelivery | undefined): void {
    const seconds = Math.min(this.#config.leaseSeconds, lease.remainingSeconds(now));
    // At the 12-hour cap nothing more can be asked: the message becomes visible and is redelivered.
    if (seconds <= 0) return;
    const beat = this.#settler.visibility(lease.handle, seconds).then(
      (result) => {
        if (result === 'done') {
          lease.visibleUntil = now + seconds * 1000;
          return;
        }
        lease.lost = true;
        if (delivery !== undefined && !delivery.settled) delivery.markLost();
      },
      (error: unknown) => this.#config.report(error, 'renew the visibility of a message'),
    );
    this.#beats.set(lease, beat);
    void beat.finally(() => this.#beats.delete(lease));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const drained = this.#tracker.close(this.#config.drainTimeoutMs);
    this.#notify();
    await Promise.all(this.#loops);
    while (this.#chains.size > 0) await Promise.all([...this.#chains]);
    await drained;
    clearInterval(this.#heartbeat);
    await Promise.all([...this.#beats.values()]);
    this.#config.onClosed(this);
  }
}
