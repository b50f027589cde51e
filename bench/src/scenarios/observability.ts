import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createClient, createHttpService } from '@switchboard/http';
import { createMetrics } from '@switchboard/metrics';
import { instrument } from '@switchboard/otel';
import { benchContract, payload } from '../contract.js';
import { runLoad } from '../lib/http-load.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import { inMemory } from './messaging.js';

type Observer = 'nothing attached' | 'OpenTelemetry bridge' | 'Prometheus metrics';
const OBSERVERS: readonly Observer[] = ['nothing attached', 'OpenTelemetry bridge', 'Prometheus metrics'];

/** An exporter that counts and drops (the SDK's batching and span building are what is measured). */
class CountingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    this.spans += spans.length;
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Attaches an observer for one measurement; the returned function detaches it. */
function attach(observer: Observer): () => Promise<void> {
  switch (observer) {
    case 'nothing attached':
      return async () => {};
    case 'OpenTelemetry bridge': {
      const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new CountingExporter())] });
      const instrumentation = instrument({ tracerProvider: provider });
      return async () => {
        instrumentation.close();
        await provider.shutdown();
      };
    }
    case 'Prometheus metrics': {
      const metrics = createMetrics();
      return async () => metrics.close();
    }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * The cost of observing: the sync-http path (Switchboard server + typed client in this process,
 * 64 in flight) and the messaging transport path (memory broker, envelope, validation, dead-letter
 * middleware) with nothing subscribed to the diagnostics channels, with the OpenTelemetry bridge
 * (SDK 2.12 tracer provider, batching span processor, an exporter that drops) and with the
 * Prometheus registry. Alternating rounds, median reported; ratios against "nothing attached".
 */
export const observability: Scenario = {
  name: 'observability',
  description: 'sync-http and messaging throughput with nothing, the OTel bridge or Prometheus metrics attached (target ≥ 0.95)',
  async run(ctx) {
    const rounds = ctx.scale < 1 ? 1 : 3;
    const durationMs = Math.round(4000 * ctx.scale);
    const warmupMs = Math.round(1000 * ctx.scale);
    const count = Math.round(50_000 * ctx.scale);
    const service = createHttpService({
      contract: benchContract,
      handlers: { save: (input) => ({ saved: true, name: input.name }) },
      idempotency: false,
    });
    const { port } = await service.listen({ port: 0, host: '127.0.0.1' });
    const origin = `http://127.0.0.1:${port}`;
    const input = JSON.parse(payload) as { name: string; email: string; tags: string[]; age: number };
    try {
      const http = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      const messaging = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < OBSERVERS.length; i++) {
          const observer = OBSERVERS[(i + r) % OBSERVERS.length]!;
          const detach = attach(observer);
          try {
            const client = createClient(benchContract, { baseUrl: origin, connections: 64, retry: false, breaker: false });
            const result = await runLoad({
              origin,
              path: '/ops/save',
              body: payload,
              concurrency: 64,
              durationMs,
              warmupMs,
              send: () => client.call('save', input),
            });
            await client.close();
            http.get(observer)?.push(result.rps);
            messaging.get(observer)?.push(await inMemory(count, 'transport'));
          } finally {
            await detach();
          }
        }
      }
      for (const [path, results, unit] of [
        ['sync-http (server + client, 64 in flight)', http, 'rps'],
        ['messaging transport path (memory broker)', messaging, 'msgsPerS'],
      ] as const) {
        const base = median(results.get('nothing attached') ?? []);
        for (const observer of OBSERVERS) {
          const value = median(results.get(observer) ?? []);
          ctx.record({
            scenario: 'observability',
            subject: observer,
            load: path,
            metrics: { [unit]: Math.round(value), ratioToNothing: round(value / base, 3), rounds: results.get(observer)?.length ?? 0 },
          });
        }
      }
    } finally {
      await service.close({ timeoutMs: 1000 });
    }
  },
};
