import type { BrokerDriver, DriverSpec, QueueDriver } from '../queue-driver.js';
import type { NativeStores } from './messaging.js';

/** The Switchboard adapter of `spec.engine`, and the engine's own receipt store where it has one. */
async function adapter(spec: DriverSpec): Promise<{ driver: BrokerDriver; native?: NativeStores }> {
  switch (spec.engine) {
    case 'sqlite':
      return { driver: (await import('./sqlite.js')).createSwitchboardSqliteDriver(spec) };
    case 'nats':
      return { driver: await (await import('./nats.js')).createSwitchboardNatsDriver(spec) };
    case 'rabbitmq':
      return { driver: await (await import('./rabbitmq.js')).createSwitchboardRabbitMqDriver(spec) };
    case 'redis': {
      const m = await import('./redis.js');
      return { driver: m.createSwitchboardRedisDriver(spec), native: m.redisNativeStores(spec) };
    }
    case 'postgres': {
      const m = await import('./postgres.js');
      return { driver: m.createSwitchboardPostgresDriver(spec), native: m.postgresNativeStores(spec) };
    }
  }
}

/** The raw client of `spec.engine`. */
async function raw(spec: DriverSpec): Promise<QueueDriver> {
  switch (spec.engine) {
    case 'sqlite':
      return new (await import('./sqlite.js')).RawSqliteDriver(spec);
    case 'nats':
      return (await import('./nats.js')).RawNatsDriver.open(spec);
    case 'rabbitmq':
      return (await import('./rabbitmq.js')).RawRabbitMqDriver.open(spec);
    case 'redis':
      return new (await import('./redis.js')).RawRedisDriver(spec);
    case 'postgres':
      return new (await import('./postgres.js')).RawPostgresDriver(spec);
  }
}

/** Builds the driver a spec names; each engine's client is loaded only when used (keeps worker memory honest). */
export async function createDriver(spec: DriverSpec): Promise<QueueDriver> {
  if (spec.kind === 'raw') return raw(spec);
  const { driver, native } = await adapter(spec);
  if (spec.kind === 'switchboard') return driver;
  const { MessagingDriver } = await import('./messaging.js');
  return new MessagingDriver(driver, spec.kind, native);
}
