import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { createNatsBroker } from '@switchboard/nats';
import { BrokerDriver, type ConsumeOptions, type DriverSpec, GROUP, nextMessageId, type QueueDriver } from '../queue-driver.js';
import { forEachWindowed } from '../window.js';

/** Connection settings of both drivers: the adapter sets `noAsyncTraces: true`, so the raw client does too. */
const CONNECT = { noAsyncTraces: true } as const;
const SB_PREFIX = 'benchsb';
const RAW_STREAM_PREFIX = 'BENCHRAW';

async function deleteStream(jsm: JetStreamManager, stream: string): Promise<void> {
  await jsm.streams.delete(stream).catch(() => false);
}

/**
 * The raw JetStream client doing what the adapter does: a file stream per topic (interest
 * retention, discard new, 2 min duplicate window), a durable explicit-ack pull consumer
 * (deliver new, max_ack_pending 1 024), `js.publish` with a `msgID`, and a consumer (`consume`
 * with `max_messages = maxInFlight`) that acks each message (`ack`, as the adapter does by
 * default; the adapter also flushes once per tick so that `ack()` can tell the ack reached the server).
 */
export class RawNatsDriver implements QueueDriver {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;

  private constructor(nc: NatsConnection, jsm: JetStreamManager) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
  }

  static async open(spec: DriverSpec): Promise<RawNatsDriver> {
    const nc = await connect({ ...CONNECT, servers: spec.target });
    return new RawNatsDriver(nc, await jetstreamManager(nc));
  }

  #stream(topic: string): string {
    return `${RAW_STREAM_PREFIX}_${topic}`;
  }

  #subject(topic: string): string {
    return `benchraw.${topic}`;
  }

  async setup(topic: string): Promise<void> {
    const stream = this.#stream(topic);
    await this.#jsm.streams.add({
      name: stream,
      subjects: [this.#subject(topic)],
      storage: StorageType.File,
      num_replicas: 1,
      retention: RetentionPolicy.Interest,
      discard: DiscardPolicy.New,
      duplicate_window: nanos(120_000),
    });
    await this.#jsm.consumers.add(stream, {
      durable_name: GROUP,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(30_000),
      max_ack_pending: 1024,
      max_deliver: -1,
    });
  }

  async publish(topic: string, body: Buffer): Promise<void> {
    await this.#js.publish(this.#subject(topic), body, { msgID: nextMessageId() });
  }

  publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    return forEachWindowed(bodies, 256, (body) => this.publish(topic, body));
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const consumer = await this.#js.consumers.get(this.#stream(topic), GROUP);
    const messages: ConsumerMessages = await consumer.consume({ max_messages: options.maxInFlight });
    const loop = (async () => {
      for await (const msg of messages) {
        onMessage(msg.data);
        msg.ack();
      }
    })().catch((error: unknown) => options.onError?.(error));
    return async () => {
      await messages.close();
      await loop;
    };
  }

  async cleanup(topic: string): Promise<void> {
    await deleteStream(this.#jsm, this.#stream(topic));
  }

  async dropScope(): Promise<void> {}

  async close(): Promise<void> {
    await this.#nc.drain();
  }
}

/** The Switchboard NATS adapter with its defaults (file storage, interest retention, `noAsyncTraces`). */
export async function createSwitchboardNatsDriver(spec: DriverSpec): Promise<BrokerDriver> {
  const broker = await createNatsBroker({
    url: spec.target,
    connectOptions: CONNECT,
    prefix: SB_PREFIX,
  });
  const jsm = await jetstreamManager(broker.connection);
  return new BrokerDriver(broker, { cleanup: (topic) => deleteStream(jsm, `${SB_PREFIX.toUpperCase()}_${topic}`) });
}
