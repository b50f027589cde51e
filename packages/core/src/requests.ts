import type {
  Broker,
  BrokerRequests,
  Delivery,
  Headers,
  OutgoingMessage,
  ReplyMessage,
  RequestDelivery,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from './broker.js';
import { SwitchboardError } from './errors.js';
import { newMessageId, randomHex } from './ids.js';

/**
 * Transport headers of the generic request/reply (`QueueRequests`). They travel next to the
 * CloudEvents attributes of the broker's binding, which ignores them, as AMQP's `reply_to` and
 * `correlation_id` properties travel next to an AMQP binding's attributes.
 */
export const REQUEST_HEADERS = {
  /** The topic the receiver publishes the reply to. */
  replyTo: 'sb-reply-to',
  /** The request's CloudEvent id, copied onto the reply: how the requester finds whom it answers. */
  correlationId: 'sb-correlation-id',
  /** When the requester stops waiting (epoch ms, decimal): a receiver drops a request past it unanswered. */
  deadline: 'sb-deadline',
} as const;

/** Where the generic request/reply carries the requests of `topic`: their own topic, apart from its messages. */
export function requestTopic(topic: string): string {
  return `${topic}.requests`;
}

/** `SB_CONFIG_INVALID` unless `timeoutMs` is a positive finite number (at most 2^31 - 1 ms, a timer's range). */
export function checkRequestTimeout(timeoutMs: number): void {
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2_147_483_647) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `the request timeout must be a positive number of ms, got ${timeoutMs}` });
  }
}

export function replyTimeout(timeoutMs: number, topic: string): SwitchboardError {
  return new SwitchboardError('SB_REPLY_TIMEOUT', { detail: `no reply from ${topic} within ${timeoutMs} ms` });
}

export function requestAborted(signal: AbortSignal): SwitchboardError {
  const reason: unknown = signal.reason;
  return new SwitchboardError('SB_ABORTED', {
    detail: 'the request was aborted',
    ...(reason === undefined ? {} : { cause: reason }),
  });
}

/**
 * The requests waiting for their reply, each settled once: by the reply, its timeout, its signal or
 * `failAll`. However it ends, its entry and its abort listener are gone.
 *
 * Timeouts share one timer: entries are grouped by their timeout, so within a group they expire in
 * the order they were made (adding and removing is O(1)), and the timer is armed for the earliest
 * only. A request therefore costs no timer of its own; the timer is not cleared when the last
 * request ends (a caller making one request at a time would arm and clear one per request), only
 * unref'd, so it keeps the process alive exactly while something waits, as a timer per request did.
 * When it fires with nothing due it re-arms for the earliest entry left, if any.
 */
