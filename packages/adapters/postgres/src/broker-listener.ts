import { backoffDelay } from '@switchboard/core';
import { sleep } from '@switchboard/core/kit';
import type { Notification, Pool, PoolClient } from 'pg';

/**
 * Holds one pooled connection in LISTEN on the broker's channel and calls `onTopic` for every
 * NOTIFY (payload = topic). When the connection drops it reconnects with backoff; meanwhile the
 * consumers' fallback poll keeps them going, so a lost notification only costs latency.
 */
export class NotificationListener {
  readonly #pool: Pool;
  readonly #channel: string;
  readonly #onTopic: (topic: string) => void;
  readonly #report: (error: unknown, action: string) => void;
  #client: PoolClient | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;
  #lost: (() => void) | undefined;

  constructor(pool: Pool, channel: string, onTopic: (topic: string) => void, report: (error: unknown, action: string) => void) {
    this.#pool = pool;
    this.#channel = channel;
    this.#onTopic = onTopic;
    this.#report = report;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        const client = await this.#pool.connect();
        if (this.#stopped) {
          client.release();
          return;
        }
        this.#client = client;
        const lost = new Promise<void>((resolve) => {
          this.#lost = resolve;
        });
        const onError = (error: unknown) => {
          this.#report(error, 'keep listening for notifications');
          this.#lost?.();
        };
        const onNotification = (message: Notification) => {
          if (message.channel === this.#channel && message.payload) this.#onTopic(message.payload);
        };
        const onEnd = () => this.#lost?.();
        client.on('error', onError);
        client.on('end', onEnd);
        client.on('notification', onNotification);
        await client.query(`LISTEN "${this.#channel}"`);
        failures = 0;
        await lost;
        client.off('notification', onNotification);
        client.off('end', onEnd);
        this.#client = undefined;
        client.release(this.#stopped ? undefined : new Error('listener connection lost'));
        client.off('error', onError);
      } catch (error) {
        if (this.#stopped) return;
        this.#report(error, 'listen for notifications');
        if (this.#client) {
          this.#client.release(true);
          this.#client = undefined;
        }
        failures += 1;
        await sleep(backoffDelay(failures, { baseMs: 200, maxMs: 5000, jitter: 'equal' }));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const client = this.#client;
    if (client) await client.query(`UNLISTEN "${this.#channel}"`).catch(() => {});
    this.#lost?.();
    await this.#running;
  }
}
