import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdempotencyStore } from '@switchboard/core';
import type { HttpService } from '@switchboard/http';
import { createHttpService } from '@switchboard/http';
import { createMemoryIdempotencyStore } from '@switchboard/memory';
import { createSqliteIdempotencyStore } from '@switchboard/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { post, problemOf } from './server-cases.js';
import { contract, createHandlers, waitFor } from './server-fixture.js';

// Idempotency-Key through the HTTP server, with the stores of @switchboard/memory and @switchboard/sqlite.

const services: HttpService[] = [];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const service of services.splice(0)) await service.close({ timeoutMs: 50 });
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(store: IdempotencyStore, principal?: (req: import('node:http').IncomingMessage) => string | undefined) {
  const { handlers, state } = createHandlers();
  const service = createHttpService({
    contract,
    handlers,
    idempotency: { store },
    ...(principal === undefined ? {} : { principal }),
  });
  services.push(service);
  cleanups.push(() => store.close?.());
  const { url } = await service.listen();
  return { url, state, service };
}

const headers = (key: string, extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  'idempotency-key': key,
  ...extra,
});

describe('Idempotency-Key with bounded, durable stores', () => {
  it('keeps a key in progress through a flood of fresh keys: its retry is 409, never a second run', async () => {
    const { url, state } = await start(createMemoryIdempotencyStore({ maxEntries: 5 }));
    const first = post(url, 'gate', '{"tag":"slow"}', headers('slow-1'));
    await waitFor(() => state.waiting === 1);
    for (let i = 0; i < 20; i++)
      expect((await post(url, 'save', JSON.stringify({ name: `n${i}` }), headers(`fresh-${i}`))).status).toBe(200);
    const retry = await post(url, 'gate', '{"tag":"slow"}', headers('slow-1'));
    expect(retry.status).toBe(409);
    expect(problemOf(retry.json).code).toBe('SB_IDEMPOTENCY_IN_PROGRESS');
    expect(state.waiting).toBe(1);
    state.open();
    expect((await first).status).toBe(200);
  });

  it('answers 503 SB_IDEMPOTENCY_STORE_FULL with Retry-After when only keys in progress fill the store, and runs nothing', async () => {
    const { url, state } = await start(createMemoryIdempotencyStore({ maxEntries: 2 }));
    const running = [post(url, 'gate', '{}', headers('a')), post(url, 'gate', '{}', headers('b'))];
    await waitFor(() => state.waiting === 2);
    const refused = await post(url, 'save', '{"name":"c"}', headers('c'));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(problemOf(refused.json).code).toBe('SB_IDEMPOTENCY_STORE_FULL');
    expect(state.saved).toBe(0);
    state.open();
    await Promise.all(running);
    expect((await post(url, 'save', '{"name":"c"}', headers('c'))).status).toBe(200);
  });

  it('scopes keys by principal: the same key of two callers is two records', async () => {
    const { url, state } = await start(createMemoryIdempotencyStore(), (req) => req.headers['x-user'] as string | undefined);
    const alice = await post(url, 'save', '{"name":"alice"}', headers('same', { 'x-user': 'alice' }));
    const bob = await post(url, 'save', '{"name":"bob"}', headers('same', { 'x-user': 'bob' }));
    const anonymous = await post(url, 'save', '{"name":"nobody"}', headers('same'));
    expect([alice.status, bob.status, anonymous.status]).toEqual([200, 200, 200]);
    expect(state.saved).toBe(3);
    const again = await post(url, 'save', '{"name":"alice"}', headers('same', { 'x-user': 'alice' }));
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json).toEqual(alice.json);
    expect((await post(url, 'save', '{"name":"eve"}', headers('same', { 'x-user': 'alice' }))).status).toBe(422);
  });

  it('keeps keys across a restart and shares them between instances (SQLite)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-idem-http-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'idempotency.db');
    const first = await start(createSqliteIdempotencyStore({ path }));
    const answer = await post(first.url, 'save', '{"name":"durable"}', headers('restart-1'));
    expect(answer.status).toBe(200);
    await first.service.close();
    const second = await start(createSqliteIdempotencyStore({ path }));
    const replay = await post(second.url, 'save', '{"name":"durable"}', headers('restart-1'));
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json).toEqual(answer.json);
    expect(second.state.saved).toBe(0);
    expect((await post(second.url, 'save', '{"name":"other"}', headers('restart-1'))).status).toBe(422);
  });
});
