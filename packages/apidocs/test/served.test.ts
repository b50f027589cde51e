/**
 * A demo-like ServiceB serves its own documents; the OpenAPI document is then taken at its word:
 * each operation is called with plain `fetch`, the request built from the document's path,
 * method and a sample input made from its request schema, and every answer is checked against
 * the response the document gives for its status (Ajv, JSON Schema 2020-12).
 */
import type { JsonObject } from '@switchboard/apidocs';
import { apiDocumentRoutes, engineForBroker } from '@switchboard/apidocs';
import { createCloudEvent, implement, OperationError } from '@switchboard/core';
import type { HttpJobs, HttpService } from '@switchboard/http';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryJobStore, createMemoryReceiptStore } from '@switchboard/memory';
import type { Messaging } from '@switchboard/messaging';
import { createMessaging } from '@switchboard/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceA, serviceB } from '../../../examples/demo/src/contracts.js';
import { asyncApiDiagnostics, openApiErrors, resolvePointer, sample, schemaValidator } from './checks.js';

type MediaType = { schema: unknown };
type Response = { content?: Record<string, MediaType>; headers?: Record<string, { $ref?: string; schema?: unknown }> };
type Operation = {
  operationId: string;
  parameters?: Array<{ $ref?: string }>;
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, Response>;
};

const handlers = implement(serviceB, {
  save: ({ name }) => {
    if (/^\d+$/.test(name)) throw new OperationError('NameRejected', { detail: 'a name needs letters', data: { reason: 'digits only' } });
    return { saved: true, id: crypto.randomUUID(), saves: 1, traceId: '' };
  },
  analyze: ({ name }) => {
    const letters = name.replace(/[^\p{L}]/gu, '').toLowerCase();
    return {
      name,
      letters: letters.length,
      vowels: (letters.match(/[aeiouy]/g) ?? []).length,
      palindrome: letters === [...letters].reverse().join(''),
      traceId: '',
    };
  },
});

