import { backoffDelay } from './backoff.js';
import type { Broker, OutgoingMessage } from './broker.js';
import { decodeCloudEvent } from './cloudevents/codec.js';
import { type SendMessage, traceAll, tracing } from './diagnostics.js';
import { SwitchboardError } from './errors.js';
import { newSecretId } from './ids.js';

/**
 * The transactional outbox: a service writes its own rows and its outgoing messages in ONE database
 * transaction (the store's `enqueue`, which each engine offers in the shape its driver needs), and a
 * relay publishes the committed messages afterwards.
 *
 * ## What a relay promises, stated exactly
 * - **Atomic with the application's data.** A message exists in the outbox if and only if the
 *   application's transaction that enqueued it committed. A rolled-back transaction publishes nothing.
 * - **Nothing lost before the receiver first starts.** An entry that names its `receiverGroup` has
 *   that group declared on the broker before it is published, as `send` declares it.
 * - **At least once, with the same MessageId.** An entry is marked sent only after
 *   `broker.publishBatch` resolved (the broker confirmed). A relay that dies, or whose publish fails,
 *   leaves its entries unsent; they are published again — unchanged: same MessageId, topic, headers,
 *   body and key — by the next claim, once released or once the lease ran out. Receivers absorb
 *   the duplicates with their inbox (keyed by MessageId).
 * - **No double publishing under normal operation.** A claim leases its entries to one relay; a
 *   claim stops at the first entry leased to another live relay, so while leases hold, several relays
 *   never publish the same entry. A relay whose publish outlives its lease (`leaseMs`) can be
 *   overtaken, which duplicates that batch (same MessageIds).
 * - **Order.** Entries are claimed in insertion order (`seq`), and a claim never skips an entry
 *   leased to another relay, so the outbox is published as one ordered stream: messages of
 *   transactions that committed one after the other reach `publishBatch` in that order, also across
 *   relays and takeovers. A failed batch is retried before anything after it. Whether the broker
 *   keeps that order for consumers is the broker's `capabilities.ordering`.
 */

/**
 * A message for the outbox: what a broker publishes, plus the receiving service's default group
 * when it is a message or operation addressed to one. The relay declares that group before it
 * publishes (as `send` does), so a message enqueued before the receiver ever started is kept for
 * it. Build it with `messaging.prepareSend` / `prepareInvoke` / `prepareEmit`: typed from the
 * contract, through the same encoder as `send`.
 */
export interface OutboxMessage extends OutgoingMessage {
  readonly receiverGroup?: string;
}

/** One stored outgoing message. */
export interface OutboxEntry {
  /** Position in the outbox: insertion order (commit order of the enqueuing transactions). */
  readonly seq: number;
  /** The message exactly as enqueued. */
  readonly message: OutboxMessage;
  /** How many times the entry was claimed, this claim included. */
  readonly attempts: number;
  /** When it was enqueued (the store's clock). */
  readonly createdAt: number;
}

export interface OutboxClaimOptions {
  /** Identifies the relay; `markSent` and `release` must pass the same owner. */
  readonly owner: string;
  /** Most entries claimed. */
  readonly limit: number;
  /** How long the claim holds; after it another relay may claim the entries again. */
  readonly leaseMs: number;
}

