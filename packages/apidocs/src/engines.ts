import { parseEngineUrl } from '@switchboard/connect';
import type { Broker, DeliveryGuarantee } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { bindingForBroker, contentModeForBroker } from '@switchboard/messaging';

/**
 * How CloudEvents travel on one engine: the data an engine's binding is described by. `mode`
 * `binary` puts every attribute in a header named `prefix + attribute` (values percent-encoded
 * when `percentEncode`) and the data in the body; `structured` sends one
 * `application/cloudevents+json` document.
 */
export interface CloudEventsBindingData {
  /** The CloudEvents protocol binding followed: `amqp`, `nats`, `kafka`, `mqtt`, `http`, or `redis` (Switchboard's layout where no binding exists). */
  readonly name: string;
  readonly mode: 'binary' | 'structured';
  readonly prefix: string;
  readonly percentEncode: boolean;
  /** Where the attributes travel, in the engine's words (`headers`, `application properties`, `MQTT 5 user properties`, `stream fields`...). */
  readonly carrier?: string;
}

/** One engine the messages and events travel on: an AsyncAPI server. */
export interface AsyncApiEngine {
  /** Its id in the document (`servers.<id>`). */
  readonly id: string;
  /** The broker's name (`Broker.name`): `nats`, `rabbitmq`, `redis-streams`, `postgres`, `sqlite`, `memory`, `nats-core`, `redis-pubsub`, `mqtt`. */
  readonly broker: string;
  /** AsyncAPI server `protocol`, e.g. `nats`, `amqp`, `redis`, `mqtt`. */
  readonly protocol: string;
  readonly host: string;
  readonly pathname?: string;
  readonly description?: string;
  /** `at-most-once` engines carry only the events declared `delivery: 'at-most-once'`. */
  readonly delivery: DeliveryGuarantee;
  readonly cloudEvents: CloudEventsBindingData;
  /** The engine's own name for a Switchboard topic (a stream, subject, exchange...). Default: the topic itself. */
  readonly address?: (topic: string) => string;
}

const PROTOCOLS: Readonly<Record<string, string>> = {
  nats: 'nats',
  'nats-core': 'nats',
  rabbitmq: 'amqp',
  amqp: 'amqp',
  'redis-streams': 'redis',
  'redis-pubsub': 'redis',
  mqtt: 'mqtt',
  postgres: 'postgresql',
  sqlite: 'sqlite',
  memory: 'memory',
  kafka: 'kafka',
};

const CARRIERS: Readonly<Record<string, string>> = {
  nats: 'NATS message headers',
  'nats-core': 'NATS message headers',
  rabbitmq: 'AMQP 0-9-1 message headers',
  'redis-streams': 'stream entry fields',
  'redis-pubsub': 'the published document',
  mqtt: 'MQTT 5 user properties',
  postgres: 'the message row’s headers',
  sqlite: 'the message row’s headers',
  memory: 'in-process message headers',
};

const AT_MOST_ONCE = new Set(['nats-core', 'redis-pubsub', 'mqtt']);

/**
 * The engine description of a broker, from the same functions the messaging layer uses to pick
 * the binding and the content mode (`bindingForBroker`, `contentModeForBroker`).
 */
export function engineForBroker(
  broker: Pick<Broker, 'name'> & Partial<Pick<Broker, 'capabilities'>>,
  location: {
    readonly host: string;
    readonly id?: string;
    readonly protocol?: string;
    readonly pathname?: string;
    readonly description?: string;
  },
): AsyncApiEngine {
  const delivery: DeliveryGuarantee = broker.capabilities?.delivery ?? (AT_MOST_ONCE.has(broker.name) ? 'at-most-once' : 'at-least-once');
  const binding = bindingForBroker(broker);
  // Content mode follows the delivery guarantee alone.
  const mode = contentModeForBroker({ capabilities: { ...broker.capabilities, delivery } as Broker['capabilities'] });
  const carrier = CARRIERS[broker.name];
  return {
    id: location.id ?? broker.name,
    broker: broker.name,
    protocol: location.protocol ?? PROTOCOLS[broker.name] ?? broker.name,
    host: location.host,
    ...(location.pathname === undefined ? {} : { pathname: location.pathname }),
    ...(location.description === undefined ? {} : { description: location.description }),
    delivery,
    cloudEvents: {
      name: broker.name === 'mqtt' ? 'mqtt' : binding.name,
      mode,
      prefix: binding.prefix,
      percentEncode: binding.percentEncode,
      ...(carrier === undefined ? {} : { carrier }),
    },
  };
}

const BROKER_OF_ENGINE: Readonly<Record<string, string>> = {
  memory: 'memory',
  sqlite: 'sqlite',
  nats: 'nats',
  rabbitmq: 'rabbitmq',
  redis: 'redis-streams',
  postgres: 'postgres',
  mqtt: 'mqtt',
};

/**
 * The engine an engine URL names (`connectBroker`'s URLs: `sqlite:.switchboard/broker.db`,
 * `nats://127.0.0.1:4222`, `amqp://...`, `redis://...`, `postgres://...`, `mqtt://...`,
 * `memory:`). Credentials are left out of the document.
 */
export function engineFromUrl(url: string, options: { readonly id?: string; readonly description?: string } = {}): AsyncApiEngine {
  const target = parseEngineUrl(url);
  const broker = BROKER_OF_ENGINE[target.engine];
  if (broker === undefined) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `no engine for ${target.engine}` });
  let host: string;
  let pathname: string | undefined;
  if (target.engine === 'sqlite') {
    host = 'localhost';
    const file = target.path ?? '';
    pathname = file.startsWith('/') ? file : `/${file}`;
  } else if (target.engine === 'memory') {
    host = 'in-process';
  } else {
    const parsed = new URL(url);
    host = parsed.host;
    if (parsed.pathname !== '' && parsed.pathname !== '/') pathname = parsed.pathname;
  }
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  const secure = scheme === 'amqps' || scheme === 'rediss' || scheme === 'mqtts';
  const protocol = secure ? (scheme === 'mqtts' ? 'secure-mqtt' : scheme) : undefined;
  return engineForBroker(
    { name: broker },
    {
      host,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(protocol === undefined ? {} : { protocol }),
      ...(pathname === undefined ? {} : { pathname }),
      ...(options.description === undefined ? {} : { description: options.description }),
    },
  );
}
