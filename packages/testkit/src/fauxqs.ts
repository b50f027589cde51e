/**
 * A private SNS/SQS/S3 emulator (fauxqs) for tests, on loopback only: one per test file, on a port
 * of its own, so tests never share queues with anyone. Started with `buildApp` + `listen` on
 * 127.0.0.1 (fauxqs' CLI and `startFauxqs` listen on every interface). It keeps no state across a
 * restart: `restart()` comes back empty, as a fresh emulator would.
 *
 * `fauxqs` is an optional peer dependency of this package: only tests that call this need it.
 */

export interface FauxqsQueueState {
  readonly ready: readonly { readonly body: string }[];
  readonly delayed: readonly { readonly body: string }[];
  readonly inflight: readonly { readonly message: { readonly body: string }; readonly receiptHandle: string }[];
}

export interface FauxqsServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>`: the endpoint for SNS, SQS and S3 clients. */
  readonly endpoint: string;
  readonly region: string;
  /** Static credentials the emulator accepts (it checks none). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The engine URL of this emulator for `connectBroker` / `connectBlobStore`. */
  readonly url: string;
  /** Messages of a queue by name (ready, delayed, in flight), read from the emulator's debug endpoint; `undefined` when it has no such queue. */
  inspectQueue(name: string): Promise<FauxqsQueueState | undefined>;
  /** Stops it (open connections are cut). */
  stop(): Promise<void>;
  /** Stops it and starts an empty one on the same port. */
  restart(): Promise<void>;
}

interface App {
  listen(options: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
  readonly server: { address(): { port: number } | string | null };
}

async function listen(port: number, region: string): Promise<App> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { buildApp } = (await import('fauxqs')) as unknown as {
    buildApp(options: { logger: boolean; host: string; defaultRegion: string }): App;
  };
  const app = buildApp({ logger: false, host: '127.0.0.1', defaultRegion: region });
  for (let attempt = 1; ; attempt++) {
    try {
      await app.listen({ host: '127.0.0.1', port });
      return app;
    } catch (error) {
      // Right after a stop the port can still be held for a moment.
      if (port === 0 || attempt >= 50 || (error as { code?: string }).code !== 'EADDRINUSE') throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Starts a fauxqs emulator on 127.0.0.1 (port 0: a free one). */
export async function startFauxqsServer(options: { port?: number; region?: string } = {}): Promise<FauxqsServer> {
  const region = options.region ?? 'us-east-1';
  let app: App | undefined = await listen(options.port ?? 0, region);
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    port,
    endpoint,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    url: `sns-sqs://127.0.0.1:${port}`,
    async inspectQueue(name) {
      const response = await fetch(`${endpoint}/_fauxqs/queues/${encodeURIComponent(name)}`);
      if (response.status === 404) return undefined;
      const state = (await response.json()) as { messages: FauxqsQueueState };
      return state.messages;
    },
    async stop() {
      const running = app;
      app = undefined;
      await running?.close();
    },
    async restart() {
      await app?.close();
      app = await listen(port, region);
    },
  };
}
