import { newMessageId, type ReceiptStore } from '@switchboard/core';
import { createHttpService, type HttpService } from '@switchboard/http';
import { createMemoryReceiptStore } from '@switchboard/memory';
import { createReceipts, fetchReceipt, type ReceiptDocument, receiptsRoute } from '@switchboard/messaging';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceB } from './harness.js';

// The receiving side's receipts over HTTP, on a store filled directly: an event's identity is
// source + MessageId, and two senders may use the same id.
describe('GET /receipts/{id} and fetchReceipt', () => {
  let store: ReceiptStore;
  let http: HttpService;
  let url: string;

  beforeEach(async () => {
    store = createMemoryReceiptStore();
    http = createHttpService({
      contract: serviceB,
      handlers: { save: () => ({ id: '1' }) },
      routes: [receiptsRoute(createReceipts(store))],
    });
    url = (await http.listen()).url;
  });

  afterEach(async () => {
    await http.close();
    await store.close();
  });

  async function problemOf(response: Response): Promise<Record<string, unknown>> {
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    return (await response.json()) as Record<string, unknown>;
  }

  it('answers the receipts of the event named by ?source=, and 404 for a source that never sent the id', async () => {
    const id = newMessageId();
    await store.record([
      { group: 'service-b', source: 'service-a', messageId: id, state: 'processed', attempt: 1, result: '"a"', type: 'x.sent' },
      { group: 'audit', source: 'service-a', messageId: id, state: 'received' },
      {
        group: 'service-b',
        source: 'service-z',
        messageId: id,
        state: 'failed',
        attempt: 2,
        error: { type: 'urn:x', title: 'x', status: 500, code: 'SB_HANDLER_FAILED' },
      },
    ]);
    const response = await fetch(`${url}/receipts/${id}?source=service-a`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as ReceiptDocument;
    expect(document).toMatchObject({ messageId: id, source: 'service-a', done: false });
    expect(document.groups.map((g) => [g.group, g.state])).toEqual([
      ['audit', 'received'],
      ['service-b', 'processed'],
    ]);
    expect(document.groups[1]).toMatchObject({ attempts: 1, result: '"a"', type: 'x.sent' });

    const other = (await (await fetch(`${url}/receipts/${id}?source=service-z`)).json()) as ReceiptDocument;
    expect(other).toMatchObject({ source: 'service-z', groups: [{ group: 'service-b', state: 'failed', attempts: 2 }] });

    const stranger = await fetch(`${url}/receipts/${id}?source=service-q`);
    expect(stranger.status).toBe(404);
    expect(await problemOf(stranger)).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND', status: 404 });
  });

  it('without ?source= answers the one source that used the id, 409 SB_CONFLICT once several did, and 404 when none did', async () => {
    const id = newMessageId();
    await store.record([{ group: 'service-b', source: 'service-a', messageId: id, state: 'processed', attempt: 1 }]);
    const single = await fetch(`${url}/receipts/${id}`);
    expect(single.status).toBe(200);
    expect(await single.json()).toMatchObject({ messageId: id, source: 'service-a', done: true });

    await store.record([{ group: 'service-b', source: 'service-z', messageId: id, state: 'received' }]);
    const ambiguous = await fetch(`${url}/receipts/${id}`);
    expect(ambiguous.status).toBe(409);
    const problem = await problemOf(ambiguous);
    expect(problem).toMatchObject({ code: 'SB_CONFLICT', status: 409, type: 'urn:switchboard:error:conflict', retryable: false });
    expect(problem.detail).toContain('?source=');
    // The other senders are not named to whoever asks.
    expect(JSON.stringify(problem)).not.toContain('service-z');
    // Waiting does not make an ambiguous id less so.
    expect((await fetch(`${url}/receipts/${id}?wait=1`)).status).toBe(409);

    const never = await fetch(`${url}/receipts/${newMessageId()}`);
    expect(never.status).toBe(404);
    expect(await problemOf(never)).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND' });

    const empty = await fetch(`${url}/receipts/${id}?source=`);
    expect(empty.status).toBe(400);
    expect(await problemOf(empty)).toMatchObject({ code: 'SB_BAD_REQUEST' });
  });

  it('takes a source that needs percent-encoding in the query', async () => {
    const id = newMessageId();
    const source = 'https://example.com/orders?region=eu&x=ü';
    await store.record([{ group: 'g', source, messageId: id, state: 'received' }]);
    await store.record([{ group: 'g', source: 'https://example.com/orders', messageId: id, state: 'received' }]);
    const response = await fetch(`${url}/receipts/${encodeURIComponent(id)}?source=${encodeURIComponent(source)}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ source, groups: [{ group: 'g' }] });
    expect(await fetchReceipt(url, id, { source })).toMatchObject({ source, messageId: id });
  });

  it('fetchReceipt asks for its own source, waits for it, and throws SB_CONFLICT for an ambiguous id asked without one', async () => {
    const id = newMessageId();
    await store.record([
      { group: 'service-b', source: 'service-a', messageId: id, state: 'received' },
      { group: 'service-b', source: 'service-z', messageId: id, state: 'processed', attempt: 1, result: 'z' },
    ]);
    expect(await fetchReceipt(url, id, { source: 'service-a' })).toMatchObject({
      source: 'service-a',
      done: false,
      groups: [{ state: 'received' }],
    });

    const waited = fetchReceipt(url, id, { source: 'service-a', wait: { timeoutMs: 10_000, pollSeconds: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await store.record([{ group: 'service-b', source: 'service-a', messageId: id, state: 'processed', attempt: 1, result: 'a' }]);
    expect(await waited).toMatchObject({ source: 'service-a', done: true, groups: [{ state: 'processed', result: 'a' }] });

    await expect(fetchReceipt(url, id)).rejects.toMatchObject({ code: 'SB_CONFLICT', status: 409 });
    expect(await fetchReceipt(url, id, { source: 'service-q' })).toBeUndefined();
    expect(await fetchReceipt(url, newMessageId(), { source: 'service-a' })).toBeUndefined();
  });

  it('fetchReceipt with wait returns undefined for an event that never arrives from that source', async () => {
    const id = newMessageId();
    await store.record([{ group: 'service-b', source: 'service-z', messageId: id, state: 'processed', attempt: 1 }]);
    expect(await fetchReceipt(url, id, { source: 'service-a', wait: { timeoutMs: 300 } })).toBeUndefined();
  });
});
