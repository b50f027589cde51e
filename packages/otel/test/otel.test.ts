import { SpanStatusCode } from '@opentelemetry/api';
import { defineContract, event, OperationError, operation } from '@switchboard/core';
import { createClient, createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryJobStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { messagingSystem } from '@switchboard/otel';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kindName, parentOf, startTracing, until } from './tracing.js';

const greeter = defineContract({
  name: 'greeter',
  operations: {
    greet: operation({
      input: z.object({ name: z.string().min(1) }),
      output: z.object({ text: z.string() }),
      errors: { Shy: { status: 409 } },
    }),
    boom: operation({ input: z.object({}), output: z.object({}) }),
    /** Runs until the test lets it finish. */
    slow: operation({ input: z.object({}), output: z.object({ text: z.string() }) }),
  },
  events: {
    greeted: event({ data: z.object({ name: z.string() }) }),
  },
});

const handlers = {
  greet: ({ name }: { name: string }) => {
    if (name === 'shy') throw new OperationError('Shy', { detail: 'will not say hello' });
    return { text: `hello ${name}` };
  },
  boom: () => {
    throw new Error('internal');
  },
  slow: async () => {
    await gate.promise;
    return { text: 'done' };
  },
};

function newGate(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

let gate = newGate();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Two services on one memory broker, `greeter` and `listener`, closed after the test. */
function greeterAndListener(stores: { receipts?: ReturnType<typeof createMemoryReceiptStore> } = {}) {
  const broker = createMemoryBroker();
  const options = { broker, deadLetters: createMemoryDeadLetterStore(), ...stores };
  const a = createMessaging({ service: 'greeter', ...options });
  const b = createMessaging({ service: 'listener', ...options });
  closers.push(async () => {
    await a.close();
    await b.close();
    await broker.close();
  });
  return { a, b };
}

describe('OpenTelemetry spans over HTTP', () => {
  it('a CLIENT span per attempt and the SERVER span of the handler as its child, named and attributed per the HTTP conventions', async () => {
    const tracing = startTracing();
    closers.push(tracing.close);
    const service = createHttpService({ contract: greeter, handlers });
    const { url } = await service.listen();
    closers.push(() => service.close({ timeoutMs: 100 }));
    const client = createClient(greeter, { baseUrl: url, retry: false });
    closers.push(() => client.close());

    await expect(client.call('greet', { name: 'Ada' })).resolves.toEqual({ text: 'hello Ada' });
    const [clientSpan] = tracing.spans().filter((span) => kindName(span) === 'CLIENT');
    const [serverSpan] = tracing.spans().filter((span) => kindName(span) === 'SERVER');
    expect(clientSpan?.name).toBe('POST /ops/greet');
    expect(serverSpan?.name).toBe('POST /ops/greet');
    expect(clientSpan?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': `${url}/ops/greet`,
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
      'switchboard.operation': 'greet',
    });
    expect(serverSpan?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/ops/greet',
      'http.response.status_code': 200,
      'switchboard.service': 'greeter',
      'switchboard.via': 'http',
    });
    expect(serverSpan?.spanContext().traceId).toBe(clientSpan?.spanContext().traceId);
    expect(parentOf(serverSpan!)).toBe(clientSpan?.spanContext().spanId);
    expect(serverSpan?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('4xx: an error on the CLIENT span only; 5xx: an error on both, with error.type', async () => {
    const tracing = startTracing();
    closers.push(tracing.close);
    const service = createHttpService({ contract: greeter, handlers });
    const { url } = await service.listen();
    closers.push(() => service.close({ timeoutMs: 100 }));
    const client = createClient(greeter, { baseUrl: url, retry: false });
    closers.push(() => client.close());

    await expect(client.call('greet', { name: 'shy' })).rejects.toMatchObject({ code: 'Shy' });
    await expect(client.call('boom', {})).rejects.toMatchObject({ code: 'SB_HANDLER_FAILED' });
    const server = (name: string) => tracing.spans().find((span) => kindName(span) === 'SERVER' && span.name === name);
    const client4 = tracing.spans().find((span) => kindName(span) === 'CLIENT' && span.name === 'POST /ops/greet');
    expect(client4?.status.code).toBe(SpanStatusCode.ERROR);
    expect(client4?.attributes['http.response.status_code']).toBe(409);
    expect(client4?.attributes['error.type']).toBe('409');
    expect(server('POST /ops/greet')?.status.code).toBe(SpanStatusCode.UNSET);
    expect(server('POST /ops/greet')?.attributes['http.response.status_code']).toBe(409);
    expect(server('POST /ops/boom')?.status.code).toBe(SpanStatusCode.ERROR);
    expect(server('POST /ops/boom')?.attributes['error.type']).toBe('500');
  });
});

describe('OpenTelemetry spans over a broker (memory)', () => {
  it('send PRODUCER, process CONSUMER linked to the creation context, settle CLIENT under it (settleSpans); an operation invoked through the broker runs in its process span', async () => {
    const tracing = startTracing({ settleSpans: true });
    closers.push(tracing.close);
    const { a, b } = greeterAndListener({ receipts: createMemoryReceiptStore() });
    const heard: string[] = [];
    b.on(greeter, 'greeted', (data) => {
      heard.push(data.name);
    });
    a.serve(greeter, handlers);
    await Promise.all([a.start(), b.start()]);

    const sent = await a.emit(greeter, 'greeted', { name: 'Ada' });
    const invoked = await a.invoke(greeter, 'greet', { name: 'Lin' });
    await until(() => tracing.spans().filter((span) => span.name.startsWith('ack ')).length === 2, 'two settle spans');
    expect(heard).toEqual(['Ada']);

    const send = tracing
      .spans()
      .find((span) => span.attributes['messaging.message.id'] === sent.messageId && kindName(span) === 'PRODUCER');
    expect(send?.name).toBe(`send ${send?.attributes['messaging.destination.name']}`);
    expect(send?.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'cloudevents.event_id': sent.messageId,
      'cloudevents.event_source': 'greeter',
      'cloudevents.event_type': 'greeter.greeted',
    });
    const process = tracing
      .spans()
      .find((span) => span.attributes['messaging.message.id'] === sent.messageId && kindName(span) === 'CONSUMER');
    expect(process?.name).toBe(`process ${send?.attributes['messaging.destination.name']}`);
    expect(process?.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'listener',
      'switchboard.delivery.attempt': 1,
      'switchboard.settlement': 'ack',
    });
    // Linked to the creation context (the send span), not parented on it.
    expect(process?.links.map((link) => link.context.spanId)).toEqual([send?.spanContext().spanId]);
    expect(parentOf(process!)).toBeUndefined();
    const settle = tracing
      .spans()
      .find((span) => span.attributes['messaging.message.id'] === sent.messageId && span.name.startsWith('ack '));
    expect(kindName(settle!)).toBe('CLIENT');
    expect(settle?.attributes['messaging.operation.type']).toBe('settle');
    expect(parentOf(settle!)).toBe(process?.spanContext().spanId);

    const invokeProcess = tracing
      .spans()
      .find((span) => span.attributes['messaging.message.id'] === invoked.messageId && kindName(span) === 'CONSUMER');
    // The process span is the handler's: no INTERNAL span of its own, the operation on the process span.
    expect(tracing.spans().filter((span) => kindName(span) === 'INTERNAL')).toEqual([]);
    expect(invokeProcess?.attributes['switchboard.operation']).toBe('greet');
  });

  it('by default: no settle spans (the settlement is on the process span), and what a handler sends nests under its process span', async () => {
    const tracing = startTracing();
    closers.push(tracing.close);
    const { a, b } = greeterAndListener();
    const heard: string[] = [];
    a.on(greeter, 'greeted', (data) => {
      heard.push(data.name);
    });
    b.serve(greeter, {
      ...handlers,
      greet: async ({ name }) => {
        // Sent from inside the handler: its trace is the process span's.
        await b.emit(greeter, 'greeted', { name });
        return { text: `hello ${name}` };
      },
    });
    await Promise.all([a.start(), b.start()]);
    const invoked = await a.invoke(greeter, 'greet', { name: 'Lin' });
    await until(
      () => heard.length === 1 && tracing.spans().filter((span) => kindName(span) === 'CONSUMER').length === 2,
      'both process spans',
    );

    const process = tracing
      .spans()
      .find((span) => span.attributes['messaging.message.id'] === invoked.messageId && kindName(span) === 'CONSUMER');
    expect(process?.attributes).toMatchObject({ 'switchboard.settlement': 'ack', 'switchboard.operation': 'greet' });
    const emitted = tracing
      .spans()
      .find((span) => kindName(span) === 'PRODUCER' && span.attributes['cloudevents.event_type'] === 'greeter.greeted');
    expect(parentOf(emitted!)).toBe(process?.spanContext().spanId);
    expect(emitted?.spanContext().traceId).toBe(process?.spanContext().traceId);
    expect(tracing.spans().filter((span) => kindName(span) === 'CLIENT' || kindName(span) === 'INTERNAL')).toEqual([]);
  });

  it('parents the process span on the creation context when asked (the ambient context becomes a link)', async () => {
    const tracing = startTracing({ parentProcessOnCreation: true });
    closers.push(tracing.close);
    const { a, b } = greeterAndListener();
    b.on(greeter, 'greeted', () => {});
    await Promise.all([a.start(), b.start()]);
    const sent = await a.emit(greeter, 'greeted', { name: 'Ada' });
    await until(() => tracing.spans().some((span) => kindName(span) === 'CONSUMER'), 'the process span');
    const send = tracing.spans().find((span) => kindName(span) === 'PRODUCER');
    const process = tracing.spans().find((span) => kindName(span) === 'CONSUMER');
    expect(process?.attributes['messaging.message.id']).toBe(sent.messageId);
    expect(parentOf(process!)).toBe(send?.spanContext().spanId);
    expect(process?.spanContext().traceId).toBe(send?.spanContext().traceId);
  });

  it('maps engine names to messaging.system values (custom where the registry has none)', () => {
    expect(messagingSystem('nats', 'send')).toBe('nats');
    expect(messagingSystem('nats-core', 'send')).toBe('nats');
    expect(messagingSystem('redis-streams', 'send')).toBe('redis');
    expect(messagingSystem('postgres', 'send')).toBe('postgresql');
    expect(messagingSystem('sqlite', 'send')).toBe('sqlite');
    expect(messagingSystem('rabbitmq', 'send')).toBe('rabbitmq');
    expect(messagingSystem('sns-sqs', 'send')).toBe('aws.sns');
    expect(messagingSystem('sns-sqs', 'receive')).toBe('aws_sqs');
  });
});

