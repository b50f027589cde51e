import type { AnyContract, CloudEventsBinding, EventDelivery, StandardSchemaV1 } from '@switchboard/core';
import { CLOUDEVENTS_JSON_MEDIA_TYPE, SwitchboardError } from '@switchboard/core';
import { addressesOf } from '@switchboard/messaging';
import { componentName, SchemaComponents } from './components.js';
import type { AsyncApiEngine } from './engines.js';
import { engineFromUrl } from './engines.js';
import type { JsonObject } from './json.js';
import { pointerSegment, sorted } from './json.js';
import type { GeneratedDocument } from './openapi.js';
import { isContract } from './options.js';
import { cloudEventProperties } from './wire-schemas.js';

/** A contract, or some of its entries by name. */
export type ContractSelection = AnyContract | { readonly contract: AnyContract; readonly names: readonly string[] };

/** One service (one consumer group) and what it does on the engines. */
export interface AsyncApiService {
  /** The service name: the CloudEvents `source` of what it publishes. */
  readonly name: string;
  /** Its consumer group. Default: `name`. Instances of a service share it (balanced); every group gets its own copy. */
  readonly group?: string;
  /** Contracts it implements: it receives their messages and operations (`messaging.handle`, `messaging.serve`). */
  readonly serves?: readonly ContractSelection[];
  /** Contracts whose events it emits. */
  readonly emits?: readonly ContractSelection[];
  /** Contracts whose events it reacts to (`messaging.on`). */
  readonly subscribes?: readonly ContractSelection[];
  /** Contracts it sends messages or invokes operations of (`messaging.send`, `messaging.invoke`). */
  readonly sends?: readonly ContractSelection[];
}

export interface AsyncApiOptions {
  /** Default: the contract names, joined. */
  readonly title?: string;
  /** Default: the contract's version (`'1'` for several contracts). */
  readonly version?: string;
  readonly description?: string;
  /**
   * The engines messages and events travel on (AsyncAPI servers), each with its CloudEvents
   * binding (`engineFromUrl`, `engineForBroker`). Default: the embedded SQLite broker.
   * At-most-once engines (core NATS, Redis pub/sub, MQTT) carry the events declared
   * `delivery: 'at-most-once'`; the others carry everything else (and those events too when no
   * at-most-once engine is listed).
   */
  readonly engines?: readonly AsyncApiEngine[];
  /**
   * Who sends and receives what. Default: for each contract, a service of its name that serves
   * its messages and operations and emits its events.
   */
  readonly services?: readonly AsyncApiService[];
}

export const ASYNCAPI_VERSION = '3.0.0';
export const DEFAULT_ENGINE_URL = 'sqlite:.switchboard/broker.db';

type EntryKind = 'message' | 'operation' | 'event';

interface Entry {
  readonly kind: EntryKind;
  readonly contract: AnyContract;
  readonly name: string;
  readonly type: string;
  readonly topic: string;
  readonly schema: StandardSchemaV1 | undefined;
  readonly description: string | undefined;
  readonly attachment: boolean;
  readonly delivery: EventDelivery;
}

function entriesOf(contract: AnyContract): Entry[] {
  return addressesOf(contract).map((address) => {
    const { kind, name } = address;
    const definition =
      kind === 'message' ? contract.messages[name] : kind === 'operation' ? contract.operations[name] : contract.events[name];
    const schema =
      kind === 'message'
        ? contract.messages[name]?.schema
        : kind === 'operation'
          ? contract.operations[name]?.input
          : contract.events[name]?.data;
    const event = kind === 'event' ? contract.events[name] : undefined;
    return {
      kind,
      contract,
      name,
      type: address.type,
      topic: address.topic,
      schema,
      description: definition?.description,
      attachment: event?.attachment ?? false,
      delivery: event?.delivery ?? 'at-least-once',
    };
  });
}

function selection(item: ContractSelection): { contract: AnyContract; names: readonly string[] | undefined } {
  if (isContract(item)) return { contract: item, names: undefined };
  if (!isContract(item.contract))
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'a service names something that is not a contract' });
  return { contract: item.contract, names: item.names };
}

interface Channel {
  readonly id: string;
  readonly topic: string;
  readonly engine: AsyncApiEngine;
  readonly messages: Map<string, Entry>;
}

/**
 * Generates the AsyncAPI 3.0 document of one or more contracts: one channel per topic and
 * engine (`<service>.messages`, `<service>.events`), every message, operation invocation and
 * event as a message with its CloudEvents envelope on that engine (attributes as headers in
 * binary mode, or the whole `application/cloudevents+json` document in structured mode), a
 * send or receive operation per service and consumer group, and the delivery guarantee of each
 * (`x-switchboard-delivery`). Payload schemas are draft-07 JSON Schema from the validators.
 */
