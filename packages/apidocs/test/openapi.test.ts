import type { JsonObject } from '@switchboard/apidocs';
import { generateOpenApi } from '@switchboard/apidocs';
import { defineContract, errorRegistry, operation } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serviceA, serviceB } from '../../../examples/demo/src/contracts.js';
import { openApiErrors, refsOf, resolvePointer, unresolvedRefs } from './checks.js';
import { arktypeContract, unrepresentableContract, valibotContract, zodContract } from './fixtures-contracts.js';

type Operation = { responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, unknown> }> };

function op(document: JsonObject, path: string, method = 'post'): Operation {
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const found = paths[path]?.[method];
  if (found === undefined) throw new Error(`no ${method} ${path}`);
  return found;
}

/** The registry codes a response of an operation names (through `Problem.<code>` schemas). */
function codesAt(operation: Operation, status: string): string[] {
  const schema = operation.responses[status]?.content?.['application/problem+json']?.schema;
  return refsOf(schema)
    .map((ref) => ref.split('/').pop() as string)
    .map((name) => (name.startsWith('Problem.') ? name.slice('Problem.'.length) : name));
}

describe('generateOpenApi', () => {
  it('documents the demo ServiceB with every option on, and the document validates (0 errors)', async () => {
    const { document, warnings } = await generateOpenApi(serviceB, {
      jobs: { operations: { save: false, analyze: {} }, callbacks: true },
      receipts: true,
      events: { accepts: [serviceA] },
      auth: { bearer: true, mutualTLS: true },
      servers: [{ url: 'http://127.0.0.1:4002' }],
      documents: { openapi: '/openapi.json', asyncapi: '/asyncapi.json' },
    });
    expect(await openApiErrors(document)).toEqual([]);
    expect(unresolvedRefs(document)).toEqual([]);
    expect(warnings).toEqual([]);
    expect(document.openapi).toBe('3.1.1');
    expect(Object.keys(document.paths as object).sort()).toEqual(
      [
        '/asyncapi.json',
        '/events',
        '/healthz',
        '/jobs/{id}',
        '/jobs/{id}/result',
        '/openapi.json',
        '/ops/analyze',
        '/ops/save',
        '/readyz',
        '/receipts/{messageId}',
      ].sort(),
    );
    expect((document.components as JsonObject).securitySchemes).toMatchObject({
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      mutualTLS: { type: 'mutualTLS' },
    });
    expect(document.security).toEqual([{ bearerAuth: [] }, { mutualTLS: [] }]);
    expect(codesAt(op(document, '/ops/save'), '401')).toEqual(['SB_UNAUTHORIZED']);
  });

  it('gives the async form only to job operations: 202 with Location, Retry-After and Preference-Applied', async () => {
    const { document } = await generateOpenApi(serviceB, { jobs: ['analyze'] });
    const save = op(document, '/ops/save');
    const analyze = op(document, '/ops/analyze');
    expect(save.responses['202']).toBeUndefined();
    expect(Object.keys(analyze.responses['202']?.headers ?? {})).toEqual(
      expect.arrayContaining(['Location', 'Content-Location', 'Retry-After', 'Preference-Applied']),
    );
    expect(refsOf(analyze.responses['202']?.content)).toEqual(['#/components/schemas/JobStatus']);
    const parameters = (name: string) => refsOf((op(document, name) as unknown as { parameters: unknown }).parameters);
    expect(parameters('/ops/analyze')).toContain('#/components/parameters/Prefer');
    expect(parameters('/ops/save')).not.toContain('#/components/parameters/Prefer');
    expect(parameters('/ops/save')).toContain('#/components/parameters/IdempotencyKey');

    const monitor = op(document, '/jobs/{id}', 'get');
    expect(Object.keys(monitor.responses)).toEqual(['200', '303', '304', '404', '410', '500', '503', 'default']);
    expect(Object.keys(monitor.responses['200']?.content ?? {})).toEqual(['application/json', 'text/event-stream']);
    expect(Object.keys(monitor.responses['200']?.headers ?? {})).toEqual(
      expect.arrayContaining(['ETag', 'Retry-After', 'Preference-Applied']),
    );
    expect(monitor.responses['303']?.headers).toHaveProperty('Location');
    expect(codesAt(monitor, '410')).toEqual(['SB_JOB_GONE']);
    const cancel = op(document, '/jobs/{id}', 'delete');
    expect(codesAt(cancel, '409')).toEqual(['SB_JOB_FINISHED']);
    const result = op(document, '/jobs/{id}/result', 'get');
    expect(codesAt(result, '409').sort()).toEqual(['SB_CONFLICT', 'SB_JOB_CANCELED']);
    expect(refsOf(result.responses['200']?.content)).toEqual(['#/components/schemas/service-b.analyze.Output']);
    expect((resolvePointer(document, '#/components/schemas/JobStatus/properties/operation') as JsonObject).enum).toEqual(['analyze']);

    const none = await generateOpenApi(serviceB);
    expect(Object.keys(none.document.paths as object)).not.toContain('/jobs/{id}');
    expect(op(none.document, '/ops/analyze').responses['202']).toBeUndefined();
  });

  it('lists every declared error and every registry error the call path can answer, by status', async () => {
    const { document } = await generateOpenApi(serviceB, { jobs: ['analyze'] });
    const save = op(document, '/ops/save');
    expect(codesAt(save, '400').sort()).toEqual(['SB_BAD_REQUEST', 'SB_MALFORMED_JSON', 'SB_VALIDATION']);
    expect(codesAt(save, '422').sort()).toEqual(['SB_IDEMPOTENCY_KEY_REUSED', 'service-b.save.NameRejected']);
    expect(codesAt(save, '503').sort()).toEqual(['SB_OVERLOADED', 'SB_STORE_UNAVAILABLE']);
    expect(codesAt(save, '504')).toEqual(['SB_DEADLINE_EXCEEDED']);
    expect(Object.keys(save.responses)).toEqual(['200', '400', '408', '409', '413', '415', '422', '500', '503', '504', 'default']);
    expect(save.responses['503']?.headers).toHaveProperty('Retry-After');
    expect(save.responses['413']?.headers).toHaveProperty('Connection');
    const analyze = op(document, '/ops/analyze');
    expect(codesAt(analyze, '400')).toContain('SB_CALLBACK_NOT_ALLOWED');
    expect(codesAt(analyze, '409').sort()).toEqual(['SB_IDEMPOTENCY_IN_PROGRESS', 'SB_JOB_CANCELED']);

    // Each registry problem fixes its type and code to what the registry says.
    for (const name of Object.keys((document.components as { schemas: object }).schemas).filter((n) => n.startsWith('Problem.'))) {
      const code = name.slice('Problem.'.length) as keyof typeof errorRegistry;
      const schema = resolvePointer(document, `#/components/schemas/${name}`) as { properties: Record<string, { const: unknown }> };
      expect(errorRegistry[code]).toBeDefined();
      expect(schema.properties.code?.const).toBe(code);
      expect(schema.properties.retryable?.const).toBe(errorRegistry[code].retryable);
    }
    const declared = resolvePointer(document, '#/components/schemas/service-b.save.NameRejected') as JsonObject;
    expect(declared.properties).toMatchObject({
      type: { const: 'urn:switchboard:service-b:error:NameRejected' },
      code: { const: 'NameRejected' },
      status: { const: 422 },
      data: { $ref: '#/components/schemas/service-b.save.NameRejected.Data' },
    });
  });

  it('takes input schemas for requests and output schemas for responses', async () => {
    const { document } = await generateOpenApi(serviceB);
    const schemas = (document.components as { schemas: Record<string, JsonObject> }).schemas;
    // `workMs` has a default: optional in what a caller sends, always there in what comes back out.
    expect(schemas['service-b.analyze.Input']?.required).toEqual(['name']);
    expect(schemas['service-b.save.Output']).toMatchObject({ required: ['saved', 'id', 'saves', 'traceId'], additionalProperties: false });
  });

  it('generates zod, valibot and arktype contracts; $defs are hoisted into components and every $ref resolves', async () => {
    for (const contract of [zodContract, valibotContract, arktypeContract]) {
      const { document, warnings } = await generateOpenApi(contract, { jobs: true, receipts: true, events: { accepts: [zodContract] } });
      expect(await openApiErrors(document), contract.name).toEqual([]);
      expect(unresolvedRefs(document), contract.name).toEqual([]);
      expect(warnings, contract.name).toEqual([]);
      expect(JSON.stringify(document)).not.toContain('$defs');
      expect(JSON.stringify(document)).not.toContain('"$schema"');
    }
    const { document } = await generateOpenApi(zodContract, { jobs: true });
    const schemas = (document.components as { schemas: Record<string, JsonObject> }).schemas;
    // A shared `.meta({ id: 'Person' })` definition is one component both inputs point to.
    expect(schemas.Person).toMatchObject({ type: 'object', required: ['name', 'email'] });
    expect(refsOf(schemas['zod-service.register.Input'])).toEqual(['#/components/schemas/Person', '#/components/schemas/Person']);
    // The recursive tree points at its own component instead of `#` (the document's root).
    const tree = schemas['zod-service.rebuild.Output'] as JsonObject;
    expect(refsOf(tree)).toEqual(['#/components/schemas/zod-service.rebuild.Output']);
    // `mode: 'sync'` never runs as a job, `mode: 'async'` always does.
    expect(op(document, '/ops/ping').responses['202']).toBeUndefined();
    expect(op(document, '/ops/rebuild').responses['202']).toBeDefined();
    expect((op(document, '/ops/rebuild') as unknown as Record<string, unknown>)['x-switchboard-mode']).toBe('async');
    // Valibot went through @valibot/to-json-schema: its constraints are there.
    const valibot = await generateOpenApi(valibotContract);
    const key = resolvePointer(valibot.document, '#/components/schemas/valibot-service.lookup.Input/properties/key');
    expect(key).toEqual({ type: 'string', minLength: 2, maxLength: 40 });
  });

  it('documents what JSON Schema cannot express with a fallback and a warning, and never throws', async () => {
    const { document, warnings } = await generateOpenApi(unrepresentableContract);
    expect(await openApiErrors(document)).toEqual([]);
    expect(warnings.map((w) => [w.pointer, w.subject])).toEqual([
      ['#/components/schemas/odd-service.schedule.Input', 'odd-service operation schedule input'],
      ['#/components/schemas/odd-service.schedule.Output', 'odd-service operation schedule output'],
      ['#/components/schemas/odd-service.measure.Input', 'odd-service operation measure input'],
      ['#/components/schemas/odd-service.measure.Output', 'odd-service operation measure output'],
      ['#/components/schemas/odd-service.stamp.Input', 'odd-service operation stamp input'],
    ]);
    expect(warnings.map((w) => w.message)).toEqual([
      'Date cannot be represented in JSON Schema',
      'Transforms cannot be represented in JSON Schema',
      'arktype cannot express date in JSON Schema',
      'arktype knows no output type of a morph (transform)',
      'The "date" schema cannot be converted to JSON Schema.',
    ]);
    const schedule = resolvePointer(document, '#/components/schemas/odd-service.schedule.Input') as JsonObject;
    // What can be expressed stays; the date itself is `{}` (any value) and the schema says why.
    expect(schedule.properties).toEqual({ at: {}, label: { type: 'string' } });
    expect(schedule.description).toContain('Date cannot be represented in JSON Schema');
  });

  it('describes several contracts at their own base paths, and refuses two at the same one', async () => {
    const { document } = await generateOpenApi([
      { contract: serviceA, basePath: '/a' },
      { contract: serviceB, basePath: '/b', jobs: ['analyze'] },
    ]);
    expect(await openApiErrors(document)).toEqual([]);
    expect(Object.keys(document.paths as object)).toEqual(
      expect.arrayContaining(['/a/ops/process', '/b/ops/save', '/b/jobs/{id}', '/a/healthz', '/b/healthz']),
    );
    expect((op(document, '/b/ops/save') as unknown as { operationId: string }).operationId).toBe('service-b.save');
    await expect(generateOpenApi([serviceA, serviceB])).rejects.toMatchObject({ code: 'SB_CONFIG_INVALID' });
    await expect(generateOpenApi(serviceB, { jobs: ['nope'] })).rejects.toMatchObject({ code: 'SB_CONFIG_INVALID' });
  });

  it('answers an operation with no output members and no errors too', async () => {
    const tiny = defineContract({ name: 'tiny', operations: { noop: operation({ input: z.object({}), output: z.null() }) } });
    const { document } = await generateOpenApi(tiny, { health: false, idempotency: false });
    expect(await openApiErrors(document)).toEqual([]);
    expect(Object.keys(document.paths as object)).toEqual(['/ops/noop']);
    expect(op(document, '/ops/noop').responses['422']).toBeUndefined();
  });
});
