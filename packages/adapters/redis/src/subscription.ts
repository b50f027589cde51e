import { randomBytes } from 'node:crypto';
import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { backoffDelay } from '@switchboard/core';
import { DeliveryTracker, idle } from '@switchboard/core/kit';
import type { Redis } from 'ioredis';
import { type EntrySettler, StreamDelivery } from './delivery.js';
import { redisErrors } from './errors.js';
import type { RawEntry } from './layout.js';
import { decodeFields, parseEntries, parseReadReply } from './layout.js';

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
  readonly onClosed: (subscription: RedisStreamSubscription) => void;
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
export class RedisStreamSubscription implements Subscription, EntrySettler {
  readonly topic: string;
  readonly group: string;
  readonly consumer = `c-${process.pid}-${randomBytes(5).toString('hex')}`;
  readonly #ctx: StreamGroupContext;
  readonly #tracker: DeliveryTracker<StreamDelivery>;
  readonly #settling = new Set<Promise<void>>();
  #closed: Promise<void> | undefined;
  #loop: Promise<void> = Promise.resolve();
  #acks: AckBatch | undefined;
  #nextMaintenance = 0;
  #nextReclaim = 0;
  #reclaimCursor = END_OF_PEL;

  constructor(ctx: StreamGroupContext, handler: DeliveryHandler) {
    this.#ctx = ctx;
    this.topic = ctx.topic;
    this.group = ctx.group;
    this.#tracker = new DeliveryTracker({ maxInFlight: ctx.maxInFlight, ackTimeoutMs: ctx.ackTimeoutMs, handler, report: ctx.report });
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
    const tracker = this.#tracker;
    while (!tracker.closing) {
      await tracker.waitForCapacity();
      if (tracker.closing) break;
      try {
        await this.#turn();
        failures = 0;
      } catch (error) {
        if (tracker.closing) break;
        if (/NOGROUP/.test(String((error as Error)?.message))) {
          // The stream or the group vanished (deleted, or lost by a server without persistence):
          // recreate the group from the start of whatever the stream holds now, so nothing is skipped.
          await this.#ctx.ensureGroup('0').catch((e: unknown) => this.#ctx.report(e, 'recreate the consumer group'));
        } else {
          this.#ctx.report(error, 'read the stream');
        }
        failures += 1;
        await idle(backoffDelay(failures, { baseMs: 50, maxMs: 2000, jitter: 'equal' }));
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
    const free = this.#tracker.free;
    if (free <= 0) return;
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
    for (const entry of parseReadReply(reply)) this.#deliver(entry, 1);
  }

  /** Takes delayed entries whose time has come (ZREM decides who owns each one) and delivers them again. */
  async #moveDue(): Promise<void> {
    const free = this.#tracker.free;
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
    const free = this.#tracker.free;
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
      this.#deliver(entry, row ? Number(row[3]) : 2);
    });
  }

  #deliver(raw: RawEntry, attempt: number): void {
    if (raw.fields === null) {
      // Trimmed by retention while pending: nothing left to deliver; drop it from the PEL.
      this.ack(raw.entryId).catch((error: unknown) => this.#ctx.report(error, 'ack a trimmed entry'));
      return;
    }
    const delivery = new StreamDelivery(this.topic, raw.entryId, decodeFields(raw.entryId, raw.fields), attempt, this);
    // Read while closing: straight back to the group, for the next consumer.
    if (this.#tracker.closing) this.#track(delivery.release());
    else this.#tracker.dispatch(delivery);
  }

  #track(done: Promise<void>): Promise<void> {
    this.#settling.add(done);
    const forget = () => this.#settling.delete(done);
    done.then(forget, forget);
    return done;
  }

  nack(entryId: string, delayMs: number): Promise<void> {
    const due = Date.now() + delayMs;
    return this.#track(
      this.#ctx.commands.zadd(this.#ctx.delayedKey, due, entryId).then(
        () => {
          this.#nextMaintenance = Math.min(this.#nextMaintenance, due);
        },
        (error: unknown) => {
          throw redisErrors.toBrokerError(error, 'nack');
        },
      ),
    );
  }

  ack(entryId: string): Promise<void> {
    if (this.#acks === undefined) {
      const entryIds: string[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#acks = undefined;
        const { commands, streamKey, group } = this.#ctx;
        return commands.xack(streamKey, group, ...entryIds).then(
          () => undefined,
          (error: unknown) => {
            throw redisErrors.toBrokerError(error, 'ack');
          },
        );
      });
      this.#acks = { entryIds, done };
      this.#track(done).catch(() => {});
    }
    this.#acks.entryIds.push(entryId);
    return this.#acks.done;
  }

  async #close(): Promise<void> {
    // Stops handing out slots at once; handlers get the drain timeout, the rest is released.
    const drained = this.#tracker.close(this.#ctx.drainTimeoutMs);
    await this.#loop;
    await drained;
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
