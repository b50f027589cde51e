import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { type Instrumentation, instrument, switchboardIds } from '@switchboard/otel';

/** The OTel SDK with an in-memory exporter, and the bridge subscribed to it. */
export function startTracing(options: { parentProcessOnCreation?: boolean; settleSpans?: boolean; wireIds?: boolean } = {}): {
  readonly exporter: InMemorySpanExporter;
  readonly instrumentation: Instrumentation;
  spans(): ReadableSpan[];
  named(name: string): ReadableSpan[];
  close(): Promise<void>;
} {
  const exporter = new InMemorySpanExporter();
  const { wireIds, ...bridge } = options;
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(wireIds === true ? { idGenerator: switchboardIds() } : {}),
  });
  const instrumentation = instrument({ tracerProvider: provider, ...bridge });
  return {
    exporter,
    instrumentation,
    spans: () => exporter.getFinishedSpans(),
    named: (name) => exporter.getFinishedSpans().filter((span) => span.name === name),
    close: async () => {
      instrumentation.close();
      await provider.shutdown();
    },
  };
}

export function kindName(span: ReadableSpan): string {
  return SpanKind[span.kind];
}

export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** Polls `check` until true (spans of settle and process end after the handler returned). */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
