import { createRedisReceiptStore, createRedisStreamsBroker } from '@switchboard/redis';
import { Redis } from 'ioredis';
import { BrokerDriver, type ConsumeOptions, type DriverSpec, GROUP, nextMessageId, type QueueDriver } from '../queue-driver.js';
import type { NativeStores } from './messaging.js';

const RAW_PREFIX = 'benchraw:';
const SB_PREFIX = 'benchsb:';
/** Longest blocking read, as the adapter's default `pollIntervalMs`. */
const BLOCK_MS = 200;

type Entry = [Buffer, Buffer[] | null];

/** One stream's entries: `[[key, entries]]` over RESP2, `[key, entries]` as ioredis maps a RESP3 map. */
function entriesOf(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const entries: unknown = Array.isArray(reply[0]) ? (reply[0] as unknown[])[1] : reply[1];
  return Array.isArray(entries) ? (entries as Entry[]) : [];
}

function bodyOf(fields: Buffer[] | null): Buffer {
  if (fields !== null) {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === 'body') return fields[i + 1]!;
  }
  return Buffer.alloc(0);
}

async function deleteKeys(client: Redis, prefix: string, topic: string): Promise<void> {
  await client.del(`${prefix}{${topic}}`, `${prefix}{${topic}}:delayed:${GROUP}`);
}

/**
 * Raw ioredis doing what the adapter does: one stream per topic with a consumer group created at
 * `$`, `XADD` of the same fields (`id`, `headers`, `body`), a consumer on its own connection that
 * runs `XREADGROUP ... COUNT maxInFlight BLOCK 200`, handles the entries and sends one `XACK` for
 * the batch (pipelined, not awaited before the next read).
 */
export class RawRedisDriver implements QueueDriver {
  readonly #client: Redis;
  readonly #target: string;

  constructor(spec: DriverSpec) {
    this.#target = spec.target;
    this.#client = new Redis(spec.target);
    this.#client.on('error', () => {});
  }

  #key(topic: string): string {
    return `${RAW_PREFIX}{${topic}}`;
  }

  async setup(topic: string): Promise<void> {
    await this.#client.call('XGROUP', 'CREATE', this.#key(topic), GROUP, '$', 'MKSTREAM');
  }

  async publish(topic: string, body: Buffer): Promise<void> {
    await this.#client.callBuffer('XADD', this.#key(topic), '*', 'id', nextMessageId(), 'headers', '{}', 'body', body);
  }

  async publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    for (let i = 0; i < bodies.length; i += 1000) {
      const pipeline = this.#client.pipeline();
      for (const body of bodies.slice(i, i + 1000)) {
        pipeline.callBuffer('XADD', this.#key(topic), '*', 'id', nextMessageId(), 'headers', '{}', 'body', body);
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error !== null);
      if (failed) throw failed[0];
    }
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const key = this.#key(topic);
    const reader = new Redis(this.#target);
    reader.on('error', () => {});
    const consumer = `c-${process.pid}`;
    let stopping = false;
    let lastAck: Promise<unknown> = Promise.resolve();
    const loop = (async () => {
      while (!stopping) {
        const reply = await reader.callBuffer(
          'XREADGROUP',
          'GROUP',
          GROUP,
          consumer,
          'COUNT',
          options.maxInFlight,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          key,
          '>',
        );
        const entries = entriesOf(reply);
        if (entries.length === 0) continue;
        const ids: string[] = [];
        for (const [id, fields] of entries) {
          onMessage(bodyOf(fields));
          ids.push(id.toString());
        }
        lastAck = this.#client.xack(key, GROUP, ...ids);
      }
    })().catch((error: unknown) => options.onError?.(error));
    return async () => {
      stopping = true;
      await loop;
      await lastAck;
      reader.disconnect();
    };
  }

  async cleanup(topic: string): Promise<void> {
    await deleteKeys(this.#client, RAW_PREFIX, topic);
  }

  async dropScope(): Promise<void> {}

  async close(): Promise<void> {
    await this.#client.quit();
  }
}

/** The Switchboard Redis Streams adapter with its defaults (no retention trimming, `persistent: false`). */
export function createSwitchboardRedisDriver(spec: DriverSpec): BrokerDriver {
  const broker = createRedisStreamsBroker({ url: spec.target, prefix: SB_PREFIX });
  return new BrokerDriver(broker, {
    async cleanup(topic) {
      const client = new Redis(spec.target);
      try {
        await deleteKeys(client, SB_PREFIX, topic);
      } finally {
        await client.quit();
      }
    },
  });
}

/** Receipts and inbox of the messaging `full-native` mode in Redis, under a prefix of the run (deleted afterwards). */
export function redisNativeStores(spec: DriverSpec): NativeStores {
  const prefix = `${SB_PREFIX}${spec.scope}:receipts:`;
  return {
    receipts: () => createRedisReceiptStore({ url: spec.target, prefix }),
    async drop() {
      const client = new Redis(spec.target);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await client.del(...keys);
        } while (cursor !== '0');
      } finally {
        await client.quit();
      }
    },
  };
}