describe('OpenTelemetry spans of a job', () => {
  it('one job span linked to its submit and to each poll; the handler nests in it', async () => {
    const tracing = startTracing();
    closers.push(tracing.close);
    const jobs = enableJobs(greeter, {
      store: createMemoryJobStore(),
      retryAfterSeconds: 1,
      worker: { pollIntervalMs: 10, leaseMs: 2_000, heartbeatMs: 50 },
    });
    const service = createHttpService({ contract: greeter, handlers, routes: jobs.routes, interceptors: jobs.interceptors });
    jobs.start(service);
    const { url } = await service.listen();
    closers.push(async () => {
      await jobs.close({ timeoutMs: 100 });
      await service.close({ timeoutMs: 100 });
    });
    const client = createJobsClient(greeter, { baseUrl: url, wait: { transport: 'poll', minIntervalMs: 5, maxIntervalMs: 20 } });
    closers.push(() => client.close());

    gate = newGate();
    const job = await client.submit('slow', {});
    const result = client.wait(job);
    await until(() => tracing.named('GET /jobs/{id}').length >= 3, 'three polls before the job may end');
    gate.resolve();
    await expect(result).resolves.toEqual({ text: 'done' });
    await until(() => tracing.named('job slow').length === 1, 'the job span');

    const submit = tracing.spans().find((span) => span.attributes['switchboard.job.submit'] === true);
    const polls = tracing.named('GET /jobs/{id}');
    const run = tracing.named('job slow')[0]!;
    expect(kindName(submit!)).toBe('CLIENT');
    expect(submit?.attributes['switchboard.job.id']).toBe(job.jobId);
    expect(submit?.attributes['http.response.status_code']).toBe(202);
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.every((poll) => poll.attributes['switchboard.job.id'] === job.jobId)).toBe(true);
    expect(polls.map((poll) => poll.attributes['switchboard.job.poll'])).toEqual(polls.map((_, i) => i + 1));
    expect(kindName(run)).toBe('CONSUMER');
    expect(run.attributes).toMatchObject({ 'switchboard.job.id': job.jobId, 'switchboard.job.status': 'succeeded' });
    const linked = run.links.map((link) => link.context.spanId);
    expect(linked).toContain(submit?.spanContext().spanId);
    // Every poll made while the job ran is linked to it; each poll links back to the submit.
    // (the first may come before a worker claimed the job: three polls were made before it could end)
    const pollIds = polls.map((poll) => poll.spanContext().spanId);
    expect(linked.filter((id) => pollIds.includes(id)).length).toBeGreaterThanOrEqual(2);
    for (const poll of polls) expect(poll.links.map((link) => link.context.spanId)).toContain(submit?.spanContext().spanId);
    const handler = tracing.spans().find((span) => span.name === 'slow' && span.attributes['switchboard.via'] === 'job');
    expect(parentOf(handler!)).toBe(run.spanContext().spanId);
  });
});

