import { once } from 'node:events';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import type { Handlers } from '@switchboard/core';
import { defineContract, operation } from '@switchboard/core';
import type { HttpService } from '@switchboard/http';
import { createHttpService, sendJson } from '@switchboard/http';
import { Pool, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { post, problemOf } from './server-cases.js';

// The hardened edges of the sync server: every finding of the security review has a case here.

const edges = defineContract({
  name: 'edges',
  operations: {
    /** Returns what JSON cannot hold, picked by `kind`. */
    odd: operation({ input: z.object({ kind: z.enum(['bigint', 'circular', 'deep', 'fine']) }), output: z.unknown() }),
    /** Accepts any JSON. */
    any: operation({ input: z.unknown(), output: z.object({ ok: z.boolean() }) }),
    echo: operation({ input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) }),
    /** Waits until the test opens the gate. */
    gate: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }),
  },
});

/** `[[[…1…]]]`, `depth` arrays deep, as text (JSON.stringify itself cannot write very deep values). */
function deepText(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

function deepValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function edgeHandlers() {
  const state = { odd: 0, waiting: 0, release: [] as Array<() => void> };
  const handlers: Handlers<typeof edges> = {
    odd: ({ kind }) => {
      state.odd += 1;
      switch (kind) {
        case 'bigint':
          return { total: 10n };
        case 'circular': {
          const loop: Record<string, unknown> = { name: 'loop' };
          loop.self = loop;
          return loop;
        }
        case 'deep':
          return deepValue(200_000);
        case 'fine':
          return { fine: true };
      }
    },
    any: () => ({ ok: true }),
    echo: ({ text }) => ({ text }),
    gate: async () => {
      state.waiting += 1;
      await new Promise<void>((resolve) => state.release.push(resolve));
      state.waiting -= 1;
      return { done: true };
    },
  };
  return { handlers, state };
}

const services: HttpService[] = [];
afterEach(async () => {
  for (const service of services.splice(0)) await service.close({ timeoutMs: 50 });
});

async function start(options: Partial<Parameters<typeof createHttpService<typeof edges>>[0]> = {}) {
  const { handlers, state } = edgeHandlers();
  const errors: unknown[] = [];
  const service = createHttpService({ contract: edges, handlers, onError: (error) => errors.push(error), ...options });
  services.push(service);
  const listening = await service.listen();
  return { ...listening, service, state, errors };
}

interface RawResult {
  readonly text: string;
  /** `code` of a socket error the client saw (EPIPE, ECONNRESET), if any. */
  readonly error: string | undefined;
}

/**
 * Sends `head` then `body` (in one write) and collects what comes back until the server closes.
 * With `trickle`, goes on sending a few bytes every 50 ms, as a slow upload does.
 */
async function rawRequest(port: number, head: string, body: Buffer | string = '', trickle = false): Promise<RawResult> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  let error: string | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', (cause: NodeJS.ErrnoException) => {
    error = cause.code;
  });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(head);
  if (body.length > 0) socket.write(body);
  const timer = trickle ? setInterval(() => socket.writable && socket.write('xxxxxxxxxx'), 50) : undefined;
  await closed;
  clearInterval(timer);
  return { text, error };
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
}

describe('results JSON cannot hold', () => {
  for (const kind of ['bigint', 'circular', 'deep'] as const) {
    it(`answers 500 SB_RESULT_NOT_SERIALIZABLE for a ${kind} result, never 200 null`, async () => {
      const server = await start();
      const answer = await post(server.url, 'odd', JSON.stringify({ kind }));
      expect(answer.status).toBe(500);
      expect(problemOf(answer.json).code).toBe('SB_RESULT_NOT_SERIALIZABLE');
      expect(server.errors).toHaveLength(1);
    });
  }

  it('does not store such an answer for Idempotency-Key replays: a retry runs the handler again', async () => {
    const server = await start();
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'odd-1' };
    const first = await post(server.url, 'odd', JSON.stringify({ kind: 'bigint' }), headers);
    const second = await post(server.url, 'odd', JSON.stringify({ kind: 'bigint' }), headers);
    expect([first.status, second.status]).toEqual([500, 500]);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(server.state.odd).toBe(2);
  });
});

