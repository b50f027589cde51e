import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  channels,
  createCloudEvent,
  defineContract,
  encodeBinary,
  event as eventOf,
  formatDataHash,
  implement,
  operation,
  tracing,
} from '@switchboard/core';
import { claimCheckVerdict, createFlowRecorder, type FlowEvent, FlowIndex } from '@switchboard/dashboard';
import { createClient, createHttpService } from '@switchboard/http';
import { createMemoryBlobStore, createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const greeter = defineContract({
  name: 'greeter',
  operations: { greet: operation({ input: z.object({ name: z.string() }), output: z.object({ text: z.string() }) }) },
  messages: {},
  events: {},
});

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * The byte bound counts each event as the length of its JSON: exactly, but for the time of an event
 * built from a channel message, counted at its longest (four decimals) without turning it into text.
 */
function expectCountedAsJson(recorder: { stats(): { bytes: number }; events(): FlowEvent[] }): void {
  const events = recorder.events();
  const json = events.reduce((sum, event) => sum + JSON.stringify(event).length, 0);
  expect(recorder.stats().bytes).toBeGreaterThanOrEqual(json);
  expect(recorder.stats().bytes).toBeLessThanOrEqual(json + 5 * events.length);
}

describe('flow recorder', () => {
  it('records a real HTTP call on both sides, joined into one flow by its trace', async () => {
    const recorder = createFlowRecorder({ service: 'both' });
    closers.push(() => recorder.close());
    const service = createHttpService({
      contract: greeter,
      handlers: implement(greeter, { greet: ({ name }) => ({ text: `hello ${name}` }) }),
    });
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => service.close());
    const client = createClient(greeter, { baseUrl: url });
    closers.push(() => client.close());

    expect(await client.call('greet', { name: 'Ada' })).toEqual({ text: 'hello Ada' });

    const kinds = recorder.events().map((event) => event.kind);
    expect(kinds).toEqual(expect.arrayContaining(['call.request', 'call.attempt', 'handler.start', 'handler.end', 'call.response']));
    const response = recorder.events().find((event) => event.kind === 'call.response') as FlowEvent;
    expect(response).toMatchObject({ operation: 'greet', contract: 'greeter', status: 200, outcome: 'ok', service: 'both' });
    expect(response.durationMs).toBeGreaterThanOrEqual(0);
    const index = new FlowIndex();
    for (const event of recorder.events()) index.add(event);
    const { flows } = index.list();
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ status: 'ok', patterns: ['call'], events: recorder.events().length });
    expect(flows[0]?.traces).toEqual([response.traceId]);
    // The byte bound counts each event, as built from its channel message, as the length of its JSON.
    expectCountedAsJson(recorder);
  });

  it('records a message through a broker: publish, delivery attempts, dead letter', async () => {
    const recorder = createFlowRecorder({ service: 'messaging' });
    closers.push(() => recorder.close());
    const broker = createMemoryBroker();
    const deadLetters = createMemoryDeadLetterStore();
    const receiver = createMessaging({
      broker,
      service: 'greeter',
      receipts: createMemoryReceiptStore(),
      deadLetters,
      retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 5 } },
    });
    receiver.serve(
      greeter,
      implement(greeter, {
        greet: () => {
          throw new Error('not today');
        },
      }),
    );
    await receiver.start();
    const sender = createMessaging({ broker, service: 'sender', deadLetters: false });
    closers.push(async () => {
      await sender.close();
      await receiver.close();
      await broker.close();
    });
    const { messageId } = await sender.invoke(greeter, 'greet', { name: 'Ada' });
    await expect.poll(() => recorder.events().some((event) => event.kind === 'dead-letter'), { timeout: 10_000 }).toBe(true);

    const ofMessage = recorder.events().filter((event) => event.messageId === messageId);
    expect(ofMessage.find((event) => event.kind === 'message.publish')).toMatchObject({ sendKind: 'invoke', topic: 'greeter.messages' });
    const deliveries = ofMessage.filter((event) => event.kind === 'message.deliver');
    expect(deliveries.map((event) => [event.attempt, event.outcome])).toEqual([
      [1, 'retry'],
      [2, 'dead-letter'],
    ]);
    expect(ofMessage.find((event) => event.kind === 'dead-letter')).toMatchObject({ reason: 'max-attempts', group: 'greeter' });
    const index = new FlowIndex();
    for (const event of recorder.events()) index.add(event);
    expect(index.flow(`m:${messageId}`)?.summary).toMatchObject({ status: 'error', patterns: ['message'] });
    // The dead-letter rate: the one dead letter, in the second it was stored.
    const window = index.metrics(60, Date.now());
    expect(window.deadLetters.reduce((a, b) => a + b, 0)).toBe(1);
    const dead = recorder.events().find((event) => event.kind === 'dead-letter') as FlowEvent;
    expect(window.deadLetters[window.seconds.findIndex((second) => dead.at >= second && dead.at < second + 1000)]).toBe(1);
    // Errors, retries and dead letters counted as the length of their JSON too.
    expectCountedAsJson(recorder);
  });

  it('records each claim-check fetch with its hash check: verified, or a mismatch that dead-letters the message', async () => {
    const recorder = createFlowRecorder({ service: 'claims' });
    closers.push(() => recorder.close());
    const broker = createMemoryBroker();
    const blobs = createMemoryBlobStore({ name: 'claims-blobs' });
    const receipts = createMemoryReceiptStore();
    const receiver = createMessaging({ broker, service: 'greeter', receipts, deadLetters: createMemoryDeadLetterStore(), blobs });
    const seen: string[] = [];
    receiver.serve(
      greeter,
      implement(greeter, {
        greet: ({ name }) => {
          seen.push(name);
          return { text: 'ok' };
        },
      }),
    );
    await receiver.start();
    const sender = createMessaging({ broker, service: 'sender', deadLetters: false, blobs, claimCheck: { thresholdBytes: 1024 } });
    closers.push(async () => {
      await sender.close();
      await receiver.close();
      await broker.close();
    });
    // Over the threshold: the data goes to the blob store, the consumer fetches it and checks its hash.
    const big = 'x'.repeat(5000);
    const good = await sender.invoke(greeter, 'greet', { name: big });
    expect((await receiver.receipts.wait(good.messageId))?.groups[0]?.state).toBe('processed');
    // A message whose datahash does not match the stored bytes (sent as the sender sends this operation).
    const sent = recorder.events().find((e) => e.kind === 'message.publish' && e.messageId === good.messageId) as FlowEvent;
    const stored = await blobs.put(Buffer.from(JSON.stringify({ name: 'tampered' })), { mediaType: 'application/json' });
    const other = createHash('sha256').update('other bytes').digest('hex');
    const event = createCloudEvent({
      type: sent.type as string,
      source: 'sender',
      datacontenttype: 'application/json',
      extensions: { dataref: stored.uri, datahash: formatDataHash(other) },
    });
    await broker.publish({ id: event.id, topic: sent.topic as string, ...encodeBinary(event, broker.binding) });
    expect((await receiver.receipts.wait(event.id))?.groups[0]).toMatchObject({ state: 'dead-lettered' });

    const gets = recorder.events().filter((e) => e.kind === 'claimcheck.get');
    const fetched = gets.find((e) => e.messageId === good.messageId) as FlowEvent;
    const tampered = gets.find((e) => e.messageId === event.id) as FlowEvent;
    expect(claimCheckVerdict(fetched)).toBe('verified');
    expect(fetched).toMatchObject({ outcome: 'ok', bytes: Buffer.byteLength(JSON.stringify({ name: big })) });
    expect(claimCheckVerdict(tampered)).toBe('mismatch');
    expect(tampered).toMatchObject({ outcome: 'error', error: { code: 'SB_CLAIM_CHECK_HASH_MISMATCH' }, dataref: stored.uri });
    expect(seen).toEqual([big]); // the handler never saw the bytes that failed their check
    const dead = recorder.events().find((e) => e.kind === 'dead-letter' && e.messageId === event.id);
    expect(dead).toMatchObject({ reason: 'claim-check', error: { code: 'SB_CLAIM_CHECK_HASH_MISMATCH' } });
    const index = new FlowIndex();
    for (const e of recorder.events()) index.add(e);
    expect(index.flow(`m:${event.id}`)?.summary.status).toBe('error');
    expect(index.flow(`m:${good.messageId}`)?.summary.status).toBe('ok');
    expect(claimCheckVerdict({ kind: 'claimcheck.get', outcome: 'error', error: { code: 'SB_CLAIM_CHECK_MISSING' } })).toBe('missing');
    expect(claimCheckVerdict({ kind: 'claimcheck.put', outcome: 'ok' })).toBeUndefined();
  });

  it('records an attachment read by the handler as a claim-check fetch: verified when read to its end, unverified when closed unread', async () => {
    const pictures = defineContract({
      name: 'pictures',
      operations: {},
      messages: {},
      events: { uploaded: eventOf({ data: z.object({ whole: z.boolean() }), attachment: true }) },
    });
    const recorder = createFlowRecorder({ service: 'readers' });
    closers.push(() => recorder.close());
    const broker = createMemoryBroker();
    const blobs = createMemoryBlobStore({ name: 'picture-blobs' });
    const sender = createMessaging({ broker, service: 'pictures', deadLetters: false, blobs });
    const reader = createMessaging({ broker, service: 'reader', receipts: createMemoryReceiptStore(), deadLetters: false, blobs });
    const read: number[] = [];
    reader.on(pictures, 'uploaded', async (data, ctx) => {
      const stream = ctx.attachment();
      if (!data.whole) {
        stream.destroy(); // opened, never read: its hash is never checked
        return;
      }
      let bytes = 0;
      for await (const chunk of stream) bytes += (chunk as Buffer).length;
      read.push(bytes);
    });
    await reader.start();
    closers.push(async () => {
      await sender.close();
      await reader.close();
      await broker.close();
    });
    const picture = Buffer.alloc(256 * 1024, 7);
    const whole = await sender.emit(pictures, 'uploaded', { whole: true }, { attachment: picture, attachmentType: 'image/png' });
    const part = await sender.emit(pictures, 'uploaded', { whole: false }, { attachment: picture, attachmentType: 'image/png' });
    expect((await reader.receipts.wait(whole.messageId))?.groups[0]?.state).toBe('processed');
    expect((await reader.receipts.wait(part.messageId))?.groups[0]?.state).toBe('processed');
    const gets = recorder.events().filter((e) => e.kind === 'claimcheck.get');
    const full = gets.find((e) => e.messageId === whole.messageId) as FlowEvent;
    const early = gets.find((e) => e.messageId === part.messageId) as FlowEvent;
    expect(claimCheckVerdict(full)).toBe('verified');
    expect(full).toMatchObject({ outcome: 'ok', bytes: picture.length, system: 'picture-blobs' });
    expect(claimCheckVerdict(early)).toBe('unverified');
    expect(early).toMatchObject({ outcome: 'error', error: { code: 'SB_CLAIM_CHECK_UNVERIFIED' } });
    expect(read).toEqual([picture.length]);
  });

  it('counts each event as the length of its JSON (the time at most 5 bytes over), whatever its strings, numbers and errors hold', () => {
    const recorder = createFlowRecorder({ service: 'sizes "quoted" \\ ☃', redact: false });
    closers.push(() => recorder.close());
    const awkward = ['plain', 'quote " and \\ backslash', 'line\nfeed\ttab\u0001', 'snow ☃ and 😀 pair', 'lone \ud800 surrogate', ''];
    awkward.forEach((text, i) => {
      recorder.record({
        kind: 'message.publish',
        messageId: `m-${i}`,
        topic: text,
        type: `t.${i}`,
        attempt: i,
        durationMs: i / 3,
        bytes: Number.NaN,
        error: { code: 'SB_X', detail: text },
        data: { text, list: [1, text, null] },
      });
    });
    channels.deadLetter.publish({
      system: 'memory',
      destination: 'd',
      group: 'g',
      messageId: 'dl-1',
      type: undefined,
      attempt: 2,
      reason: 'poison',
      problem: { code: 'SB_VALIDATION', title: 'Invalid "input"', status: 422, detail: 'bad\u2028line' },
    });
    const events = recorder.events();
    expect(events).toHaveLength(awkward.length + 1);
    expectCountedAsJson(recorder);
  });

  it('keeps within its count and byte bounds under sustained load', () => {
    const capacity = 500;
    const maxBytes = 64 * 1024;
    const recorder = createFlowRecorder({ service: 'load', capacity, maxBytes });
    closers.push(() => recorder.close());
    let maxCount = 0;
    let maxSeen = 0;
    for (let i = 0; i < 20_000; i++) {
      recorder.record({ kind: 'message.publish', messageId: `m-${i}`, topic: 'load.messages', type: `load.${'x'.repeat(i % 300)}` });
      const stats = recorder.stats();
      maxCount = Math.max(maxCount, stats.count);
      maxSeen = Math.max(maxSeen, stats.bytes);
    }
    const stats = recorder.stats();
    expect(maxCount).toBeLessThanOrEqual(capacity);
    expect(maxSeen).toBeLessThanOrEqual(maxBytes);
    expect(stats.recorded).toBe(20_000);
    expect(stats.evicted).toBe(20_000 - stats.count);
    // What is kept is the newest, in order, and readable from any position.
    const kept = recorder.events({ limit: capacity });
    expect(kept).toHaveLength(stats.count);
    expect(kept[kept.length - 1]?.messageId).toBe('m-19999');
    expect(kept.every((event, i) => i === 0 || event.seq === (kept[i - 1] as FlowEvent).seq + 1)).toBe(true);
    expect(recorder.events({ since: 19_990 }).map((event) => event.seq)).toEqual([
      19_991, 19_992, 19_993, 19_994, 19_995, 19_996, 19_997, 19_998, 19_999, 20_000,
    ]);
  });

  it('drops payloads unless told not to, and applies a redact function', () => {
    const message = { jobId: 'j1', operation: 'greet', status: 'running', data: { card: '4111 1111 1111 1111' } };
    const plain = createFlowRecorder({ service: 'a' });
    const open = createFlowRecorder({ service: 'b', redact: false });
    const custom = createFlowRecorder({ service: 'c', redact: (event) => ({ ...event, operation: 'hidden' }) });
    closers.push(
      () => plain.close(),
      () => open.close(),
      () => custom.close(),
    );
    channels.jobState.publish(message as never);
    expect(plain.events()[0]).toMatchObject({ kind: 'job.state', jobId: 'j1', status: 'running' });
    expect(plain.events()[0]).not.toHaveProperty('data');
    expect(JSON.stringify(plain.events())).not.toContain('4111');
    expect(open.events()[0]?.data).toEqual({ card: '4111 1111 1111 1111' });
    expect(custom.events()[0]).toMatchObject({ operation: 'hidden', jobId: 'j1' });
  });

  it('places what ended at its start, with its duration', async () => {
    const recorder = createFlowRecorder({ service: 'x', now: () => 10_000 });
    closers.push(() => recorder.close());
    const context = {
      service: 'greeter',
      operation: 'greet',
      url: 'http://x/ops/greet',
      idempotencyKey: 'k-1',
      parentTraceparent: undefined,
    };
    await tracing.jobSubmit.tracePromise(async () => {
      Object.assign(context, { jobId: 'job-1', status: 202, durationMs: 250, outcome: 'ok' });
    }, context);
    expect(recorder.events()[0]).toMatchObject({
      kind: 'job.submit',
      at: 9_750,
      durationMs: 250,
      jobId: 'job-1',
      idempotencyKey: 'k-1',
      status: 202,
    });
  });

  it('keeps events in a SQLite file and starts from them again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-recorder-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'flows.db');
    const first = createFlowRecorder({ service: 'kept', retention: { path } });
    for (let i = 0; i < 50; i++) first.record({ kind: 'job.state', jobId: `job-${i}`, status: 'queued' });
    first.close();
    const second = createFlowRecorder({ service: 'kept', capacity: 20, retention: { path } });
    closers.push(() => second.close());
    expect(second.events().map((event) => event.jobId)).toEqual(Array.from({ length: 20 }, (_, i) => `job-${30 + i}`));
    const next = second.record({ kind: 'job.state', jobId: 'after', status: 'queued' });
    expect(next.seq).toBe(51);
    expect(second.history({ limit: 100 })).toHaveLength(51);
  });

  it('keeps at most maxRows events of a service in the retention file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-recorder-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const recorder = createFlowRecorder({ service: 'trimmed', retention: { path: join(dir, 'flows.db'), maxRows: 30 } });
    for (let i = 0; i < 100; i++) recorder.record({ kind: 'job.state', jobId: `job-${i}`, status: 'queued' });
    recorder.close(); // the last batch is written, and the file trimmed on the first write
    const again = createFlowRecorder({ service: 'trimmed', retention: { path: join(dir, 'flows.db'), maxRows: 30 } });
    closers.push(() => again.close());
    again.record({ kind: 'job.state', jobId: 'one-more', status: 'queued' });
    const kept = again.history({ limit: 1000 });
    expect(kept.length).toBeLessThanOrEqual(31);
    expect(kept[kept.length - 1]?.jobId).toBe('one-more');
  });
});
