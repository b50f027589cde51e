import diagnosticsChannel from 'node:diagnostics_channel';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { type Broker, channelNames, setAmbientTrace } from '@switchboard/core';
import { createFlowRecorder } from '@switchboard/dashboard';
import { createClient, createHttpService } from '@switchboard/http';
import { createMetrics } from '@switchboard/metrics';
import { createNatsBroker } from '@switchboard/nats';
import { instrument, switchboardIds } from '@switchboard/otel';
import { benchContract, payload } from '../contract.js';
import { runLoad } from '../lib/http-load.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import { inMemory } from './messaging.js';

type Observer =
  | 'nothing attached'
  | 'nothing attached, ambient trace off'
  | 'no-op subscriber'
  | 'OpenTelemetry bridge'
  | 'OTel bridge + recorder'
  | 'OTel bridge (1 % sampled) + recorder'
  | 'recorder'
  | 'Prometheus metrics';
const OBSERVERS: readonly Observer[] = [
  'nothing attached',
  'nothing attached, ambient trace off',
  'no-op subscriber',
  'OpenTelemetry bridge',
  'OTel bridge + recorder',
  'OTel bridge (1 % sampled) + recorder',
  'recorder',
  'Prometheus metrics',
];

/** Every event of every Switchboard tracing channel: what publishing costs whoever listens. */
const NOOP_EVENTS = channelNames.tracing.flatMap((name) =>
  (['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const).map((event) => `tracing:${name}:${event}`),
);
const noop = (): void => {};

/** CPU time (this process, user + system) per operation of `run`, in µs: steadier than throughput on a shared machine. */
async function cpuPer(operations: number, run: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  await run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / operations;
}

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
    case 'nothing attached, ambient trace off':
      setAmbientTrace(false);
      return async () => setAmbientTrace(true);
    case 'no-op subscriber': {
      for (const name of NOOP_EVENTS) diagnosticsChannel.subscribe(name, noop);
      return async () => {
        for (const name of NOOP_EVENTS) diagnosticsChannel.unsubscribe(name, noop);
      };
    }
    case 'OpenTelemetry bridge':
      return attachOtel();
    case 'OTel bridge + recorder':
      return withRecorder(attachOtel());
    case 'OTel bridge (1 % sampled) + recorder':
      return withRecorder(attachOtel(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.01) })));
    case 'recorder':
      return withRecorder(async () => {});
    case 'Prometheus metrics': {
      const metrics = createMetrics();
      return async () => metrics.close();
    }
  }
}

/** The bridge on an SDK tracer provider (span ids from the wire, a batching processor, an exporter that drops), with the SDK's default sampler unless given one. */
function attachOtel(sampler?: Sampler): () => Promise<void> {
  const provider = new BasicTracerProvider({
    idGenerator: switchboardIds(),
    spanProcessors: [new BatchSpanProcessor(new CountingExporter())],
    ...(sampler === undefined ? {} : { sampler }),
  });
  const instrumentation = instrument({ tracerProvider: provider });
  return async () => {
    instrumentation.close();
    await provider.shutdown();
  };
}

/** The dashboard's flow recorder at its defaults (100 000 events, 64 MiB, payloads redacted) besides `detach`'s observer. */
function withRecorder(detach: () => Promise<void>): () => Promise<void> {
  const recorder = createFlowRecorder({ service: 'bench' });
  return async () => {
    recorder.close();
    await detach();
  };
}

const NATS_URL = process.env.SWITCHBOARD_NATS_URL ?? 'nats://127.0.0.1:4222';

