import { compareEngine, type EngineComparison } from '../lib/broker-load.js';
import type { Scenario } from '../lib/scenario.js';

/** One engine next to its raw client: confirmed publishes (serial, 256 in flight), consume + ack, latency. */
interface EngineScenario extends Omit<EngineComparison, 'scenario' | 'target'> {
  readonly name: string;
  /** What the raw client does, for the description. */
  readonly raw: string;
  /** Environment variable naming the server, and the address used without it. */
  readonly env: string;
  readonly defaultTarget: string;
}

function engineScenario(spec: EngineScenario): Scenario {
  const { name, raw, env, defaultTarget, ...comparison } = spec;
  return {
    name,
    description: `${raw}; ${comparison.rawLabel} vs adapter vs messaging transport and full paths`,
    // A row says so when the server (`${env}`, default `defaultTarget`) is not reachable.
    run: (ctx) => compareEngine(ctx, { ...comparison, scenario: name, target: process.env[env] ?? defaultTarget }),
  };
}

export const brokerNats = engineScenario({
  name: 'broker-nats',
  raw: 'JetStream: js.publish with msgID (serial, 256 in flight), durable pull consumer with acks',
  engine: 'nats',
  env: 'NATS_URL',
  defaultTarget: 'nats://127.0.0.1:4222',
  defaultPort: 4222,
  rawLabel: 'raw @nats-io/jetstream',
});

export const brokerRabbitMq = engineScenario({
  name: 'broker-rabbitmq',
  raw: 'RabbitMQ quorum queue: ConfirmChannel publish (serial, 256 in flight), prefetch + manual ack',
  engine: 'rabbitmq',
  env: 'RABBITMQ_URL',
  defaultTarget: 'amqp://guest:guest@127.0.0.1:5672',
  defaultPort: 5672,
  rawLabel: 'raw amqplib',
});

export const brokerRedis = engineScenario({
  name: 'broker-redis',
  raw: 'Redis Streams: XADD (serial, 256 in flight), XREADGROUP + XACK',
  engine: 'redis',
  env: 'REDIS_URL',
  defaultTarget: 'redis://127.0.0.1:6379',
  defaultPort: 6379,
  rawLabel: 'raw ioredis',
  nativeStores: true,
});

export const brokerPostgres = engineScenario({
  name: 'broker-postgres',
  raw: 'PostgreSQL: INSERT (serial, 256 in flight), SELECT FOR UPDATE SKIP LOCKED + DELETE',
  engine: 'postgres',
  env: 'POSTGRES_URL',
  defaultTarget: 'postgres://postgres@127.0.0.1:5432/test',
  defaultPort: 5432,
  rawLabel: 'raw pg',
  nativeStores: true,
});
