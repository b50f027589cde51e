/** Settings a demo service reads from its environment (the orchestrator sets them). */
export interface ServiceConfig {
  readonly port: number;
  readonly host: string;
  /** Folder of the embedded stores (SQLite files, claim-check blobs). */
  readonly dataDir: string;
  /** Broker URL: `sqlite:<file>` by default; `nats://`, `amqp://`, `redis://`, `postgres://`, `sns-sqs://` (also the claim-check store: S3). */
  readonly broker: string;
  /**
   * Where ServiceB keeps its names table, whose committed changes become `name.saved`: `sqlite`
   * (default; a file in the data folder, triggers into B's outbox) or a `postgres://` URL (logical
   * replication; the server needs `wal_level = logical`).
   */
  readonly changes: string;
}

export function readConfig(defaultPort: number): ServiceConfig {
  const dataDir = process.env.SWITCHBOARD_DATA_DIR ?? '.switchboard';
  return {
    port: Number(process.env.PORT ?? defaultPort),
    host: process.env.HOST ?? '127.0.0.1',
    dataDir,
    broker: process.env.SWITCHBOARD_BROKER ?? `sqlite:${dataDir}/broker.db`,
    changes: process.env.SWITCHBOARD_CHANGES || 'sqlite',
  };
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Stops `close` on SIGINT/SIGTERM, once. */
export function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