/** NATS JetStream for the messaging transport path, or undefined when no server answers. */
async function natsBroker(prefix: string): Promise<Broker | undefined> {
  try {
    return await createNatsBroker({ url: NATS_URL, prefix, storage: 'memory', maxAgeMs: 120_000 });
  } catch {
    return undefined;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * The cost of observing: the sync-http path (Switchboard server + typed client in this process,
 * 64 in flight) and the messaging transport path (memory broker, envelope, validation, dead-letter
 * middleware) with nothing subscribed to the diagnostics channels (and so once more with the ambient
 * trace's AsyncLocalStorage turned off, as before automatic trace context), with a no-op listener on every
 * event of every tracing channel (the publishing cost any subscriber brings), with the OpenTelemetry
 * bridge (SDK 2.12 tracer provider, batching span processor, an exporter that drops) and with the
 * Prometheus registry. Alternating rounds, median reported; ratios against "nothing attached", of
 * throughput and of this process's CPU time per operation (the steadier one on a shared machine).
 */
export const observability: Scenario = {
  name: 'observability',
  description:
    'sync-http and messaging (memory broker, NATS JetStream) throughput and CPU per operation with nothing (ambient trace on or off), a no-op subscriber, the OTel bridge, the recorder or Prometheus metrics attached (target ≥ 0.95 with the OTel bridge + recorder)',
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
      const httpCpu = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      const messagingCpu = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      const nats = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      const natsCpu = new Map<Observer, number[]>(OBSERVERS.map((o) => [o, []]));
      // One namespace per run on the shared server: streams of earlier runs are never read.
      const prefix = `obs${process.pid}x${Date.now().toString(36)}`;
      const natsCount = Math.round(20_000 * ctx.scale);
      let natsUp = true;
      // Warm-up, not measured: the JIT, the connection pools, and the run's streams created.
      await inMemory(Math.round(10_000 * ctx.scale), 'transport');
      const warm = await natsBroker(prefix);
      if (warm !== undefined) await inMemory(Math.round(5_000 * ctx.scale), 'transport', false, warm);
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < OBSERVERS.length; i++) {
          const observer = OBSERVERS[(i + r) % OBSERVERS.length]!;
          const detach = attach(observer);
          try {
            const client = createClient(benchContract, { baseUrl: origin, connections: 64, retry: false, breaker: false });
            const before = process.cpuUsage();
            const result = await runLoad({
              origin,
              path: '/ops/save',
              body: payload,
              concurrency: 64,
              durationMs,
              warmupMs,
              send: () => client.call('save', input),
            });
            const used = process.cpuUsage(before);
            await client.close();
            http.get(observer)?.push(result.rps);
            // The CPU time includes the warm-up: divided by the requests the round made at its measured rate.
            httpCpu.get(observer)?.push((used.user + used.system) / Math.max(1, result.rps * ((durationMs + warmupMs) / 1000)));
            let rate = 0;
            messagingCpu.get(observer)?.push(
              await cpuPer(count, async () => {
                rate = await inMemory(count, 'transport');
              }),
            );
            messaging.get(observer)?.push(rate);
            const broker = natsUp ? await natsBroker(prefix) : undefined;
            if (broker === undefined) {
              if (natsUp) ctx.log(`observability: no NATS JetStream at ${NATS_URL}; its messaging path is left out`);
              natsUp = false;
            } else {
              let natsRate = 0;
              natsCpu.get(observer)?.push(
                await cpuPer(natsCount, async () => {
                  natsRate = await inMemory(natsCount, 'transport', false, broker);
                }),
              );
              nats.get(observer)?.push(natsRate);
            }
          } finally {
            await detach();
          }
        }
      }
      for (const [path, results, cpu, unit] of [
        ['sync-http (server + client, 64 in flight)', http, httpCpu, 'rps'],
        ['messaging transport path (memory broker)', messaging, messagingCpu, 'msgsPerS'],
        ['messaging transport path (NATS JetStream, producer and consumer in this process)', nats, natsCpu, 'msgsPerS'],
      ] as const) {
        if ((results.get('nothing attached') ?? []).length === 0) continue;
        const base = median(results.get('nothing attached') ?? []);
        const baseCpu = median(cpu.get('nothing attached') ?? []);
        for (const observer of OBSERVERS) {
          const value = median(results.get(observer) ?? []);
          const cpuUs = median(cpu.get(observer) ?? []);
          ctx.record({
            scenario: 'observability',
            subject: observer,
            load: path,
            metrics: {
              [unit]: Math.round(value),
              ratioToNothing: round(value / base, 3),
              cpuUsPerOp: round(cpuUs, 2),
              cpuRatioToNothing: round(baseCpu / cpuUs, 3),
              rounds: results.get(observer)?.length ?? 0,
            },
          });
        }
      }
    } finally {
      await service.close({ timeoutMs: 1000 });
    }
  },
};