describe('a service serving its own documents, called from its OpenAPI document', () => {
  const broker = createMemoryBroker();
  const receipts = createMemoryReceiptStore();
  const deadLetters = createMemoryDeadLetterStore();
  const jobStore = createMemoryJobStore();
  const jobOperations = { save: false, analyze: {} };
  let messaging: Messaging;
  let jobs: HttpJobs;
  let http: HttpService;
  let url: string;
  let document: JsonObject;
  let check: (schema: unknown, value: unknown) => string[];
  const checked: string[] = [];

  beforeAll(async () => {
    messaging = createMessaging({ broker, service: 'service-b', receipts, deadLetters })
      .serve(serviceB, handlers)
      .on(serviceA, 'name.processed', () => ({}));
    await messaging.start();
    jobs = enableJobs(serviceB, { store: jobStore, operations: jobOperations });
    http = createHttpService({
      contract: serviceB,
      handlers,
      basePath: '/api',
      routes: [
        ...messaging.routes(),
        ...jobs.routes,
        ...apiDocumentRoutes(serviceB, {
          openapi: { jobs: { operations: jobOperations }, receipts: true, events: { accepts: [serviceA] } },
          asyncapi: {
            contracts: [serviceB, serviceA],
            engines: [engineForBroker(broker, { host: 'in-process' })],
            services: [{ name: 'service-b', serves: [serviceB], subscribes: [serviceA] }],
          },
        }),
      ],
      interceptors: jobs.interceptors,
    });
    jobs.start(http);
    url = (await http.listen()).url;
    const response = await fetch(`${url}/api/openapi.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as JsonObject;
    check = schemaValidator(document);
  });

  afterAll(async () => {
    await jobs.close();
    await http.close();
    await messaging.close();
    await broker.close();
  });

  const operationOf = (path: string, method: string): Operation => {
    const found = (document.paths as Record<string, Record<string, Operation>>)[path]?.[method];
    if (found === undefined) throw new Error(`the document has no ${method.toUpperCase()} ${path}`);
    return found;
  };

  /** The example input of an operation: a sample of its documented request schema. */
  const exampleInput = (operation: Operation): unknown => sample(operation.requestBody?.content['application/json']?.schema, document);

  /** Sends a request as the document describes it and checks the answer against the documented response. */
  async function call(
    path: string,
    method: string,
    options: {
      readonly params?: Record<string, string>;
      readonly body?: unknown;
      readonly headers?: Record<string, string>;
      readonly query?: string;
    } = {},
  ): Promise<{ status: number; body: unknown; headers: Headers }> {
    const operation = operationOf(path, method);
    const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? ''));
    const response = await fetch(`${url}${concrete}${options.query ?? ''}`, {
      method: method.toUpperCase(),
      redirect: 'manual',
      headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const documented = operation.responses[String(response.status)] ?? operation.responses.default;
    expect(documented, `${method} ${path} answered ${response.status}, which the document does not list`).toBeDefined();
    const text = await response.text();
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0] as string;
    let body: unknown;
    if (text !== '') {
      const media = documented?.content?.[contentType];
      expect(media, `${method} ${path} ${response.status} answered ${contentType}, which the document does not list`).toBeDefined();
      body = JSON.parse(text);
      expect(check(media?.schema, body), `${method} ${path} ${response.status}: ${text}`).toEqual([]);
    } else {
      expect(documented?.content, `${method} ${path} ${response.status} answered no body`).toBeUndefined();
    }
    for (const [name, ref] of Object.entries(documented?.headers ?? {})) {
      const value = response.headers.get(name);
      if (value === null) continue;
      const schema = (ref.$ref === undefined ? ref : resolvePointer(document, ref.$ref)) as { schema: { type?: string } };
      const typed = schema.schema.type === 'integer' ? Number(value) : value;
      expect(check(schema.schema, typed), `header ${name}: ${value}`).toEqual([]);
    }
    checked.push(`${method.toUpperCase()} ${path} ${response.status}`);
    return { status: response.status, body, headers: response.headers };
  }

  it('serves a valid OpenAPI 3.1 document and a valid AsyncAPI 3.0 document', async () => {
    expect(await openApiErrors(document)).toEqual([]);
    const asyncapi = (await (await fetch(`${url}/api/asyncapi.json`)).json()) as JsonObject;
    const diagnostics = await asyncApiDiagnostics(asyncapi);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    expect(Object.keys(document.paths as object)).toEqual(
      expect.arrayContaining(['/api/ops/save', '/api/openapi.json', '/api/asyncapi.json']),
    );
    const head = await fetch(`${url}/api/openapi.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('calls every operation from the document with its example input and gets the documented output', async () => {
    const paths = Object.entries(document.paths as Record<string, Record<string, Operation>>).filter(([path]) =>
      path.startsWith('/api/ops/'),
    );
    expect(paths.map(([path]) => path).sort()).toEqual(['/api/ops/analyze', '/api/ops/save']);
    for (const [path, methods] of paths) {
      const operation = methods.post as Operation;
      const input = exampleInput(operation);
      const { status, body } = await call(path, 'post', { body: input });
      expect(status, path).toBe(200);
      expect(body).toBeTypeOf('object');
    }
    // The same check refuses what the contract does not allow.
    const ok = operationOf('/api/ops/save', 'post').responses['200']?.content?.['application/json']?.schema;
    expect(check(ok, { saved: 'yes', id: 1 })).not.toEqual([]);
    expect(check(ok, { saved: true, id: '1', extra: 0 })).not.toEqual([]);
  });

  it('answers a declared error and a registry problem as documented', async () => {
    const declared = await call('/api/ops/save', 'post', { body: { name: '12345' } });
    expect(declared.status).toBe(422);
    expect(declared.headers.get('content-type')).toBe('application/problem+json');
    expect(declared.body).toMatchObject({ code: 'NameRejected', data: { reason: 'digits only' } });

    const invalid = await call('/api/ops/save', 'post', { body: { name: '' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ code: 'SB_VALIDATION', errors: [{ pointer: '/name' }] });

    const malformed = await fetch(`${url}/api/ops/save`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(malformed.status).toBe(415);
    const documented = operationOf('/api/ops/save', 'post').responses['415']?.content?.['application/problem+json'];
    expect(check(documented?.schema, await malformed.json())).toEqual([]);

    const replayKey = crypto.randomUUID();
    const input = exampleInput(operationOf('/api/ops/save', 'post'));
    await call('/api/ops/save', 'post', { body: input, headers: { 'idempotency-key': replayKey } });
    const reused = await call('/api/ops/save', 'post', { body: { name: 'someone else' }, headers: { 'idempotency-key': replayKey } });
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ code: 'SB_IDEMPOTENCY_KEY_REUSED' });
  });

  it('runs the job operation in its async form, through the monitor, the result and cancel', async () => {
    const analyze = operationOf('/api/ops/analyze', 'post');
    const submitted = await call('/api/ops/analyze', 'post', { body: exampleInput(analyze), headers: { prefer: 'respond-async' } });
    expect(submitted.status).toBe(202);
    expect(submitted.headers.get('preference-applied')).toBe('respond-async');
    const location = submitted.headers.get('location') as string;
    const id = (submitted.body as { id: string }).id;
    expect(location).toBe(`/api/jobs/${id}`);

    let monitor = await call('/api/jobs/{id}', 'get', { params: { id }, query: '?wait=10' });
    for (let i = 0; monitor.status === 200 && i < 20; i++) {
      monitor = await call('/api/jobs/{id}', 'get', {
        params: { id },
        query: '?wait=10',
        headers: { 'if-none-match': monitor.headers.get('etag') as string },
      });
    }
    expect(monitor.status).toBe(303);
    expect(monitor.headers.get('location')).toBe(`/api/jobs/${id}/result`);
    const result = await call('/api/jobs/{id}/result', 'get', { params: { id } });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ name: 'x', letters: 1 });

    const notModified = await call('/api/jobs/{id}', 'get', {
      params: { id },
      headers: { 'if-none-match': monitor.headers.get('etag') as string },
    });
    expect(notModified.status).toBe(303);
    const cancel = await call('/api/jobs/{id}', 'delete', { params: { id } });
    expect(cancel.status).toBe(409);
    expect(cancel.body).toMatchObject({ code: 'SB_JOB_FINISHED' });
    const unknown = await call('/api/jobs/{id}', 'get', { params: { id: 'AAAAAAAAAAAAAAAAAAAAAA' } });
    expect(unknown.status).toBe(404);
  });

  it('answers receipts, CloudEvents and health as documented', async () => {
    const missing = await call('/api/receipts/{messageId}', 'get', { params: { messageId: crypto.randomUUID() } });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND' });

    const event = createCloudEvent({ type: 'service-a.name.processed', source: 'service-a' });
    const received = await call('/api/events', 'post', {
      body: { ...event },
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expect(received.status).toBe(204);
    const receipt = await call('/api/receipts/{messageId}', 'get', { params: { messageId: event.id }, query: '?wait=5' });
    expect(receipt.status).toBe(200);
    expect(receipt.body).toMatchObject({ messageId: event.id, done: true, groups: [{ group: 'service-b', state: 'processed' }] });

    const unknownType = await call('/api/events', 'post', {
      body: { ...createCloudEvent({ type: 'service-a.nothing', source: 'service-a' }) },
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expect(unknownType.status).toBe(400);
    expect((await call('/api/healthz', 'get')).status).toBe(200);
    expect((await call('/api/readyz', 'get')).status).toBe(200);
  });

  it('checked every answer against the document', () => {
    // Counted, so a loop that called nothing cannot pass unnoticed.
    expect(checked.length).toBeGreaterThanOrEqual(17);
  });
});
