import { SwitchboardError } from '@switchboard/core';

export type Engine = 'memory' | 'sqlite' | 'nats' | 'rabbitmq' | 'redis' | 'postgres' | 'mqtt';

export interface EngineUrl {
  readonly engine: Engine;
  /** The URL as given. */
  readonly url: string;
  /** For `sqlite:`: the database file. */
  readonly path?: string;
  /** Query parameters (engine options such as `prefix`). */
  readonly params: Readonly<Record<string, string>>;
}

const SCHEMES: Readonly<Record<string, Engine>> = {
  'memory:': 'memory',
  'sqlite:': 'sqlite',
  'nats:': 'nats',
  'amqp:': 'rabbitmq',
  'amqps:': 'rabbitmq',
  'redis:': 'redis',
  'rediss:': 'redis',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mqtt:': 'mqtt',
  'mqtts:': 'mqtt',
};

/**
 * Parses an engine URL:
 * - `memory:` — in-process (tests, one process);
 * - `sqlite:<file>` (relative or absolute path; `sqlite::memory:` is refused: it cannot be shared);
 * - `nats://host:4222`, `amqp://user:pass@host:5672/vhost`, `redis://host:6379/0`,
 *   `postgres://user@host:5432/db`, `mqtt://host:1883` (`mqtts://` for TLS; at-most-once, events only).
 */
export function parseEngineUrl(url: string): EngineUrl {
  const colon = url.indexOf(':');
  const scheme = colon > 0 ? url.slice(0, colon + 1).toLowerCase() : '';
  const engine = SCHEMES[scheme];
  if (!engine) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `unknown engine URL "${redact(url)}"; expected one of ${Object.keys(SCHEMES).join(' ')}`,
    });
  }
  if (engine === 'sqlite') {
    const rest = url.slice(colon + 1);
    const [pathPart = '', query = ''] = rest.replace(/^\/\//, '').split('?', 2);
    if (pathPart === '' || pathPart === ':memory:') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'sqlite: needs a file path, e.g. sqlite:.switchboard/broker.db' });
    }
    return { engine, url, path: decodeURIComponent(pathPart), params: Object.fromEntries(new URLSearchParams(query)) };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `malformed engine URL "${redact(url)}"`, cause });
  }
  return { engine, url, params: Object.fromEntries(parsed.searchParams) };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