export class PendingReplies {
  readonly #entries = new Map<string, PendingEntry>();
  /** Waiting entries by timeout (ms), each set in the order the entries were made, so by deadline. */
  readonly #byTimeout = new Map<number, Set<PendingEntry>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.#entries.size;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /**
   * Waits for the reply to `id`; `start` sends the request once the entry exists (a reply cannot
   * arrive before it is awaited). Rejects with `SB_REPLY_TIMEOUT` / `SB_ABORTED`, or with what
   * `start` rejects with; the entry, its place on the timer and its abort listener are gone however
   * it ends.
   */
  wait(id: string, topic: string, options: RequestOptions, start: () => Promise<void> | undefined): Promise<ReplyMessage> {
    const { timeoutMs, signal } = options;
    if (signal?.aborted === true) return Promise.reject(requestAborted(signal));
    if (this.#entries.has(id)) {
      return Promise.reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: `a request with id ${id} is already waiting` }));
    }
    return new Promise<ReplyMessage>((resolve, reject) => {
      const entry = new PendingEntry(this.#remove, id, topic, timeoutMs, resolve, reject, signal);
      this.#add(entry);
      let started: Promise<void> | undefined;
      try {
        started = start();
      } catch (error) {
        entry.fail(error);
        return;
      }
      started?.catch((error: unknown) => entry.fail(error));
    });
  }

  /** Hands a reply to the request it answers; false when nothing waits for it (late, or not ours). */
  resolve(id: string, reply: ReplyMessage): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    entry.succeed(reply);
    return true;
  }

  /** Fails the request `id` with `error`; false when nothing waits for it. */
  reject(id: string, error: unknown): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    entry.fail(error);
    return true;
  }

  /** Fails every pending request with `error`. */
  failAll(error: unknown): void {
    for (const entry of [...this.#entries.values()]) entry.fail(error);
  }

  #add(entry: PendingEntry): void {
    this.#entries.set(entry.id, entry);
    let group = this.#byTimeout.get(entry.timeoutMs);
    if (group === undefined) {
      group = new Set();
      this.#byTimeout.set(entry.timeoutMs, group);
    }
    group.add(entry);
    if (entry.deadline < this.#armedAt) this.#arm(entry.deadline);
    else if (this.#entries.size === 1) this.#timer?.ref();
  }

  /** Called once by an entry as it ends. */
  readonly #remove = (entry: PendingEntry): void => {
    this.#entries.delete(entry.id);
    const group = this.#byTimeout.get(entry.timeoutMs);
    if (group?.delete(entry) && group.size === 0) this.#byTimeout.delete(entry.timeoutMs);
    // Nothing waits: the timer stays armed, but no longer keeps the process alive.
    if (this.#entries.size === 0) this.#timer?.unref();
  };

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - Date.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const expired: PendingEntry[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const group of this.#byTimeout.values()) {
      for (const entry of group) {
        if (entry.deadline > now) {
          next = Math.min(next, entry.deadline);
          break;
        }
        expired.push(entry);
      }
    }
    for (const entry of expired) entry.fail(replyTimeout(entry.timeoutMs, entry.topic));
    // Failing may have ended other entries; arm for the earliest still waiting.
    if (next !== Number.POSITIVE_INFINITY && this.#entries.size > 0) {
      this.#arm(next);
    }
  };
}

class PendingEntry {
  readonly id: string;
  readonly topic: string;
  readonly timeoutMs: number;
  /** Epoch ms at which the request times out. */
  readonly deadline: number;
  readonly #onEnd: (entry: PendingEntry) => void;
  readonly #resolve: (reply: ReplyMessage) => void;
  readonly #reject: (error: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  #done = false;

  constructor(
    onEnd: (entry: PendingEntry) => void,
    id: string,
    topic: string,
    timeoutMs: number,
    resolve: (reply: ReplyMessage) => void,
    reject: (error: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    this.#onEnd = onEnd;
    this.id = id;
    this.topic = topic;
    this.timeoutMs = timeoutMs;
    this.deadline = Date.now() + timeoutMs;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    this.fail(requestAborted(this.#signal!));
  };

  succeed(reply: ReplyMessage): void {
    if (this.#end()) this.#resolve(reply);
  }

  fail(error: unknown): void {
    if (this.#end()) this.#reject(error);
  }

  #end(): boolean {
    if (this.#done) return false;
    this.#done = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onEnd(this);
    return true;
  }
}

/** The deadline a request carries in `sb-deadline`, or undefined. */
export function readDeadline(headers: Headers): number | undefined {
  const raw = headers[REQUEST_HEADERS.deadline];
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) return undefined;
  return Number(raw);
}

/** Headers without the request/reply ones (what the CloudEvents codec and the caller see). */
export function withoutRequestHeaders(headers: Headers): Headers {
  const { [REQUEST_HEADERS.replyTo]: _r, [REQUEST_HEADERS.correlationId]: _c, [REQUEST_HEADERS.deadline]: _d, ...rest } = headers;
  return rest;
}

/**
 * Request/reply built from `publish` and `subscribe`, for an engine without a native one. Requests
 * of topic `t` travel topic `t.requests` with `sb-reply-to`, `sb-correlation-id` (the request's id)
 * and `sb-deadline` headers; replies travel a reply topic of this instance, made on the first
 * request (`replies-<random>`, its group of the same name), and are matched to the waiting request
 * by correlation id. `close` fails what waits and closes the reply subscription. A receiver that is
 * down is found out by the timeout (nothing on a queue can tell at once); a request it finds past its
 * deadline is dropped unanswered.
 */
export class QueueRequests implements BrokerRequests {
  readonly #broker: Broker;
  readonly #pending = new PendingReplies();
  readonly #replyTopic = `replies-${randomHex(12)}`;
  #listening: Promise<Subscription> | undefined;
  #closed: Promise<void> | undefined;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** This instance's reply topic (and group). */
  get replyTopic(): string {
    return this.#replyTopic;
  }

  get pending(): number {
    return this.#pending.size;
  }

  async request(message: OutgoingMessage, options: RequestOptions): Promise<ReplyMessage> {
    checkRequestTimeout(options.timeoutMs);
    if (this.#closed !== undefined) throw closed();
    await this.#listen();
    if (this.#closed !== undefined) throw closed();
    const deadline = Date.now() + options.timeoutMs;
    const correlationId = message.id;
    const request: OutgoingMessage = {
      ...message,
      topic: requestTopic(message.topic),
      headers: {
        ...message.headers,
        [REQUEST_HEADERS.replyTo]: this.#replyTopic,
        [REQUEST_HEADERS.correlationId]: correlationId,
        [REQUEST_HEADERS.deadline]: String(deadline),
      },
    };
    return this.#pending.wait(correlationId, message.topic, options, () => this.#broker.publish(request));
  }

  async serve(options: SubscribeOptions, handler: RequestHandler): Promise<Subscription> {
    const subscription = await this.#broker.subscribe({ ...options, topic: requestTopic(options.topic) }, async (delivery) => {
      const replyTo = delivery.headers[REQUEST_HEADERS.replyTo];
      const correlationId = delivery.headers[REQUEST_HEADERS.correlationId];
      if (replyTo === undefined || correlationId === undefined || replyTo === '' || correlationId === '') {
        // Not a request (nobody to answer): nothing to do but let it go.
        await delivery.ack();
        return;
      }
      try {
        await handler(new QueuedRequest(delivery, this.#broker, replyTo, correlationId, options.topic));
      } finally {
        await delivery.ack();
      }
    });
    return { topic: options.topic, group: options.group, close: () => subscription.close() };
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#pending.failAll(closed());
    const listening = this.#listening;
    if (listening !== undefined) await listening.then((subscription) => subscription.close()).catch(() => {});
  }

  #listen(): Promise<Subscription> {
    if (this.#listening === undefined) {
      const topic = this.#replyTopic;
      const pending = this.#broker.subscribe({ topic, group: topic }, this.#onReply);
      pending.catch(() => {
        if (this.#listening === pending) this.#listening = undefined;
      });
      this.#listening = pending;
    }
    return this.#listening;
  }

  readonly #onReply = async (delivery: Delivery): Promise<void> => {
    const correlationId = delivery.headers[REQUEST_HEADERS.correlationId];
    if (correlationId !== undefined) {
      this.#pending.resolve(correlationId, { headers: withoutRequestHeaders(delivery.headers), body: delivery.body });
    }
    await delivery.ack();
  };
}

function closed(): SwitchboardError {
  return new SwitchboardError('SB_CLOSED', { detail: 'request/reply was closed' });
}

class QueuedRequest implements RequestDelivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly deadline: number | undefined;
  readonly #delivery: Delivery;
  readonly #broker: Broker;
  readonly #replyTo: string;
  readonly #correlationId: string;

  constructor(delivery: Delivery, broker: Broker, replyTo: string, correlationId: string, topic: string) {
    this.#delivery = delivery;
    this.#broker = broker;
    this.#replyTo = replyTo;
    this.#correlationId = correlationId;
    this.id = delivery.id;
    this.topic = topic;
    this.headers = withoutRequestHeaders(delivery.headers);
    this.body = delivery.body;
    if (delivery.key !== undefined) this.key = delivery.key;
    this.attempt = delivery.attempt;
    this.deadline = readDeadline(delivery.headers);
  }

  ack(): Promise<void> {
    return this.#delivery.ack();
  }

  nack(delayMs?: number): Promise<void> {
    return this.#delivery.nack(delayMs);
  }

  reply(reply: ReplyMessage): Promise<void> {
    return this.#broker.publish({
      id: newMessageId(),
      topic: this.#replyTo,
      headers: { ...reply.headers, [REQUEST_HEADERS.correlationId]: this.#correlationId },
      body: reply.body,
    });
  }
}

/**
 * The request/reply of `broker`: its own (`broker.requests`) when the engine has one, otherwise a
 * new {@link QueueRequests} over its publish and subscribe. `owned` says whether the caller made
 * it (and closes it) or the broker did.
 */
export function requestsOf(broker: Broker): { readonly requests: BrokerRequests; readonly owned: boolean } {
  return broker.requests === undefined ? { requests: new QueueRequests(broker), owned: true } : { requests: broker.requests, owned: false };
}