describe('span ids that match the wire (switchboardIds)', () => {
  it('the ids another process parents on and links to are those of exported spans: attempt, handler, send, delivery', async () => {
    const tracing = startTracing({ wireIds: true });
    closers.push(tracing.close);
    // What the receiving side saw on the wire, as another process would.
    const seen: { header?: string; handler?: string; creation?: string; delivery?: string } = {};
    const service = createHttpService({
      contract: greeter,
      handlers: {
        ...handlers,
        greet: ({ name }, ctx) => {
          seen.handler = ctx.traceparent;
          return { text: `hello ${name}` };
        },
      },
      interceptors: [
        (call) => {
          seen.header = call.req.headers.traceparent as string | undefined;
          return undefined;
        },
      ],
    });
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => service.close());
    const client = createClient(greeter, { baseUrl: url, retry: false });
    closers.push(() => client.close());
    await client.call('greet', { name: 'Ada' });

    const { a, b } = greeterAndListener();
    b.on(greeter, 'greeted', (_data, ctx) => {
      seen.creation = ctx.event.extensions?.traceparent as string | undefined;
      seen.delivery = ctx.traceparent;
    });
    await Promise.all([a.start(), b.start()]);
    await a.emit(greeter, 'greeted', { name: 'Ada' });
    await until(() => tracing.spans().some((span) => kindName(span) === 'CONSUMER'), 'the process span');

    const idOf = (traceparent: string | undefined) => traceparent?.split('-')[2];
    const traceOf = (traceparent: string | undefined) => traceparent?.split('-')[1];
    const attempt = tracing.spans().find((span) => kindName(span) === 'CLIENT');
    const server = tracing.spans().find((span) => kindName(span) === 'SERVER');
    const send = tracing.spans().find((span) => kindName(span) === 'PRODUCER');
    const process = tracing.spans().find((span) => kindName(span) === 'CONSUMER');
    expect(seen.header).toBeDefined();
    expect(attempt?.spanContext().spanId).toBe(idOf(seen.header));
    expect(attempt?.spanContext().traceId).toBe(traceOf(seen.header));
    expect(server?.spanContext().spanId).toBe(idOf(seen.handler));
    expect(parentOf(server!)).toBe(attempt?.spanContext().spanId);
    expect(send?.spanContext().spanId).toBe(idOf(seen.creation));
    expect(send?.spanContext().traceId).toBe(traceOf(seen.creation));
    expect(process?.spanContext().spanId).toBe(idOf(seen.delivery));
    expect(process?.links.map((link) => link.context.spanId)).toEqual([send?.spanContext().spanId]);
  });
});
