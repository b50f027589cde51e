import { isAbsolute, resolve } from 'node:path';
import type { DeadLetterStore, JobStore, ReceiptStore } from '@switchboard/core';
import { CliError } from './io.js';

/** Where a store lives: `sqlite:<file>` (or a `.db` path), `postgres://…`, `redis://…`. */
export type StoreTarget =
  | { readonly engine: 'sqlite'; readonly path: string }
  | { readonly engine: 'postgres'; readonly url: string }
  | { readonly engine: 'redis'; readonly url: string; readonly prefix?: string };

export function parseStoreUrl(url: string, cwd: string): StoreTarget {
  if (/^postgres(ql)?:\/\//.test(url)) return { engine: 'postgres', url };
  if (/^rediss?:\/\//.test(url)) {
    const parsed = new URL(url);
    const prefix = parsed.searchParams.get('prefix') ?? undefined;
    parsed.searchParams.delete('prefix');
    return { engine: 'redis', url: parsed.toString(), ...(prefix === undefined ? {} : { prefix }) };
  }
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : /\.(db|sqlite3?)$/.test(url) ? url : undefined;
  if (path === undefined || path === '') {
    throw CliError.usage(`--store must be sqlite:<file>, postgres://… or redis://…, got ${url}`);
  }
  return { engine: 'sqlite', path: isAbsolute(path) ? path : resolve(cwd, path) };
}

/** Opens a dead-letter store; the adapter's package is loaded only when used. */
export async function openDeadLetterStore(url: string, cwd: string): Promise<DeadLetterStore> {
  const target = parseStoreUrl(url, cwd);
  switch (target.engine) {
    case 'sqlite': {
      const { createSqliteDeadLetterStore } = await import('@switchboard/sqlite');
      return createSqliteDeadLetterStore({ path: await existing(target.path) });
    }
    case 'postgres': {
      const { createPostgresDeadLetterStore } = await import('@switchboard/postgres');
      return createPostgresDeadLetterStore({ connectionString: target.url });
    }
    case 'redis': {
      const { createRedisDeadLetterStore } = await import('@switchboard/redis');
      return createRedisDeadLetterStore({ url: target.url, ...(target.prefix === undefined ? {} : { prefix: target.prefix }) });
    }
  }
}

export async function openReceiptStore(url: string, cwd: string): Promise<ReceiptStore> {
  const target = parseStoreUrl(url, cwd);
  switch (target.engine) {
    case 'sqlite': {
      const { createSqliteReceiptStore } = await import('@switchboard/sqlite');
      return createSqliteReceiptStore({ path: await existing(target.path) });
    }
    case 'postgres': {
      const { createPostgresReceiptStore } = await import('@switchboard/postgres');
      return createPostgresReceiptStore({ connectionString: target.url });
    }
    case 'redis': {
      const { createRedisReceiptStore } = await import('@switchboard/redis');
      return createRedisReceiptStore({ url: target.url, ...(target.prefix === undefined ? {} : { prefix: target.prefix }) });
    }
  }
}

export async function openJobStore(url: string, cwd: string): Promise<JobStore> {
  const target = parseStoreUrl(url, cwd);
  switch (target.engine) {
    case 'sqlite': {
      const { createSqliteJobStore } = await import('@switchboard/sqlite');
      return createSqliteJobStore({ path: await existing(target.path) });
    }
    case 'postgres': {
      const { createPostgresJobStore } = await import('@switchboard/postgres');
      return createPostgresJobStore({ connectionString: target.url });
    }
    case 'redis': {
      const { createRedisJobStore } = await import('@switchboard/redis');
      return createRedisJobStore({ url: target.url, ...(target.prefix === undefined ? {} : { prefix: target.prefix }) });
    }
  }
}

/** A command that reads a SQLite store must not create an empty one by a typo. */
async function existing(path: string): Promise<string> {
  const { access } = await import('node:fs/promises');
  try {
    await access(path);
  } catch {
    throw CliError.usage(`No SQLite file at ${path}`);
  }
  return path;
}
