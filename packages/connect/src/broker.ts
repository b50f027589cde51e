import type { Broker } from '@switchboard/core';
import { parseEngineUrl } from './engine-url.js';

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
      return createSqliteBroker({ path: target.path ?? '', ...(prefix ? { prefix } : {}) });
    }
    case 'nats': {
      const { createNatsBroker } = await import('@switchboard/nats');
      const servers = new URL(url);
      return createNatsBroker({
        servers: `${servers.hostname}:${servers.port || '4222'}`,
        ...(prefix ? { streamPrefix: prefix, subjectPrefix: prefix } : {}),
      });
    }
    case 'rabbitmq': {
      const { createRabbitMqBroker } = await import('@switchboard/rabbitmq');
      return createRabbitMqBroker({ url: stripParams(url), ...(prefix ? { exchangePrefix: prefix } : {}) });
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
      return createPostgresBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'mqtt': {
      // At-most-once (see docs/adapters/mqtt.md): meant as `createMessaging({ atMostOnce: { broker } })`.
      const { createMqttBroker } = await import('@switchboard/mqtt');
      return createMqttBroker({ url: stripParams(url), ...(prefix ? { topicPrefix: prefix } : {}) });
    }
  }
}

/** Removes Switchboard's own query parameters before a URL reaches a driver. */
function stripParams(url: string): string {
  const parsed = new URL(url);
  for (const key of ['prefix', 'persistent']) parsed.searchParams.delete(key);
  return parsed.toString();
}
