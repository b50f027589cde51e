export interface RabbitMqBrokerOptions {
  /** AMQP URL, e.g. `amqp://user:pass@host:5672/vhost`. */
  readonly url: string;
  /** Namespace of every name the broker creates: exchanges `<prefix><topic>`, queues `<prefix><topic>@<group>`. Default `switchboard.`. */
  readonly prefix?: string;
  /** Group queue type. `quorum` (default, replicated, counts deliveries) or `classic`. */
  readonly queueType?: 'quorum' | 'classic';
  /** Largest body accepted, in bytes; keep it at or below the server's `max_message_size`. Default 128 MiB (the server default). */
  readonly maxMessageBytes?: number;
  /** How long one publish may keep retrying (reconnects, lost channels) before it fails. Default 15 000 ms. */
  readonly publishTimeoutMs?: number;
  /** Publishes of one `publishBatch` in flight at once. Default 512. */
  readonly publishConcurrency?: number;
  /** How long `close()` waits for running handlers before releasing their deliveries. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Retries of the first connection before `createRabbitMqBroker` fails. Default 3. */
  readonly connectRetries?: number;
  /** Longest pause between reconnect attempts, in ms. Default 5 000. */
  readonly maxReconnectDelayMs?: number;
  /** Heartbeat interval in seconds negotiated with the server. Default 10. */
  readonly heartbeatSeconds?: number;
}

/** The RabbitMQ limit on a channel's prefetch count (a 16-bit field): the largest `maxInFlight`. */
export const MAX_PREFETCH = 65_535;

export interface ResolvedRabbitMqOptions {
  readonly url: string;
  readonly prefix: string;
  readonly queueType: 'quorum' | 'classic';
  readonly maxMessageBytes: number;
  readonly publishTimeoutMs: number;
  readonly publishConcurrency: number;
  readonly drainTimeoutMs: number;
  readonly connectRetries: number;
  readonly maxReconnectDelayMs: number;
  readonly heartbeatSeconds: number;
}

export function resolveOptions(options: RabbitMqBrokerOptions): ResolvedRabbitMqOptions {
  return {
    url: options.url,
    prefix: options.prefix ?? 'switchboard.',
    queueType: options.queueType ?? 'quorum',
    maxMessageBytes: options.maxMessageBytes ?? 128 * 1024 * 1024,
    publishTimeoutMs: options.publishTimeoutMs ?? 15_000,
    publishConcurrency: options.publishConcurrency ?? 512,
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
    connectRetries: options.connectRetries ?? 3,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 5_000,
    heartbeatSeconds: options.heartbeatSeconds ?? 10,
  };
}
