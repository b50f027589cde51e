import { cloudEventToHttp, createCloudEvent, encodeBatch, newMessageId } from '@switchboard/core';
import { createHttpService, type HttpService } from '@switchboard/http';
import { fetchReceipt, type Messaging } from '@switchboard/messaging';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Engine, engines, serviceA, serviceB } from './harness.js';

describe.each(engines)('receipts and CloudEvents over HTTP on %s', (_name, factory) => {
  let engine: Engine;
  let b: Messaging;
  let a: Messaging;
  let http: HttpService;
  let url: string;
  const seen: string[] = [];

  beforeEach(async () => {
    seen.length = 0;
    engine = factory();
    a = engine.messaging({ service: 'service-a' });
    b = engine.messaging({ service: 'service-b' });
    b.handle(serviceB, 'name.submitted', (data) => {
      seen.push(data.name);
    });
    b.on(serviceA, 'name.processed', (_data, ctx) => {
      seen.push(`event:${ctx.source}`);
    });
    await b.start();
    http = createHttpService({ contract: serviceB, handlers: { save: () => ({ id: '1' }) }, routes: b.routes(), bodyLimit: 4096 });
    url = (await http.listen()).url;
  });

  afterEach(async () => {
    await http.close();
    await engine.close();
  });

  it('answers GET /receipts/{id} with every group, and 404 SB_RECEIPT_NOT_FOUND for an unknown MessageId', async () => {
    const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'ada' });
    const document = await fetchReceipt(url, messageId, { source: 'service-a', wait: { timeoutMs: 5000 } });
    expect(document).toMatchObject({
      messageId,
      source: 'service-a',
      done: true,
      groups: [{ group: 'service-b', state: 'processed', attempts: 1 }],
    });
    expect(Date.parse(document!.groups[0]!.processedAt!)).not.toBeNaN();

    const response = await fetch(`${url}/receipts/${messageId}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(document);

    const unknown = newMessageId();
    const missing = await fetch(`${url}/receipts/${unknown}`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(await missing.json()).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND', status: 404 });
    expect(await fetchReceipt(url, unknown)).toBeUndefined();
  });

  it('takes events in binary, structured and batched mode through the same pipeline', async () => {
    const binaryEvent = createCloudEvent({ type: 'service-b.name.submitted', source: 'curl', data: { name: 'binary' } });
    const binary = cloudEventToHttp(binaryEvent);
    const r1 = await fetch(`${url}/events`, { method: 'POST', headers: binary.headers, body: binary.body });
    expect(r1.status).toBe(204);

    const structured = cloudEventToHttp(createCloudEvent({ type: 'service-a.name.processed', source: 'other-lang' }), {
      mode: 'structured',
    });
    const r2 = await fetch(`${url}/events`, { method: 'POST', headers: structured.headers, body: structured.body });
    expect(r2.status).toBe(204);

    const batchEvents = [
      createCloudEvent({ type: 'service-b.name.submitted', source: 'batcher', data: { name: 'batched' } }),
      createCloudEvent({ type: 'service-b.name.submitted', source: 'batcher', data: { name: '' } }),
      binaryEvent,
    ];
    const batch = encodeBatch(batchEvents);
    const r3 = await fetch(`${url}/events`, { method: 'POST', headers: batch.headers, body: batch.body });
    expect(r3.status).toBe(200);
    const { results } = (await r3.json()) as { results: { id: string; status: string; error?: { code: string } }[] };
    expect(results.map((r) => [r.id, r.status, r.error?.code])).toEqual([
      [batchEvents[0]!.id, 'processed', undefined],
      [batchEvents[1]!.id, 'dead-lettered', 'SB_MESSAGE_INVALID'],
      [binaryEvent.id, 'duplicate', undefined],
    ]);
    expect(seen.sort()).toEqual(['batched', 'binary', 'event:other-lang']);
    expect(await b.receipts.get(binaryEvent.id, { source: 'curl' })).toMatchObject({ source: 'curl', groups: [{ state: 'processed' }] });
    expect((await b.deadLetters.list({ messageId: batchEvents[1]!.id })).items[0]).toMatchObject({ reason: 'invalid' });
  });

  it('answers 400 for invalid data or non-CloudEvents, 415 for another event format, 413 over the body limit', async () => {
    const invalid = cloudEventToHttp(createCloudEvent({ type: 'service-b.name.submitted', source: 'curl', data: { name: 7 } }));
    const r1 = await fetch(`${url}/events`, { method: 'POST', headers: invalid.headers, body: invalid.body });
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ code: 'SB_MESSAGE_INVALID', errors: [expect.objectContaining({ pointer: '/name' })] });

    const r2 = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    expect(r2.status).toBe(400);
    expect(await r2.json()).toMatchObject({ code: 'SB_NOT_CLOUDEVENT' });

    const r3 = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+xml' },
      body: '<event/>',
    });
    expect(r3.status).toBe(415);
    expect(await r3.json()).toMatchObject({ code: 'SB_UNSUPPORTED_MEDIA_TYPE' });

    const big = cloudEventToHttp(
      createCloudEvent({ type: 'service-b.name.submitted', source: 'curl', data: { name: 'x'.repeat(10_000) } }),
    );
    const r4 = await fetch(`${url}/events`, { method: 'POST', headers: big.headers, body: big.body });
    expect(r4.status).toBe(413);
    expect(await r4.json()).toMatchObject({ code: 'SB_BODY_TOO_LARGE' });

    const unknown = cloudEventToHttp(createCloudEvent({ type: 'service-z.nothing', source: 'curl' }));
    const r5 = await fetch(`${url}/events`, { method: 'POST', headers: unknown.headers, body: unknown.body });
    expect(r5.status).toBe(400);
    expect(await r5.json()).toMatchObject({ code: 'SB_UNKNOWN_TYPE' });
    expect(seen).toEqual([]);
  });

  it('answers 400 SB_JSON_TOO_DEEP to JSON nested deeper than the service allows, in every mode', async () => {
    const deep = `${'['.repeat(1_000)}${']'.repeat(1_000)}`;
    const binary = await fetch(`${url}/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'd1',
        'ce-source': 'curl',
        'ce-type': 'service-b.name.submitted',
      },
      body: deep,
    });
    const structured = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: `{"specversion":"1.0","id":"d2","source":"curl","type":"service-b.name.submitted","data":${deep}}`,
    });
    const batch = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: `[{"specversion":"1.0","id":"d3","source":"curl","type":"service-b.name.submitted","data":${deep}}]`,
    });
    for (const answer of [binary, structured, batch]) {
      expect(answer.status).toBe(400);
      expect(await answer.json()).toMatchObject({ code: 'SB_JSON_TOO_DEEP' });
    }
    // Binary data of another media type is not JSON: its brackets are no nesting.
    const text = await fetch(`${url}/events`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'ce-specversion': '1.0',
        'ce-id': 'd4',
        'ce-source': 'curl',
        'ce-type': 'service-z.nothing',
      },
      body: deep,
    });
    expect(await text.json()).toMatchObject({ code: 'SB_UNKNOWN_TYPE' });
    expect(seen).toEqual([]);
  });
});