/** The relay side of an outbox. Every engine's outbox also has an `enqueue` that joins the application's transaction. */
export interface OutboxStore {
  /**
   * Atomically leases up to `limit` unsent entries to `owner`, oldest first, and returns them in
   * `seq` order. Stops at the first entry leased to another owner whose lease has not run out, so
   * the answer is always a prefix of the unsent entries (possibly empty).
   */
  claim(options: OutboxClaimOptions): Promise<OutboxEntry[]>;
  /** Marks entries leased to `owner` as sent. Returns how many were marked. */
  markSent(seqs: readonly number[], owner: string): Promise<number>;
  /** Gives entries leased to `owner` back unsent, to be claimed first again. Returns how many. */
  release(seqs: readonly number[], owner: string): Promise<number>;
  /** Deletes sent entries marked sent before `olderThan` (epoch ms). Returns how many. */
  purgeSent(olderThan: number): Promise<number>;
  /** Unsent entries (leased or not). */
  pendingCount(): Promise<number>;
  /**
   * Calls `listener` whenever new entries may have been committed (LISTEN/NOTIFY, an in-process
   * signal). Optional: a relay without it polls. Returns the unsubscribe function.
   */
  onEnqueued?(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface OutboxRelayOptions {
  readonly store: OutboxStore;
  readonly broker: Broker;
  /** Entries per claim and `publishBatch`. Default 100. */
  readonly batchSize?: number;
  /** How long the relay sleeps when the outbox is empty and no wake-up came. Default 1 000 ms. */
  readonly pollIntervalMs?: number;
  /** Claim lease; must be longer than a `publishBatch` takes. Default 30 000 ms. */
  readonly leaseMs?: number;
  /** Relay identity (lease owner). Default a random id. */
  readonly owner?: string;
  /** Backoff after a failed claim or publish: base and cap in ms. Default 100 ms up to 10 000 ms. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Sent entries are deleted this long after they were sent. Default 24 h; 0 keeps them. */
  readonly sentRetentionMs?: number;
  /** How often the relay purges sent entries while idle. Default 60 000 ms. */
  readonly purgeIntervalMs?: number;
  /** Receives errors of the background loop (they are retried with backoff, never thrown). */
  readonly onError?: (error: SwitchboardError) => void;
}

export interface OutboxRelay {
  readonly owner: string;
  readonly running: boolean;
  /** Starts the background loop. Idempotent. */
  start(): void;
  /** Stops the loop; the batch in flight is published and marked (or released) before it resolves. */
  stop(): Promise<void>;
  /**
   * Claims one batch, publishes it and marks it sent. Resolves with the number of messages published
   * (0 when the outbox had nothing claimable). On a failed publish the batch is released and the error
   * is thrown. For tests and for callers that drive the relay themselves.
   */
  runOnce(): Promise<number>;
}

function positive(value: number | undefined, name: string, fallback: number, allowZero = false): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result < 0 || (!allowZero && result === 0)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `outbox relay: ${name} must be a positive number, got ${String(value)}` });
  }
  return result;
}

function asSwitchboardError(error: unknown): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  return new SwitchboardError('SB_INTERNAL', { detail: 'outbox relay failed', cause: error });
}

/**
 * Publishes what the outbox holds, in order, marking entries sent only after the broker confirmed
 * them. See the guarantees at the top of this module.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { store, broker } = options;
  const batchSize = Math.trunc(positive(options.batchSize, 'batchSize', 100));
  const pollIntervalMs = positive(options.pollIntervalMs, 'pollIntervalMs', 1000);
  const leaseMs = positive(options.leaseMs, 'leaseMs', 30_000);
  const retryBaseMs = positive(options.retryBaseMs, 'retryBaseMs', 100);
  const retryMaxMs = positive(options.retryMaxMs, 'retryMaxMs', 10_000);
  const sentRetentionMs = positive(options.sentRetentionMs, 'sentRetentionMs', 24 * 60 * 60 * 1000, true);
  const purgeIntervalMs = positive(options.purgeIntervalMs, 'purgeIntervalMs', 60_000);
  const owner = options.owner ?? `relay-${newSecretId()}`;

  let running = false;
  let loop: Promise<void> | undefined;
  /** Ends the current pause (stop, or a wake-up during an idle pause). */
  let wake: (() => void) | undefined;
  let idle = false;
  let woken = false;
  let unsubscribe: (() => void) | undefined;
  let lastPurge = 0;

  const signal = () => {
    woken = true;
    if (idle) wake?.();
  };

  /** Sleeps `ms`; an idle pause also ends on a wake-up, a backoff pause only on `stop`. */
  const pause = (ms: number, wakeable: boolean) =>
    new Promise<void>((resolve) => {
      if ((wakeable && woken) || !running) {
        resolve();
        return;
      }
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        idle = false;
        resolve();
      }
      wake = done;
      idle = wakeable;
    });

  /** Receiver groups this relay already declared on the broker, by topic and group. */
  const declared = new Set<string>();
  async function declareReceivers(entries: readonly OutboxEntry[]): Promise<void> {
    for (const { message } of entries) {
      const group = message.receiverGroup;
      if (group === undefined) continue;
      const key = `${message.topic}\u0000${group}`;
      if (declared.has(key)) continue;
      await broker.declareGroup(message.topic, group);
      declared.add(key);
    }
  }

  async function runOnce(): Promise<number> {
    const entries = await store.claim({ owner, limit: batchSize, leaseMs });
    if (entries.length === 0) return 0;
    const seqs = entries.map((entry) => entry.seq);
    try {
      await declareReceivers(entries);
      const list = entries.map(({ message }) => toOutgoing(message));
      await (tracing.send.hasSubscribers
        ? traceAll(
            tracing.send,
            list.map((message) => relayedContext(broker, message, list.length)),
            broker.publishBatch(list),
          )
        : broker.publishBatch(list));
    } catch (error) {
      // Not confirmed: give the entries back so they are published (first) on the next claim.
      await store.release(seqs, owner).catch(() => undefined);
      throw error;
    }
    // Confirmed. If marking fails, the lease runs out and the batch is published again (same ids).
    await store.markSent(seqs, owner);
    return entries.length;
  }

  async function purgeIfDue(): Promise<void> {
    if (sentRetentionMs === 0 || Date.now() - lastPurge < purgeIntervalMs) return;
    lastPurge = Date.now();
    await store.purgeSent(Date.now() - sentRetentionMs);
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (running) {
      woken = false;
      try {
        const published = await runOnce();
        failures = 0;
        if (published > 0) continue;
        await purgeIfDue();
        await pause(pollIntervalMs, true);
      } catch (error) {
        failures++;
        options.onError?.(asSwitchboardError(error));
        await pause(backoffDelay(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs, jitter: 'equal' }), false);
      }
    }
  }

  return {
    owner,
    get running() {
      return running;
    },
    start() {
      if (running) return;
      running = true;
      unsubscribe = store.onEnqueued?.(signal);
      loop = run();
    },
    async stop() {
      if (!running) {
        await loop;
        return;
      }
      running = false;
      unsubscribe?.();
      unsubscribe = undefined;
      wake?.();
      await loop;
      loop = undefined;
    },
    runOnce,
  };
}

