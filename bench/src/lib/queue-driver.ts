import type { Broker } from '@switchboard/core';

/** The engines the broker scenarios measure in child processes. */
export type Engine = 'sqlite' | 'nats' | 'rabbitmq' | 'redis' | 'postgres';

/**
 * `raw`: the engine's own client used directly; `switchboard`: the Switchboard adapter (raw broker
 * API); `transport`, `full`, `full-native`: the messaging layer over the adapter (see `MessagingMode`).
 */
export type DriverKind = 'raw' | 'switchboard' | 'transport' | 'full' | 'full-native';

/** Everything a worker process needs to build the same driver as its peers. */
export interface DriverSpec {
  readonly engine: Engine;
  readonly kind: DriverKind;
  /** Random name of this run: schema, file, prefix, so that runs never collide and are easy to drop. */
  readonly scope: string;
  /** Engine URL or, for SQLite, the database file. */
  readonly target: string;
  /** SQLite only: the `synchronous` pragma. */
  readonly synchronous?: 'NORMAL' | 'FULL';
}

export interface ConsumeOptions {
  /** Most messages handed out and not yet acknowledged (prefetch, maxInFlight, batch size). */
  readonly maxInFlight: number;
  /** Told when a raw consumer loop fails (and stops); adapters retry on their own. */
  readonly onError?: (error: unknown) => void;
}

/**
 * One way of moving messages through an engine: the raw client or the Switchboard adapter. Both
 * do the same work for every operation: a publish resolves on the engine's confirmation, and a
 * consumer acknowledges each message after `onMessage` returned.
 */
export interface QueueDriver {
  /** Creates what `topic` needs (stream, queue, table, consumer group), so later publishes are kept. */
  setup(topic: string): Promise<void>;
  /** Publishes one message; resolves when the engine confirmed it. */
  publish(topic: string, body: Buffer): Promise<void>;
  /** Publishes a batch as the engine does it best (one transaction, one pipeline); resolves when all are confirmed. */
  publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void>;
  /** Starts consuming; `onMessage` runs for each delivery, which is then acknowledged. Resolves to a stop function. */
  consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>>;
  /** Removes what `setup(topic)` created, with any messages left in it. */
  cleanup(topic: string): Promise<void>;
  /** Removes what the whole run created (schemas, files); called once, by one worker, at the end. */
  dropScope(): Promise<void>;
  close(): Promise<void>;
}

export const GROUP = 'bench';

let sequence = 0;
const idPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}`;

/** A MessageId unique across the run's processes. */
export function nextMessageId(): string {
  sequence += 1;
  return `${idPrefix}-${sequence}`;
}

/**
 * Drives a Switchboard `Broker` through its raw transport API (no messaging layer): `publish`,
 * `publishBatch`, `declareGroup`, `subscribe` with an ack per delivery.
 */
export class BrokerDriver implements QueueDriver {
  readonly #broker: Broker;
  readonly #cleanup: (topic: string) => Promise<void>;
  readonly #dropScope: () => Promise<void>;

  constructor(broker: Broker, hooks: { cleanup?: (topic: string) => Promise<void>; dropScope?: () => Promise<void> } = {}) {
    this.#broker = broker;
    this.#cleanup = hooks.cleanup ?? (async () => {});
    this.#dropScope = hooks.dropScope ?? (async () => {});
  }

  /** The adapter itself, for drivers that build on it (the messaging layer). */
  get broker(): Broker {
    return this.#broker;
  }

  setup(topic: string): Promise<void> {
    return this.#broker.declareGroup(topic, GROUP);
  }

  publish(topic: string, body: Buffer): Promise<void> {
    return this.#broker.publish({ id: nextMessageId(), topic, headers: {}, body });
  }

  publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    return this.#broker.publishBatch(bodies.map((body) => ({ id: nextMessageId(), topic, headers: {}, body })));
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const subscription = await this.#broker.subscribe({ topic, group: GROUP, maxInFlight: options.maxInFlight }, (delivery) => {
      onMessage(delivery.body);
      return delivery.ack();
    });
    return () => subscription.close();
  }

  cleanup(topic: string): Promise<void> {
    return this.#cleanup(topic);
  }

  dropScope(): Promise<void> {
    return this.#dropScope();
  }

  close(): Promise<void> {
    return this.#broker.close();
  }
}
