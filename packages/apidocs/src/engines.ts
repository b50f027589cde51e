import { awsTarget, parseEngineUrl } from '@switchboard/connect';
import type { Broker, CloudEventsBinding, DeliveryGuarantee } from '@switchboard/core';
import { cloudEventsBindings, SwitchboardError } from '@switchboard/core';

/**
 * How CloudEvents travel on one engine: the broker's own binding data (`Broker.binding`: content
 * mode, attribute prefix and the prefixes read, value encoding, where `datacontenttype` goes),
 * plus where the attributes travel in the engine's words.
 */
export interface CloudEventsBindingData extends CloudEventsBinding {
  /** Where the attributes travel (`headers`, `application properties`, `MQTT 5 user properties`, `stream fields`...). */
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
  'sns-sqs': 'sns',
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
  'sns-sqs': 'the SNS message body; ce-type, ce-source and content-type also as message attributes',
};

/**
 * The engine description of a broker, from its own binding data (`broker.binding`, exactly what the
 * messaging layer encodes and decodes through) and its delivery guarantee.
 */
export function engineForBroker(
  broker: Pick<Broker, 'name' | 'binding'> & { readonly capabilities?: Pick<Broker['capabilities'], 'delivery'> },
  location: {
    readonly host: string;
    readonly id?: string;
    readonly protocol?: string;
    readonly pathname?: string;
    readonly description?: string;
  },
): AsyncApiEngine {
  const delivery: DeliveryGuarantee = broker.capabilities?.delivery ?? 'at-least-once';
  const carrier = CARRIERS[broker.name];
  return {
    id: location.id ?? broker.name,
    broker: broker.name,
    protocol: location.protocol ?? PROTOCOLS[broker.name] ?? broker.name,
    host: location.host,
    ...(location.pathname === undefined ? {} : { pathname: location.pathname }),
    ...(location.description === undefined ? {} : { description: location.description }),
    delivery,
    cloudEvents: { ...broker.binding, ...(carrier === undefined ? {} : { carrier }) },
  };
}

/** What the adapter behind each engine URL declares (its `name`, `binding` and guarantee), known without connecting. */
const BROKER_OF_ENGINE: Readonly<Record<string, Pick<Broker, 'name' | 'binding'> & { capabilities: { delivery: DeliveryGuarantee } }>> = {
  memory: { name: 'memory', binding: cloudEventsBindings.plain, capabilities: { delivery: 'at-least-once' } },
  sqlite: { name: 'sqlite', binding: cloudEventsBindings.plain, capabilities: { delivery: 'at-least-once' } },
  nats: { name: 'nats', binding: cloudEventsBindings.nats, capabilities: { delivery: 'at-least-once' } },
  rabbitmq: { name: 'rabbitmq', binding: cloudEventsBindings.amqp, capabilities: { delivery: 'at-least-once' } },
  redis: { name: 'redis-streams', binding: cloudEventsBindings.plain, capabilities: { delivery: 'at-least-once' } },
  postgres: { name: 'postgres', binding: cloudEventsBindings.plain, capabilities: { delivery: 'at-least-once' } },
  mqtt: { name: 'mqtt', binding: cloudEventsBindings.mqtt, capabilities: { delivery: 'at-most-once' } },
  'sns-sqs': { name: 'sns-sqs', binding: cloudEventsBindings.snsSqs, capabilities: { delivery: 'at-least-once' } },
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
  } else if (target.engine === 'sns-sqs') {
    const aws = awsTarget(url);
    host = aws.endpoint === undefined ? `sns.${aws.region}.amazonaws.com` : new URL(aws.endpoint).host;
  } else {
    const parsed = new URL(url);
    host = parsed.host;
    if (parsed.pathname !== '' && parsed.pathname !== '/') pathname = parsed.pathname;
  }
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  const secure = scheme === 'amqps' || scheme === 'rediss' || scheme === 'mqtts';
  const protocol = secure ? (scheme === 'mqtts' ? 'secure-mqtt' : scheme) : undefined;
  return engineForBroker(broker, {
    host,
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(protocol === undefined ? {} : { protocol }),
    ...(pathname === undefined ? {} : { pathname }),
    ...(options.description === undefined ? {} : { description: options.description }),
  });
}