export async function generateAsyncApi(
  input: AnyContract | readonly AnyContract[],
  options: AsyncApiOptions = {},
): Promise<GeneratedDocument> {
  const contracts = (Array.isArray(input) ? input : [input]) as readonly AnyContract[];
  if (contracts.length === 0 || !contracts.every(isContract)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'generateAsyncApi needs one or more contracts' });
  }
  const engines = options.engines !== undefined && options.engines.length > 0 ? options.engines : [engineFromUrl(DEFAULT_ENGINE_URL)];
  const ids = new Set<string>();
  for (const engine of engines) {
    if (ids.has(engine.id)) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `two engines have the id ${engine.id}` });
    ids.add(engine.id);
  }
  const services: readonly AsyncApiService[] =
    options.services ?? contracts.map((contract) => ({ name: contract.name, serves: [contract], emits: [contract] }));
  // Every contract a service names is described, even one not passed in `input`.
  const all = new Map<string, AnyContract>();
  for (const contract of contracts) all.set(contract.name, contract);
  for (const service of services) {
    for (const item of [...(service.serves ?? []), ...(service.emits ?? []), ...(service.subscribes ?? []), ...(service.sends ?? [])]) {
      const { contract } = selection(item);
      if (!all.has(contract.name)) all.set(contract.name, contract);
    }
  }

  const schemas = new SchemaComponents('draft-07');
  const bindingKey = (engine: AsyncApiEngine) =>
    `${engine.cloudEvents.mode}\u0000${engine.cloudEvents.prefix}\u0000${engine.cloudEvents.values}\u0000${engine.cloudEvents.dataContentType}`;
  const perEngineMessages = new Set(engines.map(bindingKey)).size > 1;
  const perEngineChannels = engines.length > 1;
  const hasAtMostOnceEngine = engines.some((engine) => engine.delivery === 'at-most-once');
  const carries = (engine: AsyncApiEngine, entry: Entry): boolean => {
    if (engine.delivery === 'at-most-once') return entry.kind === 'event' && entry.delivery === 'at-most-once';
    return !(entry.kind === 'event' && entry.delivery === 'at-most-once' && hasAtMostOnceEngine);
  };

  const messages: Record<string, JsonObject> = {};
  const channels = new Map<string, Channel>();
  for (const contract of all.values()) {
    const entries = entriesOf(contract);
    for (const engine of engines) {
      for (const entry of entries) {
        if (!carries(engine, entry)) continue;
        const channelId = componentName(perEngineChannels ? `${entry.topic}.${engine.id}` : entry.topic);
        let channel = channels.get(channelId);
        if (channel === undefined) {
          channel = { id: channelId, topic: entry.topic, engine, messages: new Map() };
          channels.set(channelId, channel);
        }
        const messageId = componentName(perEngineMessages ? `${entry.type}.${engine.id}` : entry.type);
        channel.messages.set(messageId, entry);
        messages[messageId] ??= await messageObject(schemas, entry, engine);
      }
    }
  }

  const channelObjects: Record<string, JsonObject> = {};
  for (const channel of channels.values()) {
    const kind = channel.topic.endsWith('.events') ? 'events' : 'messages';
    const owner = [...channel.messages.values()][0]?.contract.name ?? '';
    const channelMessages: JsonObject = {};
    for (const id of channel.messages.keys()) channelMessages[id] = { $ref: `#/components/messages/${pointerSegment(id)}` };
    channelObjects[channel.id] = {
      address: channel.engine.address === undefined ? channel.topic : channel.engine.address(channel.topic),
      title: channel.topic,
      description:
        kind === 'events'
          ? `Events ${owner} emits. Every consumer group gets each event; instances of one group share them.`
          : `Messages and operation invocations addressed to ${owner}. Its consumer group receives each one; its instances share them.`,
      servers: [{ $ref: `#/servers/${pointerSegment(channel.engine.id)}` }],
      messages: channelMessages,
    };
  }

  const operations: Record<string, JsonObject> = {};
  const addOperations = (
    service: AsyncApiService,
    action: 'send' | 'receive',
    item: ContractSelection,
    kind: 'events' | 'messages',
  ): void => {
    const { contract, names } = selection(item);
    const group = service.group ?? service.name;
    for (const channel of channels.values()) {
      const [first] = channel.messages.values();
      if (first === undefined || first.contract.name !== contract.name || !channel.topic.endsWith(`.${kind}`)) continue;
      const chosen = [...channel.messages].filter(([, entry]) => names === undefined || names.includes(entry.name));
      if (chosen.length === 0) continue;
      const id = componentName(`${service.name}.${action}.${channel.topic}${perEngineChannels ? `.${channel.engine.id}` : ''}`);
      const operation: JsonObject = {
        action,
        channel: { $ref: `#/channels/${pointerSegment(channel.id)}` },
        messages: chosen.map(([messageId]) => ({
          $ref: `#/channels/${pointerSegment(channel.id)}/messages/${pointerSegment(messageId)}`,
        })),
        title: `${service.name} ${action === 'send' ? (kind === 'events' ? 'emits' : 'sends') : 'receives'} ${channel.topic}`,
        'x-switchboard-service': service.name,
      };
      if (action === 'receive') {
        operation.summary = `Consumer group ${group}`;
        operation.description = `Received by consumer group \`${group}\`: its instances share the deliveries (balanced); every other group gets its own copy.`;
        operation['x-switchboard-group'] = group;
      }
      if (operations[id] !== undefined) {
        // The same service named the contract twice: keep one operation with every message.
        const known = operations[id].messages as JsonObject[];
        for (const ref of operation.messages as JsonObject[]) if (!known.some((k) => k.$ref === ref.$ref)) known.push(ref);
        continue;
      }
      operations[id] = operation;
    }
  };
  for (const service of services) {
    for (const item of service.serves ?? []) addOperations(service, 'receive', item, 'messages');
    for (const item of service.emits ?? []) addOperations(service, 'send', item, 'events');
    for (const item of service.subscribes ?? []) addOperations(service, 'receive', item, 'events');
    for (const item of service.sends ?? []) addOperations(service, 'send', item, 'messages');
  }

  const servers: Record<string, JsonObject> = {};
  for (const engine of engines) {
    const binding = engine.cloudEvents;
    servers[engine.id] = {
      host: engine.host,
      protocol: engine.protocol,
      ...(engine.pathname === undefined ? {} : { pathname: engine.pathname }),
      title: engine.broker,
      description:
        engine.description ??
        `${engine.broker}: ${engine.delivery}. CloudEvents in ${binding.mode} content mode${
          binding.mode === 'binary'
            ? `, attributes as \`${binding.prefix}<name>\`${binding.carrier === undefined ? '' : ` in ${binding.carrier}`}${binding.values === 'percent' ? ', values percent-encoded' : ''}`
            : ''
        }.`,
      'x-switchboard-broker': engine.broker,
      'x-switchboard-delivery': engine.delivery,
      'x-cloudevents': { ...binding },
    };
  }

  const first = contracts[0] as AnyContract;
  const info: JsonObject = {
    title: options.title ?? contracts.map((contract) => contract.name).join(', '),
    version: options.version ?? (contracts.length === 1 ? first.version : '1'),
  };
  const description = options.description ?? (contracts.length === 1 ? first.description : undefined);
  if (description !== undefined) info.description = description;
  const document: JsonObject = {
    asyncapi: ASYNCAPI_VERSION,
    info,
    defaultContentType: 'application/json',
    servers,
    channels: channelObjects,
    operations,
    components: { ...(Object.keys(schemas.schemas).length > 0 ? { schemas: sorted(schemas.schemas) } : {}), messages: sorted(messages) },
  };
  return { document, warnings: [...schemas.warnings] };
}

const KIND_TEXT: Readonly<Record<EntryKind, string>> = {
  message: 'Message',
  operation: 'Invokes operation',
  event: 'Event',
};

async function messageObject(schemas: SchemaComponents, entry: Entry, engine: AsyncApiEngine): Promise<JsonObject> {
  const subject = `${entry.contract.name} ${entry.kind} ${entry.name}${entry.kind === 'event' ? ' data' : entry.kind === 'operation' ? ' input' : ''}`;
  const suffix = entry.kind === 'message' ? 'Message' : entry.kind === 'operation' ? 'Input' : 'Event';
  const data =
    entry.schema === undefined
      ? undefined
      : await schemas.add(`${entry.contract.name}.${entry.name}.${suffix}`, entry.schema, 'input', subject);
  const binding = engine.cloudEvents;
  const message: JsonObject = {
    name: entry.type,
    title: `${KIND_TEXT[entry.kind]} ${entry.name} of ${entry.contract.name}`,
    ...(entry.description === undefined ? {} : { summary: entry.description }),
    description: messageDescription(entry, binding.mode),
  };
  if (binding.mode === 'structured') {
    message.contentType = CLOUDEVENTS_JSON_MEDIA_TYPE;
    message.headers = {
      type: 'object',
      properties: { 'content-type': { type: 'string', const: CLOUDEVENTS_JSON_MEDIA_TYPE } },
    };
    const envelope = schemas.define('CloudEvent', {
      type: 'object',
      description: 'A CloudEvents 1.0 event in the JSON event format. Extension attributes are top-level members.',
      properties: { ...cloudEventProperties(), data: {}, data_base64: { type: 'string', contentEncoding: 'base64' } },
      required: ['specversion', 'id', 'source', 'type'],
    });
    message.payload = {
      allOf: [envelope],
      properties: { type: { const: entry.type }, ...(data === undefined ? {} : { data }) },
    };
  } else {
    message.headers = binaryHeaders(entry, binding, data !== undefined);
    if (data !== undefined) {
      message.contentType = 'application/json';
      message.payload = data;
    }
  }
  message['x-cloudevents-type'] = entry.type;
  message['x-switchboard-kind'] = entry.kind;
  message['x-switchboard-delivery'] = entry.delivery;
  if (entry.attachment) message['x-switchboard-attachment'] = true;
  return message;
}

function messageDescription(entry: Entry, mode: 'binary' | 'structured'): string {
  // The contract's own description is the message's `summary`.
  const lines: string[] = [];
  if (entry.kind === 'event' && entry.schema === undefined) lines.push('Payload-free: the event carries no data.');
  if (entry.attachment) {
    lines.push('May carry an attachment by claim check: the bytes are in the blob store at `dataref`, verified by `datahash` (SHA-256).');
  }
  if (entry.schema !== undefined)
    lines.push('Data over the claim-check threshold travels the same way: `dataref` + `datahash` instead of the body.');
  lines.push(
    entry.delivery === 'at-most-once'
      ? 'Delivery: at most once (fire-and-forget: no inbox, receipts, retries or dead letters).'
      : 'Delivery: at least once; the inbox keyed by MessageId (`id`) runs the handler once per consumer group; failures are retried, then dead-lettered.',
  );
  lines.push(
    mode === 'binary'
      ? 'CloudEvents binary content mode: the attributes are the headers, the data is the body.'
      : 'CloudEvents structured content mode: the whole event is one JSON document.',
  );
  return lines.join('\n\n');
}

/** The CloudEvents attributes as headers of one binding (binary content mode). */
function binaryHeaders(entry: Entry, binding: CloudEventsBinding, hasData: boolean): JsonObject {
  const { prefix } = binding;
  const encoded = binding.values === 'percent' ? ' (percent-encoded)' : '';
  const text = (description: string, extra: JsonObject = {}): JsonObject => ({
    type: 'string',
    description: `${description}${encoded}`,
    ...extra,
  });
  const properties: JsonObject = {
    [`${prefix}specversion`]: { type: 'string', const: '1.0' },
    [`${prefix}id`]: text('The MessageId (a UUIDv7): the identity of the message with `source`.', { minLength: 1 }),
    [`${prefix}source`]: text('The sending service name.', { minLength: 1 }),
    [`${prefix}type`]: { type: 'string', const: entry.type },
    [`${prefix}time`]: text('RFC 3339 time of the occurrence.'),
    [`${prefix}subject`]: text('Subject of the event, when given.'),
    [`${prefix}traceparent`]: text('W3C Trace Context.'),
    [`${prefix}tracestate`]: text('W3C Trace Context.'),
  };
  if (hasData || entry.attachment) {
    properties[`${prefix}dataref`] = text('Claim check: where the data (or the attachment) is kept.');
    properties[`${prefix}datahash`] = text('Claim check: `sha256:<64 hex digits>` of the referenced bytes.');
    properties[`${prefix}datasize`] = text('Claim check: length of the referenced bytes (decimal).');
    properties[`${prefix}dataexpires`] = text('Claim check: RFC 3339 time after which the referenced bytes may be deleted.');
  }
  if (entry.attachment) properties[`${prefix}datamediatype`] = text('Claim check: media type of the attachment.');
  if (hasData) {
    const name = binding.dataContentType === 'attribute' ? `${prefix}datacontenttype` : 'content-type';
    properties[name] = { type: 'string', const: 'application/json', description: 'The `datacontenttype`.' };
  }
  return {
    type: 'object',
    properties,
    required: [`${prefix}specversion`, `${prefix}id`, `${prefix}source`, `${prefix}type`],
  };
}
