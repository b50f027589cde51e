import type { Broker } from '@switchboard/core';
import { createNatsBroker } from '@switchboard/nats';
import { createPostgresBroker } from '@switchboard/postgres';
import { createRabbitMqBroker } from '@switchboard/rabbitmq';
import { createRedisStreamsBroker } from '@switchboard/redis';
import { createSqliteBroker } from '@switchboard/sqlite';
import { PrivateNatsServer, PrivatePostgresServer, PrivateRabbitMqNode, type PrivateRedis, startPrivateRedis } from '@switchboard/testkit';

export const ENGINES = ['sqlite', 'postgres', 'redis', 'rabbitmq', 'nats'] as const;
export type EngineName = (typeof ENGINES)[number];

/** What a process needs to open the broker of one run (serializable: handed to consumer processes). */
export interface BrokerConfig {
  readonly engine: EngineName;
  /** The server's URL, or for SQLite the database file. */
  readonly url: string;
  /** Names of this run's tables, streams, queues (fresh per run). */
  readonly prefix: string;
}

/**
 * Opens the broker of a run with settings fit for faults: short reconnect delays and heartbeats,
 * so that a broker coming back or a partition healing is noticed in seconds, not minutes.
 */
export async function openBroker(config: BrokerConfig): Promise<Broker> {
  const { url, prefix } = config;
  switch (config.engine) {
    case 'sqlite':
      return createSqliteBroker({ path: url, prefix: `${prefix}_`, pollIntervalMs: 20, drainTimeoutMs: 200 });
    case 'postgres':
      return createPostgresBroker({ url, schema: prefix, pollIntervalMs: 100, drainTimeoutMs: 200, onError: () => {} });
    case 'redis':
      return createRedisStreamsBroker({ url, prefix: `${prefix}:`, persistent: true, drainTimeoutMs: 200, onError: () => {} });
    case 'nats':
      return createNatsBroker({ url, prefix, drainTimeoutMs: 200, publishTimeoutMs: 10_000 });
    case 'rabbitmq':
      return createRabbitMqBroker({
        url,
        prefix: `${prefix}.`,
        drainTimeoutMs: 200,
        publishTimeoutMs: 10_000,
        maxReconnectDelayMs: 500,
        heartbeatSeconds: 2,
      });
  }
}

/** A private server of one engine, started by the suite on a free port, that may be killed and restarted. */
export interface EngineServer {
  readonly engine: EngineName;
  /** The URL clients use (a file path for SQLite, which has no server). */
  readonly url: string;
  /** The TCP port clients connect to (undefined for SQLite). */
  readonly port: number | undefined;
  /** SIGKILL, no clean shutdown. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/** Starts a private server for `engine` (nothing for SQLite: the broker is a file of each run). */
export async function startEngineServer(engine: EngineName): Promise<EngineServer> {
  switch (engine) {
    case 'sqlite':
      return {
        engine,
        url: '',
        port: undefined,
        kill: async () => {},
        restart: async () => {},
        dispose: async () => {},
      };
    case 'postgres': {
      const server = new PrivatePostgresServer({ settings: { max_connections: 200 } });
      await server.start();
      return {
        engine,
        url: server.url,
        port: server.port,
        kill: () => server.stop('kill'),
        restart: () => server.start(),
        dispose: () => server.dispose(),
      };
    }
    case 'redis': {
      const server: PrivateRedis = await startPrivateRedis();
      return {
        engine,
        url: server.url,
        port: Number(new URL(server.url).port),
        kill: () => server.kill(),
        restart: () => server.start(),
        dispose: () => server.stop(),
      };
    }
    case 'nats': {
      const server = new PrivateNatsServer();
      await server.start();
      return {
        engine,
        get url() {
          return server.url;
        },
        port: server.port,
        kill: () => server.stop(),
        restart: () => server.start(),
        dispose: () => server.dispose(),
      };
    }
    case 'rabbitmq': {
      const node = new PrivateRabbitMqNode();
      await node.start();
      return {
        engine,
        url: node.url,
        port: node.port,
        kill: () => node.stop('SIGKILL'),
        restart: () => node.start(),
        dispose: () => node.dispose(),
      };
    }
  }
}

/** `url` with its port replaced (to route a client through a proxy). */
export function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString().replace(/\/$/, '');
}
