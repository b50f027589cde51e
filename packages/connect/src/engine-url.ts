import { SwitchboardError } from '@switchboard/core';

export type Engine = 'memory' | 'sqlite' | 'nats' | 'rabbitmq' | 'redis' | 'postgres' | 'mqtt' | 'sns-sqs';

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
  'sns-sqs:': 'sns-sqs',
};

/**
 * Parses an engine URL:
 * - `memory:` — in-process (tests, one process);
 * - `sqlite:<file>` (relative or absolute path; `sqlite::memory:` is refused: it cannot be shared);
 * - `nats://host:4222`, `amqp://user:pass@host:5672/vhost`, `redis://host:6379/0`,
 *   `postgres://user@host:5432/db`, `mqtt://host:1883` (`mqtts://` for TLS; at-most-once, events only);
 * - `sns-sqs://127.0.0.1:4566` — SNS + SQS + S3 at that endpoint (an emulator; plain HTTP, `?tls=true`
 *   for HTTPS), `sns-sqs://?region=eu-west-1` — AWS itself (see {@link awsTarget}).
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

/** Where an `sns-sqs:` URL points: the endpoint (none: AWS itself), the region and the S3 bucket of its blob store. */
export interface AwsTarget {
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Bucket of the claim-check blob store when an emulator URL names none. */
export const DEFAULT_EMULATOR_BUCKET = 'switchboard-claim-checks';

/**
 * Reads an `sns-sqs:` URL. `sns-sqs://host:port` is an endpoint for SNS, SQS and S3 alike (plain
 * HTTP; `?tls=true` for HTTPS), for an emulator or LocalStack; `sns-sqs://` without a host is AWS
 * itself. `?region=` (default `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`) and
 * `?bucket=` (required on AWS, where bucket names are global; `switchboard-claim-checks` on an
 * emulator). Credentials always come from the AWS SDK's standard chain (dummy ones on loopback).
 */
export function awsTarget(url: string): AwsTarget {
  const target = parseEngineUrl(url);
  if (target.engine !== 'sns-sqs') throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${redact(url)} is not an sns-sqs: URL` });
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '') {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: 'sns-sqs: URLs carry no credentials; they come from the AWS SDK chain (environment, profile, role)',
    });
  }
  const params = target.params;
  const region = params.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const tls = params.tls === 'true';
  const endpoint =
    parsed.host === '' ? undefined : `${tls ? 'https' : 'http'}://${parsed.hostname}:${parsed.port || (tls ? '443' : '4566')}`;
  const bucket = params.bucket ?? (endpoint === undefined ? undefined : DEFAULT_EMULATOR_BUCKET);
  if (bucket === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: 'name the S3 bucket of the claim-check store: sns-sqs://?region=<region>&bucket=<bucket> (bucket names are global on AWS)',
    });
  }
  return { ...(endpoint === undefined ? {} : { endpoint }), region, bucket, params };
}