/** The broker message of an outbox message (without the relay's `receiverGroup`). */
/**
 * The `switchboard:send` context of a message the relay publishes (kind `relay`): its CloudEvents
 * attributes read back from the bytes enqueued, since the enqueuing process may be another one.
 */
function relayedContext(broker: Broker, message: OutgoingMessage, batchSize: number): SendMessage {
  let source: string | undefined;
  let type: string | undefined;
  let traceparent: string | undefined;
  try {
    const event = decodeCloudEvent(message.headers, message.body, broker.binding);
    source = event.source;
    type = event.type;
    const extension = event.extensions?.traceparent;
    if (typeof extension === 'string') traceparent = extension;
  } catch {
    // Bytes that are not a CloudEvent are published as they are; the context names only the id.
  }
  return {
    system: broker.name,
    destination: message.topic,
    kind: 'relay',
    messageId: message.id,
    source,
    type,
    traceparent,
    parentTraceparent: undefined,
    idempotencyKey: undefined,
    batchSize,
    bodySize: message.body.byteLength,
  };
}

function toOutgoing(message: OutboxMessage): OutgoingMessage {
  if (message.receiverGroup === undefined) return message;
  const { receiverGroup: _group, ...outgoing } = message;
  return outgoing;
}

/**
 * Checks a message before it is enqueued, so a bad message fails the application's transaction
 * rather than the relay later. Throws `SB_BAD_REQUEST`.
 */
export function assertOutboxMessage(message: OutboxMessage): void {
  const fail = (detail: string) => {
    throw new SwitchboardError('SB_BAD_REQUEST', { detail: `outbox message ${String(message?.id)}: ${detail}` });
  };
  if (typeof message !== 'object' || message === null) fail('not an object');
  if (typeof message.id !== 'string' || message.id === '') fail('`id` (the MessageId) must be a non-empty string');
  if (typeof message.topic !== 'string' || message.topic === '') fail('`topic` must be a non-empty string');
  if (!(message.body instanceof Uint8Array)) fail('`body` must be a Uint8Array');
  if (message.key !== undefined && typeof message.key !== 'string') fail('`key` must be a string');
  if (message.receiverGroup !== undefined && (typeof message.receiverGroup !== 'string' || message.receiverGroup === '')) {
    fail('`receiverGroup` must be a non-empty string');
  }
  if (typeof message.headers !== 'object' || message.headers === null) fail('`headers` must be an object');
  for (const [name, value] of Object.entries(message.headers)) {
    if (typeof value !== 'string') fail(`header ${name} must be a string`);
  }
}
