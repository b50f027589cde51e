import type { JsonObject } from '@switchboard/apidocs';
import { engineForBroker, engineFromUrl, generateAsyncApi, generateOpenApi } from '@switchboard/apidocs';
import { createMemoryBroker } from '@switchboard/memory';
import { describe, expect, it } from 'vitest';
import { serviceA, serviceB } from '../../../examples/demo/src/contracts.js';
import { asyncApiDiagnostics, openApiErrors, resolvePointer, unresolvedRefs } from './checks.js';
import { arktypeContract, unrepresentableContract, valibotContract, zodContract } from './fixtures-contracts.js';

type Message = { headers: { properties: Record<string, unknown>; required: string[] }; payload?: JsonObject } & JsonObject;

function message(document: JsonObject, id: string): Message {
  const found = resolvePointer(document, `#/components/messages/${id}`);
  if (found === undefined) throw new Error(`no message ${id}`);
  return found as Message;
}

describe('generateAsyncApi', () => {
  it('documents the demo contracts with 0 errors and 0 warnings from @asyncapi/parser', async () => {
    const { document, warnings } = await generateAsyncApi([serviceA, serviceB]);
    const diagnostics = await asyncApiDiagnostics(document);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    // The one information the parser gives: AsyncAPI 3.1.0 exists (the documents are 3.0.0 on purpose).
    expect(diagnostics.infos).toEqual([expect.stringContaining('asyncapi-latest-version')]);
    expect(unresolvedRefs(document)).toEqual([]);
    expect(warnings).toEqual([]);
    expect(Object.keys(document.channels as object)).toEqual([
      'service-a.messages',
      'service-a.events',
      'service-b.messages',
      'service-b.events',
    ]);
    const channels = document.channels as Record<string, { address: string; messages: object }>;
    expect(channels['service-a.events']?.address).toBe('service-a.events');
    expect(Object.keys(channels['service-a.events']?.messages ?? {})).toEqual(['service-a.name.processed', 'service-a.picture.uploaded']);
    expect(Object.keys(channels['service-b.messages']?.messages ?? {})).toEqual(['service-b.op.save', 'service-b.op.analyze']);
    // B's row changes (`changes('names', ...)`) are events of its contract like any other.
    expect(Object.keys(channels['service-b.events']?.messages ?? {})).toEqual(['service-b.name.saved']);
    // The default services: each receives its own messages in its group and emits its events.
    expect(document.operations).toMatchObject({
      'service-b.receive.service-b.messages': { action: 'receive', 'x-switchboard-group': 'service-b' },
      'service-a.send.service-a.events': { action: 'send' },
    });
  });

  it('writes the CloudEvents envelope of binary mode as headers under the engine’s prefix', async () => {
    const { document } = await generateAsyncApi(serviceA, { engines: [engineFromUrl('amqp://guest:guest@127.0.0.1:5672')] });
    expect((await asyncApiDiagnostics(document)).errors).toEqual([]);
    expect(JSON.stringify(document)).not.toContain('guest');
    expect(document.servers).toMatchObject({
      rabbitmq: {
        host: '127.0.0.1:5672',
        protocol: 'amqp',
        'x-switchboard-delivery': 'at-least-once',
        'x-cloudevents': { name: 'amqp', mode: 'binary', prefix: 'cloudEvents_', values: 'raw', dataContentType: 'content-type' },
      },
    });
    const picture = message(document, 'service-a.picture.uploaded');
    expect(picture.headers.required).toEqual(['cloudEvents_specversion', 'cloudEvents_id', 'cloudEvents_source', 'cloudEvents_type']);
    expect(picture.headers.properties.cloudEvents_type).toEqual({ type: 'string', const: 'service-a.picture.uploaded' });
    expect(Object.keys(picture.headers.properties)).toEqual(
      expect.arrayContaining(['cloudEvents_dataref', 'cloudEvents_datahash', 'cloudEvents_datamediatype', 'content-type']),
    );
    expect(picture.payload).toEqual({ $ref: '#/components/schemas/service-a.picture.uploaded.Event' });
    expect(picture.contentType).toBe('application/json');
    expect(picture['x-switchboard-attachment']).toBe(true);
    // A payload-free event has no body and no content type.
    const processed = message(document, 'service-a.name.processed');
    expect(processed.payload).toBeUndefined();
    expect(processed.headers.properties).not.toHaveProperty('content-type');
    expect(processed['x-switchboard-delivery']).toBe('at-least-once');
  });

  it('puts at-most-once events on the at-most-once engine in structured mode, the rest on the reliable one', async () => {
    const { document } = await generateAsyncApi(zodContract, {
      engines: [engineFromUrl('nats://127.0.0.1:4222'), engineFromUrl('mqtt://127.0.0.1:1883')],
    });
    const diagnostics = await asyncApiDiagnostics(document);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    const channels = document.channels as Record<string, { messages: object; servers: unknown }>;
    expect(Object.keys(channels)).toEqual(['zod-service.messages.nats', 'zod-service.events.nats', 'zod-service.events.mqtt']);
    expect(Object.keys(channels['zod-service.events.mqtt']?.messages ?? {})).toEqual(['zod-service.heartbeat.sent.mqtt']);
    expect(Object.keys(channels['zod-service.events.nats']?.messages ?? {})).toEqual([
      'zod-service.person.registered.nats',
      'zod-service.cache.flushed.nats',
    ]);
    expect(channels['zod-service.events.mqtt']?.servers).toEqual([{ $ref: '#/servers/mqtt' }]);
    const heartbeat = message(document, 'zod-service.heartbeat.sent.mqtt');
    expect(heartbeat.contentType).toBe('application/cloudevents+json');
    expect(heartbeat['x-switchboard-delivery']).toBe('at-most-once');
    expect(heartbeat.payload).toEqual({
      allOf: [{ $ref: '#/components/schemas/CloudEvent' }],
      properties: {
        type: { const: 'zod-service.heartbeat.sent' },
        data: { $ref: '#/components/schemas/zod-service.heartbeat.sent.Event' },
      },
    });
    expect(message(document, 'zod-service.person.registered.nats').headers.properties).toHaveProperty('ce-id');
    expect(document.servers).toMatchObject({ mqtt: { protocol: 'mqtt', 'x-switchboard-delivery': 'at-most-once' } });
  });

  it('describes SNS + SQS from its URL, without connecting: structured events, on the emulator or on AWS', async () => {
    const emulator = engineFromUrl('sns-sqs://127.0.0.1:4566');
    expect(emulator).toMatchObject({ broker: 'sns-sqs', protocol: 'sns', host: '127.0.0.1:4566', delivery: 'at-least-once' });
    expect(emulator.cloudEvents.mode).toBe('structured');
    expect(engineFromUrl('sns-sqs://?region=eu-west-1&bucket=pictures').host).toBe('sns.eu-west-1.amazonaws.com');
    const { document } = await generateAsyncApi(zodContract, { engines: [emulator] });
    const diagnostics = await asyncApiDiagnostics(document);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    expect(message(document, 'zod-service.person.registered').contentType).toBe('application/cloudevents+json');
  });

  it('describes the consumer groups: who serves, emits, subscribes and sends', async () => {
    const { document } = await generateAsyncApi([serviceA, serviceB], {
      services: [
        { name: 'service-a', emits: [serviceA], sends: [{ contract: serviceB, names: ['save'] }] },
        { name: 'service-b', serves: [serviceB], subscribes: [serviceA] },
        { name: 'service-c', group: 'reporting', subscribes: [{ contract: serviceA, names: ['name.processed'] }] },
      ],
    });
    const diagnostics = await asyncApiDiagnostics(document);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    expect(Object.keys(document.operations as object)).toEqual([
      'service-a.send.service-a.events',
      'service-a.send.service-b.messages',
      'service-b.receive.service-b.messages',
      'service-b.receive.service-a.events',
      'service-c.receive.service-a.events',
    ]);
    expect((document.operations as Record<string, JsonObject>)['service-c.receive.service-a.events']).toEqual(
      expect.objectContaining({
        action: 'receive',
        'x-switchboard-group': 'reporting',
        messages: [{ $ref: '#/channels/service-a.events/messages/service-a.name.processed' }],
      }),
    );
    expect((document.operations as Record<string, { messages: unknown[] }>)['service-a.send.service-b.messages']?.messages).toEqual([
      { $ref: '#/channels/service-b.messages/messages/service-b.op.save' },
    ]);
  });

  it('generates zod, valibot and arktype contracts with draft-07 payloads that resolve', async () => {
    for (const contract of [zodContract, valibotContract, arktypeContract]) {
      const { document, warnings } = await generateAsyncApi(contract);
      const diagnostics = await asyncApiDiagnostics(document);
      expect(diagnostics.errors, contract.name).toEqual([]);
      expect(diagnostics.warnings, contract.name).toEqual([]);
      expect(unresolvedRefs(document), contract.name).toEqual([]);
      expect(warnings, contract.name).toEqual([]);
      expect(JSON.stringify(document)).not.toMatch(/"\$defs"|"definitions"|"\$schema"/);
    }
  });

  it('falls back and warns for schemas JSON Schema cannot express', async () => {
    const { document, warnings } = await generateAsyncApi(unrepresentableContract);
    expect((await asyncApiDiagnostics(document)).errors).toEqual([]);
    expect(warnings.map((w) => w.subject)).toEqual([
      'odd-service message reminder.due',
      'odd-service operation schedule input',
      'odd-service operation measure input',
      'odd-service operation stamp input',
    ]);
  });

  it('describes a live broker by the binding the messaging layer picks for it', async () => {
    const broker = createMemoryBroker();
    try {
      const engine = engineForBroker(broker, { host: 'in-process' });
      expect(engine).toMatchObject({ id: 'memory', delivery: 'at-least-once', cloudEvents: { mode: 'binary', prefix: 'ce-' } });
      const { document } = await generateAsyncApi(serviceA, { engines: [engine] });
      expect((await asyncApiDiagnostics(document)).errors).toEqual([]);
    } finally {
      await broker.close();
    }
  });

  it('the validators used here do find errors (the checks are not vacuous)', async () => {
    const { document } = await generateAsyncApi(serviceA);
    const broken = structuredClone(document) as JsonObject;
    (broken.channels as Record<string, JsonObject>)['service-a.events'] = { address: 42 };
    expect((await asyncApiDiagnostics(broken)).errors.length).toBeGreaterThan(0);
    const openapi = (await generateOpenApi(serviceB)).document;
    const brokenOpenApi = { ...structuredClone(openapi), info: { title: 'no version' } };
    expect((await openApiErrors(brokenOpenApi)).length).toBeGreaterThan(0);
  });
});
