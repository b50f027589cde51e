import type { Broker, DeliveryGuarantee } from '@switchboard/core';
import { parseEngineUrl } from './engine-url.js';

/**
 * What the engine an URL names promises, known without connecting: `at-most-once` for MQTT (see
 * `docs/adapters/mqtt.md`), `at-least-once` for every other engine. `createMessaging` refuses an
 * at-most-once broker as its main broker; a launcher can refuse the URL before starting anything.
 */
export function engineGuarantee(url: string): DeliveryGuarantee {
  return parseEngineUrl(url).engine === 'mqtt' ? 'at-most-once' : 'at-least-once';
}

/**
 * Opens the broker an engine URL names. Each engine's package is loaded only when it is used, so
 * an application installs just the adapter it runs on.
 */
export async function connectBroker(url: string): Promise<Broker> {
  const target = parseEngineUrl(url);
  const prefix = target.params.prefix;
  switch (target.engine) {
    case 'memory': {
      const { createMemoryBroker } = await import('@switchboard/memory');
      return createMemoryBroker();
    }
    case 'sqlite': {
      const { createSqliteBroker } = await import('@switchboard/sqlite');
      return createSqliteBroker({ path: target.path ?? '' });
    }
    case 'nats': {
      const { createNatsBroker } = await import('@switchboard/nats');
      return createNatsBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'rabbitmq': {
      const { createRabbitMqBroker } = await import('@switchboard/rabbitmq');
      return createRabbitMqBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'redis': {
      const { createRedisStreamsBroker } = await import('@switchboard/redis');
      return createRedisStreamsBroker({
        url: stripParams(url),
        ...(prefix ? { prefix } : {}),
        ...(target.params.persistent === 'true' ? { persistent: true } : {}),
      });
    }
    case 'postgres': {
      const { createPostgresBroker } = await import('@switchboard/postgres');
      return createPostgresBroker({ connectionString: stripParams(url), ...(prefix ? { tablePrefix: prefix } : {}) });
    }
    case 'mqtt': {
      // At-most-once (see docs/adapters/mqtt.md): meant as `createMessaging({ atMostOnce: { broker } })`.
      const { createMqttBroker } = await import('@switchboard/mqtt');
      return createMqttBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
  }
}

/** Removes Switchboard's own query parameters before a URL reaches a driver. */
function stripParams(url: string): string {
  const parsed = new URL(url);
  for (const key of ['prefix', 'persistent']) parsed.searchParams.delete(key);
  return parsed.toString();
}