describe('bodies nobody reads', () => {
  // A declared body of 100 000 bytes arriving slowly: without a bound, the socket is held until it
  // all came (or Node's requestTimeout, 300 s, passed).
  const partial = (method: string, path: string, type = 'application/json') =>
    `${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: ${type}\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(1000)}`;

  it('answers 404 at once and frees the socket when the rest of the body does not come', async () => {
    const server = await start({ drainTimeoutMs: 200 });
    const raw = await rawRequest(server.port, partial('POST', '/nothing'), '', true);
    expect(statusOf(raw.text)).toBe(404);
  });

  it('does the same for 405, 415 and an extra route that never reads its body', async () => {
    const server = await start({
      drainTimeoutMs: 200,
      routes: [{ methods: ['GET'], path: '/info', handle: (_req, res) => sendJson(res, 200, { info: true }) }],
    });
    expect(statusOf((await rawRequest(server.port, partial('PUT', '/ops/echo'), '', true)).text)).toBe(405);
    expect(statusOf((await rawRequest(server.port, partial('POST', '/ops/echo', 'text/plain'), '', true)).text)).toBe(415);
    expect(statusOf((await rawRequest(server.port, partial('GET', '/info'), '', true)).text)).toBe(200);
  });

  it('closes the socket once more than drainLimit unread bytes arrive', async () => {
    const server = await start({ drainLimit: 4096 });
    const head = 'POST /nothing HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n';
    const raw = await rawRequest(server.port, head, Buffer.alloc(64 * 1024, 0x61), true);
    expect(statusOf(raw.text)).toBe(404);
  });

  it('keeps the connection for the next request when a small unread body arrived whole', async () => {
    const server = await start();
    const pool = new Pool(server.url, { connections: 1 });
    try {
      const first = await pool.request({ path: '/nothing', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await first.body.dump();
      const second = await pool.request({
        path: '/ops/echo',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"again"}',
      });
      expect([first.statusCode, second.statusCode]).toEqual([404, 200]);
      expect(await second.body.json()).toEqual({ text: 'again' });
    } finally {
      await pool.close();
    }
  });

  it('reads an oversized body up to the drain bound, so a client that writes it all still reads the 413', async () => {
    const server = await start({ bodyLimit: 1024, drainLimit: 8 * 1024 * 1024 });
    const body = Buffer.alloc(4 * 1024 * 1024, 0x61);
    for (const framing of ['content-length', 'chunked'] as const) {
      const head =
        framing === 'chunked'
          ? 'POST /ops/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n'
          : `POST /ops/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
      const payload =
        framing === 'chunked' ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : body;
      const raw = await rawRequest(server.port, head, payload);
      expect(raw.error, framing).toBeUndefined();
      expect(statusOf(raw.text), framing).toBe(413);
      expect(raw.text.toLowerCase()).toContain('connection: close');
    }
  });

  it('lets fetch read the 413 of a body over the limit', async () => {
    const server = await start({ bodyLimit: 1024 });
    const answer = await fetch(`${server.url}/ops/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'x'.repeat(300_000) }),
    });
    expect(answer.status).toBe(413);
    expect(((await answer.json()) as { code: string }).code).toBe('SB_BODY_TOO_LARGE');
  });
});

