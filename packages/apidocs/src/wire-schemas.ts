import { receiptStates } from '@switchboard/core';
import type { SchemaComponents } from './components.js';
import type { JsonObject } from './json.js';
import { problemSchema } from './problems.js';

const dateTime = (description?: string): JsonObject => ({
  type: 'string',
  format: 'date-time',
  ...(description === undefined ? {} : { description }),
});

/** The job status document of `docs/protocol.md` (what the monitor, 202 answers, SSE and webhooks carry). */
export function jobStatusSchema(components: SchemaComponents, operations: readonly string[]): JsonObject {
  const problem = problemSchema(components);
  return components.define('JobStatus', {
    type: 'object',
    description: 'The state of an asynchronous job.',
    properties: {
      id: { type: 'string', description: 'Unguessable job id (128 random bits, base64url).' },
      operation: operations.length > 0 ? { type: 'string', enum: [...operations] } : { type: 'string' },
      status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'canceled'] },
      progress: {
        description: 'The last progress the handler reported (`ctx.progress`).',
        type: 'object',
        properties: { percent: { type: 'number', minimum: 0, maximum: 100 }, message: { type: 'string' } },
      },
      createdAt: dateTime(),
      updatedAt: dateTime(),
      startedAt: dateTime(),
      finishedAt: dateTime(),
      expiresAt: dateTime('After it the monitor answers 410 Gone.'),
      attempts: { type: 'integer', minimum: 0, description: 'Runs so far (1 while the first run is on).' },
      error: { ...problem, description: 'Problem of a failed or canceled job (of the last attempt while a retry is queued).' },
      resultUrl: { type: 'string', description: 'Where the result is, once `succeeded`.' },
      callback: {
        type: 'object',
        description: 'Delivery of the completion callback, when one was given.',
        properties: {
          state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
          attempts: { type: 'integer', minimum: 0 },
          lastAttemptAt: dateTime(),
          lastError: { type: 'string' },
        },
        required: ['state', 'attempts'],
      },
    },
    required: ['id', 'operation', 'status', 'createdAt', 'updatedAt', 'attempts'],
  });
}

/** `{ type, timestamp, data }`, the body of a completion callback (Standard Webhooks). */
export function jobCallbackSchema(components: SchemaComponents, status: JsonObject): JsonObject {
  return components.define('JobCallback', {
    type: 'object',
    properties: {
      type: { type: 'string', enum: ['job.succeeded', 'job.failed', 'job.canceled'] },
      timestamp: dateTime(),
      data: { allOf: [status], properties: { result: { description: 'The output, on `job.succeeded`.' } } },
    },
    required: ['type', 'timestamp', 'data'],
  });
}

/** What `GET /receipts/{messageId}` answers. */
export function receiptDocumentSchema(components: SchemaComponents): JsonObject {
  const problem = problemSchema(components);
  const group = components.define('GroupReceipt', {
    type: 'object',
    description: "One consumer group's receipt for the MessageId.",
    properties: {
      group: { type: 'string' },
      state: { type: 'string', enum: [...receiptStates] },
      attempts: { type: 'integer', minimum: 0, description: 'Handler runs started so far.' },
      type: { type: 'string', description: 'CloudEvents `type`.' },
      source: { type: 'string', description: 'CloudEvents `source`.' },
      topic: { type: 'string' },
      receivedAt: dateTime(),
      updatedAt: dateTime(),
      processedAt: dateTime(),
      error: { ...problem, description: 'The latest failure, on `failed` and `dead-lettered`.' },
      result: { type: 'string', description: 'JSON summary of what the handler returned, on `processed`.' },
    },
    required: ['group', 'state', 'attempts', 'receivedAt', 'updatedAt'],
  });
  return components.define('ReceiptDocument', {
    type: 'object',
    description: 'What the receiving service knows about one MessageId: one entry per consumer group that received it.',
    properties: {
      messageId: { type: 'string' },
      done: { type: 'boolean', description: 'True when every group reached `processed` or `dead-lettered`.' },
      groups: { type: 'array', items: group },
    },
    required: ['messageId', 'done', 'groups'],
  });
}

/** The results of a batch of CloudEvents received over HTTP. */
export function eventResultsSchema(components: SchemaComponents): JsonObject {
  const problem = problemSchema(components);
  const result = components.define('EventResult', {
    type: 'object',
    properties: {
      id: { type: 'string' },
      status: { type: 'string', enum: ['processed', 'duplicate', 'retry', 'dead-lettered'] },
      retryAfterMs: { type: 'number', minimum: 0 },
      error: problem,
    },
    required: ['id', 'status'],
  });
  return components.define('EventResults', {
    type: 'object',
    properties: { results: { type: 'array', items: result } },
    required: ['results'],
  });
}

/** The CloudEvents 1.0 attributes, as the JSON event format writes them. */
export function cloudEventProperties(): JsonObject {
  return {
    specversion: { type: 'string', const: '1.0' },
    id: { type: 'string', minLength: 1, description: 'The MessageId (a UUIDv7 for what Switchboard publishes).' },
    source: { type: 'string', minLength: 1, description: 'URI-reference; the sending service name.' },
    type: { type: 'string', minLength: 1 },
    datacontenttype: { type: 'string' },
    dataschema: { type: 'string', format: 'uri' },
    subject: { type: 'string', minLength: 1 },
    time: { type: 'string', format: 'date-time' },
    traceparent: { type: 'string', description: 'W3C Trace Context (Distributed Tracing extension).' },
    tracestate: { type: 'string' },
    dataref: { type: 'string', description: 'Claim check: where the data is kept (CloudEvents `dataref` extension).' },
    datahash: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', description: 'Claim check: SHA-256 of the referenced bytes.' },
    datasize: { type: 'integer', minimum: 0, description: 'Claim check: length of the referenced data in bytes.' },
    datamediatype: { type: 'string', description: 'Claim check: media type of the referenced data (an attachment).' },
    dataexpires: { type: 'string', format: 'date-time', description: 'Claim check: when the referenced data may be deleted.' },
  };
}
