import { Readable } from 'node:stream';
import type { ProblemDetails } from '@switchboard/core';
import { request } from 'undici';
import { expect, it } from 'vitest';
import type { FixtureState } from './server-fixture.js';
import { contract } from './server-fixture.js';

export interface Mounted {
  /** Where the service's paths start, e.g. `http://127.0.0.1:1234/api`. */
  readonly base: string;
  readonly state: FixtureState;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export async function post(base: string, op: string, body: string | Buffer, headers: Record<string, string> = JSON_HEADERS) {
  const response = await request(`${base}/ops/${op}`, { method: 'POST', headers, body });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

export function problemOf(value: unknown): ProblemDetails {
  return value as ProblemDetails;
}

/**
 * The behaviour every way of mounting the service must share (node:http, Fastify, Express).
 * `mounted()` returns the running service of the calling test file.
 */
export function coreCases(mounted: () => Mounted): void {
  it('answers 200 with the validated output, as JSON with a content-length', async () => {
    const answer = await post(mounted().base, 'save', JSON.stringify({ name: 'ada' }), {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.text));
    expect(answer.json).toMatchObject({ name: 'ada', tags: [] });
  });

  it('answers 400 SB_MALFORMED_JSON to a body that is not JSON', async () => {
    const answer = await post(mounted().base, 'save', '{"name": "ada"');
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(problemOf(answer.json)).toMatchObject({ code: 'SB_MALFORMED_JSON', type: 'urn:switchboard:error:malformed-json', status: 400 });
  });

  it('answers 400 SB_VALIDATION with JSON Pointers for wrong types', async () => {
    const answer = await post(mounted().base, 'save', JSON.stringify({ name: 42, tags: ['ok', 7] }));
    expect(answer.status).toBe(400);
    const problem = problemOf(answer.json);
    expect(problem.code).toBe('SB_VALIDATION');
    expect(problem.errors?.map((error) => error.pointer).sort()).toEqual(['/name', '/tags/1']);
  });

  it('answers 400 SB_VALIDATION for a missing field', async () => {
    const answer = await post(mounted().base, 'save', JSON.stringify({ tags: [] }));
    expect(answer.status).toBe(400);
    expect(problemOf(answer.json).errors).toEqual([{ pointer: '/name', message: expect.any(String) }]);
  });

  it('rejects unknown fields of a strict object and strips those of a plain object', async () => {
    const strict = await post(mounted().base, 'save', JSON.stringify({ name: 'ada', nmae: 'typo' }));
    expect(strict.status).toBe(400);
    expect(problemOf(strict.json).errors?.[0]?.message).toContain('nmae');
    const stripped = await post(mounted().base, 'echo', JSON.stringify({ text: 'hi', extra: true }));
    expect(stripped.status).toBe(200);
    expect(stripped.json).toEqual({ text: 'hi', keys: ['text'] });
  });

  it('answers 413 to a 10 MB body against the 1 MiB limit, then serves the next request', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    const answer = await post(mounted().base, 'save', big);
    expect(answer.status).toBe(413);
    expect(problemOf(answer.json).code).toBe('SB_BODY_TOO_LARGE');
    const streamed = await request(`${mounted().base}/ops/save`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: Readable.from(
        (function* () {
          for (let offset = 0; offset < big.length; offset += 64 * 1024) yield big.subarray(offset, offset + 64 * 1024);
        })(),
      ),
    });
    expect(streamed.statusCode).toBe(413);
    await streamed.body.dump();
    const next = await post(mounted().base, 'save', JSON.stringify({ name: 'after' }));
    expect(next.status).toBe(200);
  });

  it('answers 404 SB_UNKNOWN_OPERATION for an operation the contract lacks', async () => {
    const answer = await post(mounted().base, 'nope', '{}');
    expect(answer.status).toBe(404);
    expect(problemOf(answer.json).code).toBe('SB_UNKNOWN_OPERATION');
  });

  it('answers 405 with Allow: POST to another method', async () => {
    const answer = await request(`${mounted().base}/ops/save`, { method: 'GET' });
    expect(answer.statusCode).toBe(405);
    expect(answer.headers.allow).toBe('POST');
    expect(problemOf(await answer.body.json()).code).toBe('SB_METHOD_NOT_ALLOWED');
  });

  it('answers 415 to a body that is not application/json', async () => {
    for (const type of ['text/plain', 'application/jsonx', 'application/x-www-form-urlencoded']) {
      const answer = await post(mounted().base, 'save', JSON.stringify({ name: 'ada' }), { 'content-type': type });
      expect(answer.status).toBe(415);
      expect(problemOf(answer.json).code).toBe('SB_UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('answers 500 SB_HANDLER_FAILED without message or stack when a handler throws', async () => {
    const answer = await post(mounted().base, 'fail', JSON.stringify({ how: 'throw' }));
    expect(answer.status).toBe(500);
    expect(problemOf(answer.json)).toMatchObject({ code: 'SB_HANDLER_FAILED', retryable: false });
    expect(answer.text).not.toContain('hunter2');
    expect(answer.text).not.toMatch(/\bat .*\.ts/);
  });

  it('answers a declared error with its status, type and data', async () => {
    const answer = await post(mounted().base, 'save', JSON.stringify({ name: 'taken' }));
    expect(answer.status).toBe(409);
    expect(answer.json).toEqual({
      type: `urn:switchboard:${contract.name}:error:NameTaken`,
      title: 'Name taken',
      status: 409,
      detail: 'Already there',
      code: 'NameTaken',
      data: { existing: 7 },
      retryable: false,
    });
  });

  it('answers 500 SB_INVALID_OUTPUT and never sends the invalid answer', async () => {
    const answer = await post(mounted().base, 'broken', '{}');
    expect(answer.status).toBe(500);
    expect(problemOf(answer.json).code).toBe('SB_INVALID_OUTPUT');
    expect(answer.text).not.toContain('many');
  });

  it('answers 504 when the deadline passes and aborts the handler signal', async () => {
    const { state } = mounted();
    const before = state.signals.length;
    const answer = await post(mounted().base, 'slow', JSON.stringify({ ms: 5000 }), { ...JSON_HEADERS, 'switchboard-timeout-ms': '50' });
    expect(answer.status).toBe(504);
    expect(problemOf(answer.json).code).toBe('SB_DEADLINE_EXCEEDED');
    const signal = state.signals[before];
    expect(signal?.aborted).toBe(true);
  });

  it('replays an answer for the same Idempotency-Key and body', async () => {
    const key = `key-${Math.random()}`;
    const headers = { ...JSON_HEADERS, 'idempotency-key': key };
    const first = await post(mounted().base, 'count', JSON.stringify({ by: 5 }), headers);
    const second = await post(mounted().base, 'count', JSON.stringify({ by: 5 }), headers);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.json).toEqual(first.json);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
  });

  it('answers /healthz and /readyz', async () => {
    const health = await request(`${mounted().base}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const ready = await request(`${mounted().base}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toEqual({ status: 'ready' });
  });
}
