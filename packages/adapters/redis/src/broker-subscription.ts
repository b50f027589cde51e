import { randomBytes } from 'node:crypto';
import type { Delivery, DeliveryHandler, Headers, Subscription } from '@switchboard/core';
import { backoffDelay, type SwitchboardError } from '@switchboard/core';
import { AckDeadlines, sleep } from '@switchboard/core/kit';
import type { Redis } from 'ioredis';
import type { DecodedEntry, RawEntry } from './broker-codec.js';
import { decodeFields, parseEntries, parseReadReply } from './broker-codec.js';

/** What a subscription needs from its broker. */
export interface StreamGroupContext {
  readonly topic: string;
  readonly group: string;
  readonly streamKey: string;
  /** Sorted set of entry ids nacked with a delay, scored by the time they are due again. */
  readonly delayedKey: string;
  readonly commands: Redis;
  readonly blocking: Redis;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly claimIntervalMs: number;
  readonly drainTimeoutMs: number;
  readonly ensureGroup: (startId: '$' | '0') => Promise<void>;
  readonly report: (error: unknown, action: string) => void;
  readonly toError: (error: unknown, action: string) => SwitchboardError;
  readonly onClosed: (subscription: RedisStreamSubscription) => void;
}

type Settlement = { readonly kind: 'ack' } | { readonly kind: 'nack'; readonly delayMs: number };

class RedisDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly entryId: string;
  /** The local ack timeout passed: its slot was given back, the engine will redeliver it. */
  expired = false;
  #settled: Promise<void> | undefined;
  readonly #owner: RedisStreamSubscription;

  constructor(owner: RedisStreamSubscription, topic: string, entryId: string, decoded: DecodedEntry, attempt: number) {
    this.#owner = owner;
    this.topic = topic;
    this.entryId = entryId;
    this.id = decoded.id;
    this.headers = decoded.headers;
    this.body = decoded.body;
    if (decoded.key !== undefined) this.key = decoded.key;
    this.attempt = attempt;
  }

  get settled(): boolean {
    return this.#settled !== undefined;
  }

  ack(): Promise<void> {
    this.#settled ??= this.#owner.settle(this, { kind: 'ack' });
    return this.#settled;
  }

  nack(delayMs = 0): Promise<void> {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs) : 0;
    this.#settled ??= this.#owner.settle(this, { kind: 'nack', delayMs: delay });
    return this.#settled;
  }
}

/** The acks of one tick: one XACK, one promise for all of them. */
interface AckBatch {
  readonly entryIds: string[];
  readonly done: Promise<void>;
}

const END_OF_PEL = '0-0';

/**
 * One consumer of a consumer group. A single loop does everything in turn, so nothing competes for
 * the in-flight slots: hand due delayed entries back, reclaim entries idle past `ackTimeoutMs`
 * (XAUTOCLAIM), then read new entries with XREADGROUP on the dedicated blocking connection,
 * blocking at most `pollIntervalMs`. Acks are batched into one XACK per turn of the event loop.
 */
