import { createHash } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';
import { storeRefused } from '@switchboard/core/kit';
import { Redis } from 'ioredis';

/** Connection options shared by the Redis receipt and dead-letter stores. */
export interface RedisStoreOptions {
  /** `redis://host:port/db`. Ignored when `client` is given. */
  readonly url?: string;
  /** An existing client; the store does not quit it on `close()`. */
  readonly client?: Redis;
  /**
   * Prepended to every key. Use a hash tag (`{receipts}:`) on Redis Cluster so that one store's keys
   * share a slot (its scripts touch several keys).
   */
  readonly prefix?: string;
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

export type ScriptArg = string | number | Buffer;

/** A Lua script run by SHA, loaded on first use (and again after `SCRIPT FLUSH` or a restart). */
export class Script {
  readonly #lua: string;
  readonly #sha: string;

  constructor(lua: string) {
    this.#lua = lua;
    this.#sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, 0, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return client.eval(this.#lua, 0, ...args);
    }
  }

  /** Like `run`, with every bulk string in the answer as a Buffer (for binary bodies). */
  async runBuffer(client: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    try {
      return await client.callBuffer('EVALSHA', this.#sha, 0, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return client.callBuffer('EVAL', this.#lua, 0, ...args);
    }
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Server replies that refuse a value for good: a bulk string over `proto-max-bulk-len` (512 MB by
 * default; the server answers a protocol error and drops the connection) or a string that would grow
 * past it. The same command fails the same way on every try.
 */
const REFUSED = /^ERR (Protocol error: invalid bulk length|string exceeds maximum allowed size)/;

/**
 * `SB_STORE_REFUSED` for a reply that refuses a value for good (see `REFUSED`), else
 * `SB_STORE_UNAVAILABLE`: connection failures, timeouts, `LOADING`, `BUSY`, `OOM`, `READONLY`,
 * a key of the wrong type under the store's prefix (the store's problem, not a message's).
 * Switchboard's own errors pass.
 */
export function redisStoreError(kind: string, error: unknown): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  if (error instanceof Error && REFUSED.test(error.message)) {
    return storeRefused(`the Redis ${kind} store refused a value (${error.message.slice(4)})`, { cause: error });
  }
  return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `the Redis ${kind} store failed`, cause: error });
}

/** Refuses a group or source holding a NUL: the stores' key layouts use NUL as the separator. */
export function assertNoNul(kind: string, value: string, what: string): void {
  if (value.includes('\u0000')) throw storeRefused(`the Redis ${kind} store cannot hold a NUL character in a ${what}`);
}

/** A script argument for an optional exact-match filter: `''` for none, else `=` and the value (so `''` itself can be matched). */
export function optionalFilter(value: string | undefined): string {
  return value === undefined ? '' : `=${value}`;
}

/**
 * The client, key prefix and error mapping behind one Redis store. Failures of the server or the
 * connection surface as `SB_STORE_UNAVAILABLE`, values the server refuses as `SB_STORE_REFUSED`
 * (see `redisStoreError`); calls after `close()` fail with `SB_CLOSED`.
 */
export class RedisStoreClient {
  readonly client: Redis;
  readonly prefix: string;
  readonly #ownsClient: boolean;
  readonly #kind: string;
  #closed = false;

  constructor(kind: string, options: RedisStoreOptions, defaultPrefix: string) {
    if (options.client !== undefined) {
      this.client = options.client;
      this.#ownsClient = false;
    } else if (options.url !== undefined) {
      this.client = new Redis(options.url, { maxRetriesPerRequest: 2 });
      this.client.on('error', () => {
        // Reconnects on its own; commands meanwhile fail with SB_STORE_UNAVAILABLE.
      });
      this.#ownsClient = true;
    } else {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `the Redis ${kind} store needs \`url\` or \`client\`` });
    }
    this.#kind = kind;
    this.prefix = options.prefix ?? defaultPrefix;
  }

  assertOpen(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: `the Redis ${this.#kind} store was closed` });
  }

  /** The registry error for a failure of this store (see `redisStoreError`). */
  failure(error: unknown): SwitchboardError {
    return redisStoreError(this.#kind, error);
  }

  /** Runs a call against the server, mapping its failures. */
  async call<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await work(this.client);
    } catch (error) {
      throw this.failure(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** Fixed-width decimal of a non-negative epoch ms, so that byte order is time order in a lex index. */
export function lexTime(ms: number): string {
  return String(Math.max(0, Math.trunc(ms))).padStart(16, '0');
}

/** The larger of two lex range starts (`[x` / `(x`), by byte order; `-` is the smallest. */
export function maxLexStart(a: string, b: string): string {
  if (a === '-') return b;
  if (b === '-') return a;
  const order = Buffer.compare(Buffer.from(a.slice(1)), Buffer.from(b.slice(1)));
  if (order !== 0) return order > 0 ? a : b;
  return a.startsWith('(') ? a : b;
}