describe('server limits', () => {
  it('applies strict, documented defaults to the server it listens with', async () => {
    const { server } = await start();
    expect(server.headersTimeout).toBe(10_000);
    expect(server.requestTimeout).toBe(30_000);
    expect(server.keepAliveTimeout).toBe(5_000);
    expect(server.maxHeadersCount).toBe(100);
  });

  it('takes other values', async () => {
    const { server } = await start({ headersTimeoutMs: 2_000, requestTimeoutMs: 4_000, keepAliveTimeoutMs: 1_000, maxHeadersCount: 20 });
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout, server.maxHeadersCount]).toEqual([
      2_000, 4_000, 1_000, 20,
    ]);
  });

  it('closes a connection that sends no request within headersTimeoutMs', async () => {
    const server = await start({ headersTimeoutMs: 300 });
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(socket.destroyed).toBe(true);
  });

  it('closes a connection whose headers never end (slowloris)', async () => {
    const server = await start({ headersTimeoutMs: 300 });
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write('POST /ops/echo HTTP/1.1\r\nhost: x\r\n');
    const timer = setInterval(() => socket.writable && socket.write('x-slow: 1\r\n'), 50);
    try {
      // Not `once(socket, 'close')`: it rejects on the EPIPE of a write racing the close.
      await new Promise((resolve) => socket.once('close', resolve));
    } finally {
      clearInterval(timer);
    }
    expect(socket.destroyed).toBe(true);
  });

  it('answers 503 SB_OVERLOADED with Retry-After and closes, past maxConnections; others keep working', async () => {
    const server = await start({ maxConnections: 3 });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(server.port, '127.0.0.1');
        socket.on('error', () => {});
        await once(socket, 'connect');
        held.push(socket);
      }
      const refused = await rawRequest(
        server.port,
        'POST /ops/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"text":"hi"}',
      );
      expect(statusOf(refused.text)).toBe(503);
      expect(refused.text.toLowerCase()).toContain('retry-after: 1');
      expect(refused.text).toContain('SB_OVERLOADED');
      for (const socket of held.splice(0)) socket.destroy();
      await waitUntil(() => server.service.connections === 0);
      const answer = await post(server.url, 'echo', JSON.stringify({ text: 'back' }));
      expect(answer.json).toEqual({ text: 'back' });
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});

describe('JSON the server refuses', () => {
  it('answers 400 SB_JSON_TOO_DEEP to nesting deeper than maxJsonDepth (default 64)', async () => {
    const server = await start();
    const deep = await post(server.url, 'any', deepText(10_000));
    expect(deep.status).toBe(400);
    expect(problemOf(deep.json).code).toBe('SB_JSON_TOO_DEEP');
    expect((await post(server.url, 'any', deepText(65))).status).toBe(400);
    expect((await post(server.url, 'any', deepText(63))).status).toBe(200);
    // Brackets inside strings are text, not nesting.
    expect((await post(server.url, 'any', JSON.stringify({ text: '['.repeat(10_000) }))).status).toBe(200);
  });

  it('takes another maxJsonDepth', async () => {
    const server = await start({ maxJsonDepth: 4 });
    expect((await post(server.url, 'any', '[[[[1]]]]')).status).toBe(200);
    expect(problemOf((await post(server.url, 'any', '[[[[[1]]]]]')).json).code).toBe('SB_JSON_TOO_DEEP');
  });

  it('answers 400 SB_MALFORMED_JSON to a body that is not valid UTF-8, instead of replacing bytes', async () => {
    const server = await start();
    const body = Buffer.concat([Buffer.from('{"text":"caf'), Buffer.from([0xc3]), Buffer.from('"}')]);
    const answer = await post(server.url, 'echo', body);
    expect(answer.status).toBe(400);
    expect(problemOf(answer.json)).toMatchObject({ code: 'SB_MALFORMED_JSON', detail: 'The request body is not valid UTF-8' });
    const fine = await post(server.url, 'echo', Buffer.from('{"text":"café ✓"}'));
    expect(fine.json).toEqual({ text: 'café ✓' });
  });
});

describe('load shedding', () => {
  it('is on by default: past 256 calls in flight the service answers 503 SB_OVERLOADED with Retry-After', async () => {
    const server = await start();
    const pool = new Pool(server.url, { connections: 300 });
    try {
      const calls = Array.from({ length: 256 }, () =>
        pool.request({ path: '/ops/gate', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      );
      await waitUntil(() => server.state.waiting === 256);
      const shed = await pool.request({
        path: '/ops/echo',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"x"}',
      });
      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBe('1');
      expect(((await shed.body.json()) as { code: string }).code).toBe('SB_OVERLOADED');
      for (const release of server.state.release.splice(0)) release();
      const answers = await Promise.all(calls);
      for (const answer of answers) await answer.body.dump();
      expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
      const after = await request(`${server.url}/ops/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"y"}',
      });
      expect(after.statusCode).toBe(200);
      await after.body.dump();
    } finally {
      await pool.close();
    }
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