export class RedisStreamSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly consumer = `c-${process.pid}-${randomBytes(5).toString('hex')}`;
  readonly #ctx: StreamGroupContext;
  readonly #handler: DeliveryHandler;
  #closing = false;
  #closed: Promise<void> | undefined;
  #loop: Promise<void> = Promise.resolve();
  #slots = 0;
  #wakeCapacity: (() => void) | undefined;
  #running = 0;
  #onIdle: (() => void) | undefined;
  readonly #unsettled = new Set<RedisDelivery>();
  readonly #deadlines: AckDeadlines<RedisDelivery>;
  readonly #settling = new Set<Promise<void>>();
  #acks: AckBatch | undefined;
  #nextMaintenance = 0;
  #nextReclaim = 0;
  #reclaimCursor = END_OF_PEL;

  constructor(ctx: StreamGroupContext, handler: DeliveryHandler) {
    this.#ctx = ctx;
    this.#handler = handler;
    this.topic = ctx.topic;
    this.group = ctx.group;
    this.#deadlines = new AckDeadlines(ctx.ackTimeoutMs, (delivery) => this.#expire(delivery));
  }

  start(): void {
    this.#nextReclaim = Date.now() + this.#ctx.claimIntervalMs;
    this.#loop = this.#run();
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      await this.#waitForCapacity();
      if (this.#closing) break;
      try {
        await this.#turn();
        failures = 0;
      } catch (error) {
        if (this.#closing) break;
        if (/NOGROUP/.test(String((error as Error)?.message))) {
          // The stream or the group vanished (deleted, or lost by a server without persistence):
          // recreate the group from the start of whatever the stream holds now, so nothing is skipped.
          await this.#ctx.ensureGroup('0').catch((e: unknown) => this.#ctx.report(e, 'recreate the consumer group'));
        } else {
          this.#ctx.report(error, 'read the stream');
        }
        failures += 1;
        await sleep(backoffDelay(failures, { baseMs: 50, maxMs: 2000, jitter: 'equal' }));
      }
    }
  }

  async #turn(): Promise<void> {
    const now = Date.now();
    if (now >= this.#nextMaintenance) {
      this.#nextMaintenance = now + this.#ctx.pollIntervalMs;
      await this.#moveDue();
      if (now >= this.#nextReclaim) await this.#reclaim(now);
    }
    const free = this.#ctx.maxInFlight - this.#slots;
    if (free <= 0 || this.#closing) return;
    const block = Math.max(1, this.#nextMaintenance - Date.now());
    const { streamKey, group } = this.#ctx;
    const reply = await this.#ctx.blocking.callBuffer(
      'XREADGROUP',
      'GROUP',
      group,
      this.consumer,
      'COUNT',
      free,
      'BLOCK',
      block,
      'STREAMS',
      streamKey,
      '>',
    );
    for (const entry of parseReadReply(reply)) this.#dispatch(entry, 1);
  }

  /** Takes delayed entries whose time has come (ZREM decides who owns each one) and delivers them again. */
  async #moveDue(): Promise<void> {
    const free = this.#ctx.maxInFlight - this.#slots;
    if (free <= 0) return;
    const { commands, delayedKey } = this.#ctx;
    const due = (await commands.call('ZRANGEBYSCORE', delayedKey, '-inf', Date.now(), 'LIMIT', 0, free)) as string[];
    if (due.length === 0) return;
    const pipeline = commands.pipeline();
    for (const entryId of due) pipeline.zrem(delayedKey, entryId);
    const removed = (await pipeline.exec()) ?? [];
    const owned = due.filter((_, i) => removed[i]?.[0] === null && removed[i]?.[1] === 1);
    await this.#claimAndDeliver(owned);
  }

  /** Reclaims entries left unsettled past `ackTimeoutMs` by any consumer of the group, dead or alive. */
  async #reclaim(now: number): Promise<void> {
    const free = this.#ctx.maxInFlight - this.#slots;
    if (free <= 0) return;
    const { commands, streamKey, group, delayedKey, ackTimeoutMs } = this.#ctx;
    // JUSTID claims without counting a delivery; entries waiting for their nack delay are only touched.
    const reply = (await commands.call(
      'XAUTOCLAIM',
      streamKey,
      group,
      this.consumer,
      ackTimeoutMs,
      this.#reclaimCursor,
      'COUNT',
      free,
      'JUSTID',
    )) as [string, string[], string[]?];
    const [cursor, ids] = reply;
    this.#reclaimCursor = cursor;
    if (cursor === END_OF_PEL) this.#nextReclaim = now + this.#ctx.claimIntervalMs;
    if (ids.length === 0) return;
    const scores = (await commands.call('ZMSCORE', delayedKey, ...ids)) as (string | null)[];
    await this.#claimAndDeliver(ids.filter((_, i) => scores[i] === null));
  }

  /** XCLAIM counts the new delivery in the PEL; XPENDING then gives the count, which is the attempt. */
  async #claimAndDeliver(entryIds: readonly string[]): Promise<void> {
    if (entryIds.length === 0) return;
    const { commands, streamKey, group } = this.#ctx;
    const entries = parseEntries(await commands.callBuffer('XCLAIM', streamKey, group, this.consumer, 0, ...entryIds));
    if (entries.length === 0) return;
    const pipeline = commands.pipeline();
    for (const entry of entries) pipeline.xpending(streamKey, group, entry.entryId, entry.entryId, 1);
    const counts = (await pipeline.exec()) ?? [];
    entries.forEach((entry, i) => {
      const row = (counts[i]?.[1] as [string, string, number, number][] | undefined)?.[0];
      this.#dispatch(entry, row ? Number(row[3]) : 2);
    });
  }

  #dispatch(raw: RawEntry, attempt: number): void {
    if (raw.fields === null) {
      // Trimmed by retention while pending: nothing left to deliver; drop it from the PEL.
      this.#enqueueAck(raw.entryId).catch((error: unknown) => this.#ctx.report(error, 'ack a trimmed entry'));
      return;
    }
    if (this.#closing) {
      this.#track(this.#nackEntry(raw.entryId, 0));
      return;
    }
    const delivery = new RedisDelivery(this, this.topic, raw.entryId, decodeFields(raw.entryId, raw.fields), attempt);
    this.#slots += 1;
    this.#unsettled.add(delivery);
    this.#deadlines.add(delivery);
    this.#running += 1;
    void this.#invoke(delivery);
  }

  async #invoke(delivery: RedisDelivery): Promise<void> {
    try {
      await this.#handler(delivery);
    } catch {
      if (!delivery.settled) await delivery.nack(0).catch((error: unknown) => this.#ctx.report(error, 'nack after a handler failure'));
    } finally {
      this.#running -= 1;
      if (this.#running === 0) this.#onIdle?.();
    }
  }

  #expire(delivery: RedisDelivery): void {
    if (delivery.settled || delivery.expired) return;
    delivery.expired = true;
    this.#releaseSlot();
  }

  /** Called once per delivery, by its first `ack` or `nack`. */
  settle(delivery: RedisDelivery, settlement: Settlement): Promise<void> {
    this.#deadlines.delete(delivery);
    this.#unsettled.delete(delivery);
    if (!delivery.expired) this.#releaseSlot();
    const done = settlement.kind === 'ack' ? this.#enqueueAck(delivery.entryId) : this.#nackEntry(delivery.entryId, settlement.delayMs);
    return this.#track(done);
  }

  #track(done: Promise<void>): Promise<void> {
    this.#settling.add(done);
    const forget = () => this.#settling.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** The entry stays pending for the group and is parked in the delayed set until it is due. */
  async #nackEntry(entryId: string, delayMs: number): Promise<void> {
    const due = Date.now() + delayMs;
    try {
      await this.#ctx.commands.zadd(this.#ctx.delayedKey, due, entryId);
    } catch (error) {
      throw this.#ctx.toError(error, 'nack');
    }
    this.#nextMaintenance = Math.min(this.#nextMaintenance, due);
  }

  #enqueueAck(entryId: string): Promise<void> {
    if (this.#acks === undefined) {
      const entryIds: string[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#acks = undefined;
        const { commands, streamKey, group } = this.#ctx;
        return commands.xack(streamKey, group, ...entryIds).then(
          () => undefined,
          (error: unknown) => {
            throw this.#ctx.toError(error, 'ack');
          },
        );
      });
      this.#acks = { entryIds, done };
    }
    this.#acks.entryIds.push(entryId);
    return this.#acks.done;
  }

  #waitForCapacity(): Promise<void> {
    if (this.#slots < this.#ctx.maxInFlight || this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wakeCapacity = resolve;
    });
  }

  #releaseSlot(): void {
    this.#slots -= 1;
    const wake = this.#wakeCapacity;
    this.#wakeCapacity = undefined;
    wake?.();
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#wakeCapacity?.();
    await this.#loop;
    if (this.#running > 0) {
      const timeout = new AbortController();
      const idle = new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
      await Promise.race([idle, sleep(this.#ctx.drainTimeoutMs, timeout.signal).catch(() => {})]);
      timeout.abort();
    }
    this.#deadlines.clear();
    // Whatever is still unsettled goes back to the group at once, for the next consumer.
    for (const delivery of [...this.#unsettled]) {
      delivery.nack(0).catch((error: unknown) => this.#ctx.report(error, 'release an unsettled delivery'));
    }
    await Promise.allSettled([...this.#settling]);
    await this.#forgetConsumer();
    this.#ctx.blocking.disconnect();
    this.#ctx.onClosed(this);
  }

  /** Deletes this consumer from the group when it owns no pending entry (deleting it would drop them). */
  async #forgetConsumer(): Promise<void> {
    const { commands, streamKey, group } = this.#ctx;
    try {
      const pending = (await commands.xpending(streamKey, group, '-', '+', 1, this.consumer)) as unknown[];
      if (pending.length === 0) await commands.xgroup('DELCONSUMER', streamKey, group, this.consumer);
    } catch (error) {
      this.#ctx.report(error, 'remove the consumer from its group');
    }
  }
}
