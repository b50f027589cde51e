import type { Msg, NatsConnection, Subscription as NatsSubscriptionHandle } from '@nats-io/nats-core';
import { createInbox } from '@nats-io/nats-core';
import type {
  BrokerRequests,
  Headers,
  OutgoingMessage,
  ReplyMessage,
  RequestDelivery,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { assertMessageSize, checkRequestTimeout, PendingReplies, REQUEST_HEADERS, readDeadline } from '@switchboard/core/kit';
import { natsErrors } from './connection.js';
import { messageHeaders, readCoreHeaders, statusOf } from './core-headers.js';
import { assertGroup, assertTopic } from './names.js';

const NO_RESPONDERS = 503;

/**
 * Publishes held until the end of the current turn of the event loop, then made in one go. The
 * client flushes its buffer in a microtask after the first write into an empty buffer, so requests
 * and replies that become ready a few promise hops apart would each cost a socket write; made
 * together they share one.
 */
class Cork {
  #queued: (() => void)[] = [];
  #scheduled = false;

  /** `alone`: nothing else is in flight, so nothing could share the write: publish at once (no added latency). */
  run(publish: () => void, alone: boolean): void {
    if (alone && !this.#scheduled) {
      publish();
      return;
    }
    this.#queued.push(publish);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const queued = this.#queued;
    this.#queued = [];
    for (const publish of queued) publish();
  };
}
const RESOLVED: Promise<void> = Promise.resolve();

/** The core NATS subject requests of `topic` travel: outside every stream, so no JetStream round trip and no PubAck as a reply. */
export function requestSubject(prefix: string, topic: string): string {
  assertTopic(topic);
  return `${prefix}-rpc.${topic}`;
}

/**
 * NATS's own request/reply: a request is a core NATS publish on `<prefix>-rpc.<topic>` with a reply
 * subject under this connection's one inbox (`<inbox>.<n>`, a single wildcard subscription for every
 * request, as the client's muxed requests do), served by a queue subscription per group, answered
 * with `msg.respond`. The server's no-responders status (503) fails a request at once with
 * `SB_NO_RESPONDERS`. Nothing touches JetStream. Headers are the JetStream adapter's (the NATS
 * CloudEvents binding), plus `sb-deadline`.
 */
export class NatsRequests implements BrokerRequests {
  readonly #connection: NatsConnection;
  readonly #prefix: string;
  readonly #maxPayload: number;
  readonly #pending = new PendingReplies();
  readonly #served = new Set<NatsServed>();
  readonly #cork = new Cork();
  #inbox: { readonly prefix: string; readonly subscription: NatsSubscriptionHandle } | undefined;
  #next = 0;
  #closed = false;

  constructor(connection: NatsConnection, prefix: string, maxPayload: number) {
    this.#connection = connection;
    this.#prefix = prefix;
    this.#maxPayload = maxPayload;
  }

  get pending(): number {
    return this.#pending.size;
  }

  request(message: OutgoingMessage, options: RequestOptions): Promise<ReplyMessage> {
    try {
      checkRequestTimeout(options.timeoutMs);
      if (this.#closed || this.#connection.isClosed()) throw natsErrors.closedError('request');
      assertMessageSize(message.body.byteLength, this.#maxPayload, "the request (the server's max_payload)");
      const subject = requestSubject(this.#prefix, message.topic);
      const inbox = this.#listen();
      const token = (this.#next++).toString(36);
      const deadline = Date.now() + options.timeoutMs;
      const headers = messageHeaders(message.id, message.headers, message.key, [REQUEST_HEADERS.deadline, String(deadline)]);
      const connection = this.#connection;
      const pending = this.#pending;
      return pending.wait(token, message.topic, options, () => {
        this.#cork.run(() => {
          // Only what still waits is sent: a request aborted in this turn never leaves.
          if (!pending.has(token)) return;
          try {
            connection.publish(subject, message.body, { reply: `${inbox}.${token}`, headers });
          } catch (error) {
            pending.reject(token, natsErrors.toBrokerError(error, `request to ${message.topic}`));
          }
        }, pending.size === 1);
        return undefined;
      });
    } catch (error) {
      return Promise.reject(error instanceof SwitchboardError ? error : natsErrors.toBrokerError(error, `request to ${message.topic}`));
    }
  }

  /** The inbox prefix, its one wildcard subscription made on the first request. */
  #listen(): string {
    if (this.#inbox === undefined) {
      const prefix = createInbox();
      const subscription = this.#connection.subscribe(`${prefix}.*`, { callback: (error, msg) => this.#onReply(prefix, error, msg) });
      this.#inbox = { prefix, subscription };
    }
    return this.#inbox.prefix;
  }

  #onReply(prefix: string, error: Error | null, msg: Msg): void {
    if (error !== null) return;
    const token = msg.subject.slice(prefix.length + 1);
    // A status of 300 or more is the server speaking (no responders), not a reply.
    const status = statusOf(msg);
    if (status >= 300) {
      if (status === NO_RESPONDERS) {
        this.#pending.reject(token, new SwitchboardError('SB_NO_RESPONDERS', { detail: 'nobody serves this operation on NATS' }));
      }
      return;
    }
    if (!this.#pending.has(token)) return;
    this.#pending.resolve(token, { headers: readCoreHeaders(msg).headers, body: msg.data });
  }

  async serve(options: SubscribeOptions, handler: RequestHandler): Promise<Subscription> {
    if (this.#closed || this.#connection.isClosed()) throw natsErrors.closedError('serve');
    assertGroup(options.group);
    const subject = requestSubject(this.#prefix, options.topic);
    const served = new NatsServed(this.#connection, subject, options, handler, this.#cork, (done) => this.#served.delete(done));
    this.#served.add(served);
    // The server knows the queue subscription once this flush returns: a request after `serve` finds it.
    await this.#connection.flush();
    return served;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.failAll(natsErrors.closedError('request'));
    this.#inbox?.subscription.unsubscribe();
    this.#inbox = undefined;
    await Promise.all([...this.#served].map((served) => served.close()));
  }
}

/** One queue subscription serving requests; `close` stops taking them and waits for the running ones. */
class NatsServed implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #subscription: NatsSubscriptionHandle;
  readonly #onClosed: (served: NatsServed) => void;
  /** Handlers running (a count, not a set of their promises: one promise per request, the handler's own). */
  #running = 0;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    connection: NatsConnection,
    subject: string,
    options: SubscribeOptions,
    handler: RequestHandler,
    cork: Cork,
    onClosed: (served: NatsServed) => void,
  ) {
    this.topic = options.topic;
    this.group = options.group;
    this.#onClosed = onClosed;
    this.#subscription = connection.subscribe(subject, {
      queue: options.group,
      callback: (error, msg) => {
        if (error !== null || msg.reply === undefined || msg.reply === '') return;
        this.#running += 1;
        let run: Promise<void>;
        try {
          run = handler(new NatsRequest(msg, options.topic, cork, this.#alone));
        } catch {
          this.#done();
          return;
        }
        run.then(this.#done, this.#done);
      },
    });
  }

  readonly #alone = (): boolean => this.#running <= 1;

  readonly #done = (): void => {
    this.#running -= 1;
    if (this.#running === 0) this.#idle?.();
  };

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#subscription.unsubscribe();
      if (this.#running > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.#onClosed(this);
    })();
    return this.#closing;
  }
}

class NatsRequest implements RequestDelivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt = 1;
  readonly deadline: number | undefined;
  readonly #msg: Msg;
  readonly #cork: Cork;
  readonly #alone: () => boolean;

  constructor(msg: Msg, topic: string, cork: Cork, alone: () => boolean) {
    const received = readCoreHeaders(msg);
    this.#msg = msg;
    this.#cork = cork;
    this.#alone = alone;
    this.id = received.id;
    this.topic = topic;
    const { [REQUEST_HEADERS.deadline]: _deadline, ...headers } = received.headers;
    this.headers = headers;
    this.body = msg.data;
    if (received.key !== undefined) this.key = received.key;
    this.deadline = readDeadline(received.headers);
  }

  ack(): Promise<void> {
    return RESOLVED;
  }

  nack(): Promise<void> {
    return RESOLVED;
  }

  reply(reply: ReplyMessage): Promise<void> {
    let headers: ReturnType<typeof messageHeaders>;
    try {
      headers = messageHeaders('', reply.headers, undefined);
    } catch (error) {
      return Promise.reject(natsErrors.toBrokerError(error, 'reply'));
    }
    const msg = this.#msg;
    this.#cork.run(() => {
      try {
        msg.respond(reply.body, { headers });
      } catch {
        // The connection closed under the reply: the requester's timeout tells it.
      }
    }, this.#alone());
    return RESOLVED;
  }
}
