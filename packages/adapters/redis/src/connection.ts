import type { RedisOptions } from 'ioredis';
import { Redis } from 'ioredis';
import type { RedisBrokerOptions } from './options.js';

/** A broker's command connection: the `client` it was given, or one it opened from the URL (and closes). */
export class CommandConnection {
  readonly commands: Redis;
  readonly owned: boolean;

  constructor(options: RedisBrokerOptions, url: string, report: (error: unknown, action: string) => void, defaults: RedisOptions = {}) {
    if (options.client) {
      this.commands = options.client;
      this.owned = false;
    } else {
      this.commands = new Redis(url, { ...defaults, ...options.redisOptions });
      this.owned = true;
      this.commands.on('error', (error: unknown) => report(error, 'stay connected'));
    }
  }

  /** Quits the connection when the broker opened it; a given client stays open for its owner. */
  async quit(): Promise<void> {
    if (this.owned) await this.commands.quit().catch(() => this.commands.disconnect());
  }
}
