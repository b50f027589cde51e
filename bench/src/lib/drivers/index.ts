import type { DriverSpec, QueueDriver } from '../queue-driver.js';

/** Builds the driver a spec names; each engine's client is loaded only when used (keeps worker memory honest). */
export async function createDriver(spec: DriverSpec): Promise<QueueDriver> {
  switch (spec.engine) {
    case 'sqlite': {
      const m = await import('./sqlite.js');
      return spec.kind === 'raw' ? new m.RawSqliteDriver(spec) : m.createSwitchboardSqliteDriver(spec);
    }
    case 'nats': {
      const m = await import('./nats.js');
      return spec.kind === 'raw' ? m.RawNatsDriver.open(spec) : m.createSwitchboardNatsDriver(spec);
    }
    case 'rabbitmq': {
      const m = await import('./rabbitmq.js');
      return spec.kind === 'raw' ? m.RawRabbitMqDriver.open(spec) : m.createSwitchboardRabbitMqDriver(spec);
    }
    case 'redis': {
      const m = await import('./redis.js');
      return spec.kind === 'raw' ? new m.RawRedisDriver(spec) : m.createSwitchboardRedisDriver(spec);
    }
    case 'postgres': {
      const m = await import('./postgres.js');
      return spec.kind === 'raw' ? new m.RawPostgresDriver(spec) : m.createSwitchboardPostgresDriver(spec);
    }
  }
}
