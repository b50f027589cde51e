import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames, defineContract, operation, parseTraceparent } from '@switchboard/core';
import { createClient, createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import { createMemoryJobStore } from '@switchboard/memory';
import { messagesTopic } from '@switchboard/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Engine, engines, serviceB } from './harness.js';

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const calc = defineContract({
  name: 'calc',
  operations: {
    add: operation({ input: z.object({ a: z.number(), b: z.number() }), output: z.object({ sum: z.number() }) }),
  },
});

type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error' | 'point';
interface Seen {
  readonly channel: string;
  readonly event: Event;
  readonly message: Record<string, unknown>;
}

/** Every event of every Switchboard channel, in order, with a snapshot of the context at that moment. */
function record(): { seen: Seen[]; stop(): void } {
  const seen: Seen[] = [];
  const stops: (() => void)[] = [];
  const listen = (name: string, channel: string, event: Event) => {
    const listener = (message: unknown) => seen.push({ channel, event, message: { ...(message as Record<string, unknown>) } });
    diagnosticsChannel.subscribe(name, listener);
    stops.push(() => diagnosticsChannel.unsubscribe(name, listener));
  };
  for (const channel of channelNames.tracing) {
    for (const event of ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const) listen(`tracing:${channel}:${event}`, channel, event);
  }
  for (const channel of channelNames.point) listen(channel, channel, 'point');
  return {
    seen,
    stop: () => {
      for (const stop of stops.splice(0)) stop();
    },
  };
}

function ended(seen: Seen[], channel: string): Record<string, unknown>[] {
  const event = channel === 'switchboard:receive' ? 'end' : 'asyncEnd';
  return seen.filter((entry) => entry.channel === channel && entry.event === event).map((entry) => entry.message);
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('diagnostics channels: every channel, its events and its documented fields', () => {
  const [, factory] = engines.find(([name]) => name === 'memory')!;
  let engine: Engine;
  let recording: ReturnType<typeof record>;

  beforeAll(() => {
    engine = factory();
    recording = record();
  });
  afterAll(async () => {
    recording.stop();
    await engine.close();
  });

  it('switchboard:handler, call and call:attempt over HTTP: ids, traceparents, status, outcome, durations', async () => {
    const service = createHttpService({ contract: calc, handlers: { add: ({ a, b }) => ({ sum: a + b }) } });
    const { url } = await service.listen();
    const client = createClient(calc, { baseUrl: url, retry: false });
    try {
      await client.call('add', { a: 1, b: 2 }, { traceparent: TRACE, idempotencyKey: 'key-1' });
    } finally {
      await client.close();
      await service.close({ timeoutMs: 100 });
    }
    const events = recording.seen.filter((entry) => entry.channel === 'switchboard:call').map((entry) => entry.event);
    expect(events).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const [call] = ended(recording.seen, 'switchboard:call');
    expect(call).toMatchObject({
      service: 'calc',
      operation: 'add',
      method: 'POST',
      url: `${url}/ops/add`,
      parentTraceparent: TRACE,
      idempotencyKey: 'key-1',
      attempts: 1,
      status: 200,
      outcome: 'ok',
    });
    expect(call?.durationMs).toBeGreaterThanOrEqual(0);
    const [attempt] = ended(recording.seen, 'switchboard:call:attempt');
    expect(attempt).toMatchObject({ operation: 'add', attempt: 1, status: 200, outcome: 'ok', parentTraceparent: TRACE });
    expect(parseTraceparent(attempt?.traceparent as string)?.traceId).toBe(parseTraceparent(TRACE)?.traceId);
    const handler = ended(recording.seen, 'switchboard:handler').find((m) => m.via === 'http');
    expect(handler).toMatchObject({
      service: 'calc',
      operation: 'add',
      via: 'http',
      route: '/ops/add',
      parentTraceparent: attempt?.traceparent,
      idempotencyKey: 'key-1',
      attempt: 1,
      status: 200,
      outcome: 'ok',
    });
    expect(parseTraceparent(handler?.traceparent as string)?.traceId).toBe(parseTraceparent(TRACE)?.traceId);
    expect(handler?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('switchboard:job:submit, poll, run, state, complete and the job handler', async () => {
    const jobs = enableJobs(calc, { store: createMemoryJobStore(), retryAfterSeconds: 1, worker: { pollIntervalMs: 10, heartbeatMs: 50 } });
    const service = createHttpService({
      contract: calc,
      handlers: { add: ({ a, b }) => ({ sum: a + b }) },
      routes: jobs.routes,
      interceptors: jobs.interceptors,
    });
    jobs.start(service);
    const { url } = await service.listen();
    const client = createJobsClient(calc, { baseUrl: url, wait: { transport: 'poll', minIntervalMs: 5, maxIntervalMs: 20 } });
    let jobId = '';
    try {
      const job = await client.submit('add', { a: 2, b: 3 }, { idempotencyKey: 'job-key', traceparent: TRACE });
      jobId = job.jobId;
      await expect(client.wait(job)).resolves.toEqual({ sum: 5 });
      await until(() => ended(recording.seen, 'switchboard:job:run').length === 1, 'the run to end');
    } finally {
      await client.close();
      await jobs.close({ timeoutMs: 100 });
      await service.close({ timeoutMs: 100 });
    }
    const [submit] = ended(recording.seen, 'switchboard:job:submit');
    expect(submit).toMatchObject({
      service: 'calc',
      operation: 'add',
      idempotencyKey: 'job-key',
      parentTraceparent: TRACE,
      jobId,
      status: 202,
      outcome: 'ok',
    });
    expect(parseTraceparent(submit?.traceparent as string)?.traceId).toBe(parseTraceparent(TRACE)?.traceId);
    const polls = ended(recording.seen, 'switchboard:job:poll');
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.map((poll) => poll.poll)).toEqual(polls.map((_, i) => i + 1));
    expect(polls.at(-1)).toMatchObject({ jobId, jobStatus: 'succeeded', outcome: 'ok' });
    const [run] = ended(recording.seen, 'switchboard:job:run');
    expect(run).toMatchObject({
      service: 'calc',
      operation: 'add',
      jobId,
      idempotencyKey: 'add:job-key',
      attempt: 1,
      jobStatus: 'succeeded',
      outcome: 'ok',
    });
    expect(parseTraceparent(run?.traceparent as string)?.traceId).toBe(parseTraceparent(TRACE)?.traceId);
    const states = recording.seen.filter((entry) => entry.channel === 'switchboard:job:state' && entry.message.jobId === jobId);
    expect(states.map((entry) => entry.message.status)).toEqual(['running', 'succeeded']);
    const [complete] = recording.seen.filter((entry) => entry.channel === 'switchboard:job:complete').map((entry) => entry.message);
    expect(complete).toMatchObject({ service: 'calc', operation: 'add', jobId, status: 'succeeded', attempts: 1 });
    expect(complete?.durationMs).toBeGreaterThanOrEqual(0);
    expect(ended(recording.seen, 'switchboard:handler').find((m) => m.via === 'job')).toMatchObject({
      jobId,
      operation: 'add',
      outcome: 'ok',
    });
  });

  it('switchboard:send, receive, process, settle, claimcheck:put|get, dlq and the message handler', async () => {
    const a = engine.messaging({ service: 'service-a', claimCheck: { thresholdBytes: 1024 } });
    const b = engine.messaging({ service: 'service-b', retry: { maxAttempts: 1 } });
    b.handle(serviceB, 'name.submitted', (data) => {
      if (data.name === 'poison') throw new Error('refused');
    });
    b.serve(serviceB, { save: () => ({ id: 'saved' }) });
    await b.start();
    const big = await a.send(serviceB, 'name.submitted', { name: 'x'.repeat(4000) }, { traceparent: TRACE });
    const poison = await a.send(serviceB, 'name.submitted', { name: 'poison' });
    const invoked = await a.invoke(serviceB, 'save', { name: 'Ada' });
    await until(() => ended(recording.seen, 'switchboard:settle').length >= 3, 'three settlements');
    const topic = messagesTopic(serviceB);

    const send = ended(recording.seen, 'switchboard:send').find((m) => m.messageId === big.messageId);
    expect(send).toMatchObject({
      system: 'memory',
      destination: topic,
      kind: 'send',
      source: 'service-a',
      type: 'service-b.name.submitted',
      parentTraceparent: TRACE,
      batchSize: 1,
      outcome: 'ok',
    });
    expect(parseTraceparent(send?.traceparent as string)?.traceId).toBe(parseTraceparent(TRACE)?.traceId);
    // Its data went to the blob store: the body the broker carried is empty; the small one's is not.
    expect(send?.bodySize).toBe(0);
    expect(ended(recording.seen, 'switchboard:send').find((m) => m.messageId === poison.messageId)?.bodySize).toBeGreaterThan(0);
    expect(ended(recording.seen, 'switchboard:send').find((m) => m.messageId === invoked.messageId)?.kind).toBe('invoke');

    const [put] = ended(recording.seen, 'switchboard:claimcheck:put');
    expect(put).toMatchObject({ store: 'test-blobs', destination: topic, outcome: 'ok' });
    expect(String(put?.ref)).toMatch(/^blob:\/\/test-blobs\//);
    const [get] = ended(recording.seen, 'switchboard:claimcheck:get');
    expect(get).toMatchObject({ ref: put?.ref, messageId: big.messageId, size: put?.size, outcome: 'ok' });

    const receive = ended(recording.seen, 'switchboard:receive').find((m) => m.messageId === big.messageId);
    expect(receive).toMatchObject({
      system: 'memory',
      destination: topic,
      group: 'service-b',
      attempt: 1,
      source: 'service-a',
      outcome: 'ok',
    });
    expect(receive?.traceparent).toBe(send?.traceparent);

    const process = ended(recording.seen, 'switchboard:process');
    expect(process.find((m) => m.messageId === big.messageId)).toMatchObject({
      group: 'service-b',
      source: 'service-a',
      type: 'service-b.name.submitted',
      traceparent: send?.traceparent,
      attempt: 1,
      via: 'broker',
      settlement: 'ack',
      outcome: 'ok',
    });
    expect(process.find((m) => m.messageId === poison.messageId)).toMatchObject({
      settlement: 'dead-letter',
      reason: 'max-attempts',
      outcome: 'error',
    });

    const settle = ended(recording.seen, 'switchboard:settle');
    expect(settle.find((m) => m.messageId === poison.messageId)).toMatchObject({
      settlement: 'dead-letter',
      reason: 'max-attempts',
      group: 'service-b',
    });
    expect(settle.find((m) => m.messageId === big.messageId)).toMatchObject({ settlement: 'ack', outcome: 'ok' });

    const [dlq] = recording.seen.filter((entry) => entry.channel === 'switchboard:dlq').map((entry) => entry.message);
    expect(dlq).toMatchObject({
      system: 'memory',
      destination: topic,
      group: 'service-b',
      messageId: poison.messageId,
      reason: 'max-attempts',
      attempt: 1,
    });

    const handler = ended(recording.seen, 'switchboard:handler').find((m) => m.via === 'message');
    expect(handler).toMatchObject({ service: 'service-b', operation: 'save', messageId: invoked.messageId, attempt: 1, outcome: 'ok' });
  });

  it('publishes nothing and builds nothing without subscribers', () => {
    recording.stop();
    for (const channel of channelNames.tracing) expect(diagnosticsChannel.tracingChannel(channel).hasSubscribers).toBe(false);
    for (const channel of channelNames.point) expect(diagnosticsChannel.hasSubscribers(channel)).toBe(false);
  });
});
