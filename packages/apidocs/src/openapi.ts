import type { AnyContract, ErrorCode, OperationDefinition } from '@switchboard/core';
import { operationProblemType, SwitchboardError } from '@switchboard/core';
import { eventType, messageType, operationType } from '@switchboard/messaging';
import type { DocumentWarning } from './components.js';
import { SchemaComponents } from './components.js';
import type { JsonObject } from './json.js';
import { sorted } from './json.js';
import type { OpenApiParts } from './openapi-common.js';
import { header, JSON_MEDIA_TYPE, normaliseBase, parameter, ResponseSet, routePath } from './openapi-common.js';
import type { JobsDescription, ResolvedJobs } from './options.js';
import { checkJobNames, isContract, resolveJobs } from './options.js';
import { PROBLEM_MEDIA_TYPE, problemSchema } from './problems.js';
import { cloudEventProperties, eventResultsSchema, jobCallbackSchema, jobStatusSchema, receiptDocumentSchema } from './wire-schemas.js';

/** One contract as one HTTP service serves it. */
export interface OpenApiService {
  readonly contract: AnyContract;
  /** Where the service is mounted (`createHttpService({ basePath })`). Default `''`. */
  readonly basePath?: string;
  /** Which operations run as jobs (`enableJobs`); only those get the async form. Default none. */
  readonly jobs?: JobsDescription;
  /** `GET {base}/receipts/{messageId}` is served (`messaging.routes()` with a receipt store). Default false. */
  readonly receipts?: boolean | { readonly path?: string };
  /**
   * `POST {base}/events` is served (`messaging.routes()`). `accepts`: the contracts whose events
   * the service subscribes to; its own messages and operations are accepted too. Default false.
   */
  readonly events?: boolean | { readonly path?: string; readonly accepts?: readonly AnyContract[] };
  /** `Idempotency-Key` is honoured (the default of `createHttpService`; `idempotency: false` turns it off). Default true. */
  readonly idempotency?: boolean;
}

export interface OpenApiAuth {
  /** Bearer tokens (JWT, verified against a JWKS). */
  readonly bearer?: boolean | { readonly description?: string; readonly bearerFormat?: string };
  /** Client certificates (mutual TLS). */
  readonly mutualTLS?: boolean | { readonly description?: string };
  /**
   * Scopes each operation requires, by name, over those its contract declares (`operation({ scopes })`):
   * the operation's `security` then lists them for every scheme. `apiDocumentRoutes` takes them
   * from the serving service.
   */
  readonly scopes?: Readonly<Record<string, readonly string[]>>;
}

export interface OpenApiOptions extends Omit<OpenApiService, 'contract'> {
  /** Default: the contract's name (or the names, joined). */
  readonly title?: string;
  /** Default: the contract's version (`'1'` for several contracts). */
  readonly version?: string;
  readonly description?: string;
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  /**
   * Authentication is configured in front of the service: adds the security schemes, requires one
   * of them on every path, and documents 401 and 403. Default: none.
   */
  readonly auth?: OpenApiAuth;
  /** `GET /healthz` and `GET /readyz`. Default true. */
  readonly health?: boolean;
  /** Paths of the documents the service serves itself (`apiDocumentRoutes`), listed in the document. */
  readonly documents?: { readonly openapi?: string; readonly asyncapi?: string };
}

/** A generated document and what could not be expressed exactly in it. */
export interface GeneratedDocument {
  readonly document: JsonObject;
  readonly warnings: readonly DocumentWarning[];
}

export const OPENAPI_VERSION = '3.1.1';

type ContractInput = AnyContract | OpenApiService;

function services(input: ContractInput | readonly ContractInput[], options: OpenApiOptions): OpenApiService[] {
  const list = (Array.isArray(input) ? input : [input]) as readonly ContractInput[];
  if (list.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'generateOpenApi needs at least one contract' });
  return list.map((item) => {
    const { contract, ...own } = isContract(item) ? { contract: item } : (item as OpenApiService);
    if (!isContract(contract))
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'generateOpenApi was given something that is not a contract' });
    const defaults: Omit<OpenApiService, 'contract'> = {
      ...(options.basePath === undefined ? {} : { basePath: options.basePath }),
      ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
      ...(options.receipts === undefined ? {} : { receipts: options.receipts }),
      ...(options.events === undefined ? {} : { events: options.events }),
      ...(options.idempotency === undefined ? {} : { idempotency: options.idempotency }),
    };
    return { ...defaults, ...own, contract };
  });
}

/** Registry errors the sync path can answer, before and around the handler (`docs/protocol.md` section 1). */
const CALL_ERRORS: readonly ErrorCode[] = [
  'SB_MALFORMED_JSON',
  'SB_VALIDATION',
  'SB_BAD_REQUEST',
  'SB_REQUEST_TIMEOUT',
  'SB_BODY_TOO_LARGE',
  'SB_UNSUPPORTED_MEDIA_TYPE',
  'SB_HANDLER_FAILED',
  'SB_INVALID_OUTPUT',
  'SB_INTERNAL',
  'SB_CONFIG_INVALID',
  'SB_OVERLOADED',
  'SB_DEADLINE_EXCEEDED',
];
const IDEMPOTENCY_ERRORS: readonly ErrorCode[] = ['SB_IDEMPOTENCY_KEY_REUSED', 'SB_IDEMPOTENCY_IN_PROGRESS', 'SB_STORE_UNAVAILABLE'];
/** More of them when the call may run as a job: the job store, callbacks, and a job's end answered inline (`Prefer: wait`). */
const SUBMIT_ERRORS: readonly ErrorCode[] = ['SB_CALLBACK_NOT_ALLOWED', 'SB_STORE_UNAVAILABLE', 'SB_JOB_FAILED', 'SB_JOB_CANCELED'];
/** What a failed job can have stored: the handler's outcome as `service.invoke` maps it, or the runner's own. */
const JOB_FAILURES: readonly ErrorCode[] = [
  'SB_HANDLER_FAILED',
  'SB_INVALID_OUTPUT',
  'SB_DEADLINE_EXCEEDED',
  'SB_OVERLOADED',
  'SB_JOB_FAILED',
];
const AUTH_ERRORS: readonly ErrorCode[] = ['SB_UNAUTHORIZED', 'SB_FORBIDDEN'];

/**
 * Generates the OpenAPI 3.1 document of one or more contracts as `createHttpService` serves
 * them: every operation at `POST {base}/ops/{name}` with its input, output and declared errors,
 * every registry error the path can answer (RFC 9457 `application/problem+json`), the async form
 * (202, status monitor, result, cancel) of the operations that run as jobs, and optionally the
 * receipts and CloudEvents endpoints and security schemes. Schemas come from the validators
 * themselves (Standard JSON Schema); what cannot be expressed is a documented fallback, listed
 * in `warnings`.
 */
export async function generateOpenApi(
  input: ContractInput | readonly ContractInput[],
  options: OpenApiOptions = {},
): Promise<GeneratedDocument> {
  const list = services(input, options);
  checkJobNames(
    list.map((service) => service.contract),
    options.jobs,
  );
  const parts: OpenApiParts = { schemas: new SchemaComponents('draft-2020-12'), parameters: {}, headers: {} };
  const single = list.length === 1;
  const auth = options.auth !== undefined && (options.auth.bearer || options.auth.mutualTLS) ? options.auth : undefined;
  const paths: Record<string, JsonObject> = {};
  const addPath = (path: string, method: string, operation: JsonObject): void => {
    paths[path] ??= {};
    const item = paths[path];
    if (item[method] !== undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `Two contracts serve ${method.toUpperCase()} ${path}; give them different base paths`,
      });
    }
    item[method] = operation;
  };
  const id = (contract: AnyContract, name: string) => (single ? name : `${contract.name}.${name}`);
  const resolved = list.map((service) => resolveJobs(service.contract, service.jobs));
  const jobOperations = [...new Set(resolved.flatMap((jobs) => jobs.operations))];
  // Defined first, so every reference to it shares one schema naming every job operation.
  if (jobOperations.length > 0) jobStatusSchema(parts.schemas, jobOperations);

  for (const [index, service] of list.entries()) {
    const { contract } = service;
    const base = normaliseBase(service.basePath);
    const jobs = resolved[index] as ResolvedJobs;
    const idempotency = service.idempotency !== false;
    for (const [name, definition] of Object.entries(contract.operations)) {
      const operation = await operationPath(parts, contract, name, definition, {
        id: id(contract, name),
        job: jobs.operations.includes(name),
        callbacks: jobs.callbacks,
        idempotency,
        auth: auth !== undefined,
      });
      const scopes = auth?.scopes?.[name] ?? definition.scopes ?? [];
      if (auth !== undefined && scopes.length > 0) operation.security = securityOf(auth, [...scopes]);
      addPath(`${base}/ops/${name}`, 'post', operation);
    }
    if (jobs.operations.length > 0) {
      for (const [path, method, operation] of await monitorPaths(parts, contract, jobs, auth !== undefined, (name) => id(contract, name))) {
        addPath(`${base}${path}`, method, operation);
      }
    }
    if (service.receipts) {
      const path = typeof service.receipts === 'object' && service.receipts.path !== undefined ? service.receipts.path : '/receipts/';
      addPath(
        `${base}${routePath(path)}/{messageId}`,
        'get',
        receiptsOperation(parts, contract, auth !== undefined, id(contract, 'getReceipt')),
      );
    }
    if (service.events) {
      const settings = typeof service.events === 'object' ? service.events : {};
      const operation = await eventsOperation(parts, contract, settings.accepts ?? [], auth !== undefined, id(contract, 'receiveEvents'));
      addPath(`${base}${routePath(settings.path ?? '/events')}`, 'post', operation);
    }
    if (options.health !== false) {
      // Probes are served without authentication.
      const open = auth === undefined ? {} : { security: [] };
      addPath(`${base}/healthz`, 'get', { ...healthOperation(contract, 'liveness', id(contract, 'healthz')), ...open });
      addPath(`${base}/readyz`, 'get', { ...healthOperation(contract, 'readiness', id(contract, 'readyz')), ...open });
    }
    for (const [kind, path] of Object.entries(options.documents ?? {})) {
      if (path === undefined) continue;
      addPath(`${base}${routePath(path)}`, 'get', {
        operationId: id(contract, `${kind}Document`),
        tags: [contract.name],
        summary: kind === 'openapi' ? 'This OpenAPI 3.1 document' : 'The AsyncAPI 3.0 document of the messages and events',
        responses: { 200: { description: 'The document', content: { [JSON_MEDIA_TYPE]: { schema: { type: 'object' } } } } },
      });
    }
  }

  const first = list[0]?.contract as AnyContract;
  const info: JsonObject = {
    title: options.title ?? list.map((service) => service.contract.name).join(', '),
    version: options.version ?? (single ? first.version : '1'),
  };
  const description = options.description ?? (single ? first.description : undefined);
  if (description !== undefined) info.description = description;

  const components: JsonObject = {};
  if (Object.keys(parts.schemas.schemas).length > 0) components.schemas = sorted(parts.schemas.schemas);
  if (Object.keys(parts.parameters).length > 0) components.parameters = sorted(parts.parameters);
  if (Object.keys(parts.headers).length > 0) components.headers = sorted(parts.headers);
  const document: JsonObject = { openapi: OPENAPI_VERSION, info };
  if (options.servers !== undefined && options.servers.length > 0) document.servers = options.servers.map((server) => ({ ...server }));
  document.tags = list.map((service) => ({
    name: service.contract.name,
    ...(service.contract.description === undefined ? {} : { description: service.contract.description }),
  }));
  document.paths = paths;
  if (auth !== undefined) {
    const schemes: JsonObject = {};
    if (auth.bearer) {
      const bearer = typeof auth.bearer === 'object' ? auth.bearer : {};
      schemes.bearerAuth = {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: bearer.bearerFormat ?? 'JWT',
        description: bearer.description ?? 'A service token (JWT) in `Authorization: Bearer <token>`, verified against the issuer’s JWKS.',
      };
    }
    if (auth.mutualTLS) {
      const mtls = typeof auth.mutualTLS === 'object' ? auth.mutualTLS : {};
      schemes.mutualTLS = { type: 'mutualTLS', description: mtls.description ?? 'A client certificate the service trusts.' };
    }
    components.securitySchemes = schemes;
    document.security = securityOf(auth, []);
  }
  document.components = components;
  return { document, warnings: [...parts.schemas.warnings] };
}

/** One security requirement per scheme (either will do), each with the scopes required. */
function securityOf(auth: OpenApiAuth, scopes: string[]): JsonObject[] {
  const security: JsonObject[] = [];
  if (auth.bearer) security.push({ bearerAuth: scopes });
  if (auth.mutualTLS) security.push({ mutualTLS: scopes });
  return security;
}

interface OperationSettings {
  readonly id: string;
  readonly job: boolean;
  readonly callbacks: boolean;
  readonly idempotency: boolean;
  readonly auth: boolean;
}

/** A declared error as a problem schema: `type`, `code` and `status` fixed, `data` its schema. */
async function declaredProblem(parts: OpenApiParts, contract: AnyContract, operation: string, code: string): Promise<JsonObject> {
  const declaration = contract.operations[operation]?.errors[code];
  if (declaration === undefined) throw new SwitchboardError('SB_INTERNAL', { detail: `no error ${code}` });
  const name = `${contract.name}.${operation}.${code}`;
  const properties: JsonObject = {
    type: { const: operationProblemType(contract.name, code) },
    code: { const: code },
    status: { const: declaration.status },
    title: { const: declaration.title ?? code },
    retryable: { const: declaration.retryable ?? false },
  };
  if (declaration.data !== undefined) {
    properties.data = await parts.schemas.add(
      `${name}.Data`,
      declaration.data,
      'output',
      `${contract.name} operation ${operation} error ${code} data`,
    );
  }
  return parts.schemas.define(name, {
    description: `${declaration.title ?? code}: an error operation ${operation} declares.`,
    allOf: [problemSchema(parts.schemas)],
    properties,
  });
}

async function operationPath(
  parts: OpenApiParts,
  contract: AnyContract,
  name: string,
  definition: OperationDefinition,
  settings: OperationSettings,
): Promise<JsonObject> {
  const subject = `${contract.name} operation ${name}`;
  const input = await parts.schemas.add(`${contract.name}.${name}.Input`, definition.input, 'input', `${subject} input`);
  const output = await parts.schemas.add(`${contract.name}.${name}.Output`, definition.output, 'output', `${subject} output`);
  const responses = new ResponseSet(parts);
  const replayed: Record<string, JsonObject> = settings.idempotency ? { 'Idempotent-Replayed': header(parts, 'IdempotentReplayed') } : {};
  const alwaysJob = settings.job && definition.mode === 'async';
  responses.add(
    200,
    alwaysJob ? 'The output, when the job finished within `Prefer: wait=N`' : 'The output',
    { [JSON_MEDIA_TYPE]: output },
    settings.job ? { ...replayed, 'Preference-Applied': header(parts, 'PreferenceApplied') } : replayed,
  );
  if (settings.job) {
    const location = header(parts, 'Location');
    responses.add(
      202,
      alwaysJob ? 'Accepted as a job: follow `Location`' : 'Accepted as a job (`Prefer: respond-async`): follow `Location`',
      { [JSON_MEDIA_TYPE]: jobStatusSchema(parts.schemas, []) },
      {
        Location: location,
        'Content-Location': header(parts, 'ContentLocation'),
        'Retry-After': header(parts, 'RetryAfter'),
        'Preference-Applied': header(parts, 'PreferenceApplied'),
        ...replayed,
      },
    );
  }
  for (const code of Object.keys(definition.errors)) {
    const declaration = definition.errors[code];
    const schema = await declaredProblem(parts, contract, name, code);
    responses.add(declaration?.status ?? 400, `${declaration?.title ?? code} (\`${code}\`, declared)`, { [PROBLEM_MEDIA_TYPE]: schema });
  }
  responses.problems(CALL_ERRORS);
  if (settings.idempotency) responses.problems(IDEMPOTENCY_ERRORS);
  if (settings.job) responses.problems(SUBMIT_ERRORS);
  if (settings.auth) responses.problems(AUTH_ERRORS);
  responses.otherProblems();

  const parameters = [parameter(parts, 'Timeout'), parameter(parts, 'Traceparent'), parameter(parts, 'Tracestate')];
  if (settings.idempotency) parameters.unshift(parameter(parts, 'IdempotencyKey'));
  if (settings.job) parameters.push(parameter(parts, 'Prefer'));
  if (settings.job && settings.callbacks) parameters.push(parameter(parts, 'Callback'));
  const operation: JsonObject = {
    operationId: settings.id,
    tags: [contract.name],
    summary: definition.description ?? `Calls ${name}`,
    description: operationDescription(definition, settings),
    parameters,
    requestBody: { required: true, content: { [JSON_MEDIA_TYPE]: { schema: input } } },
    responses: responses.toObject(),
    'x-switchboard-idempotent': definition.idempotent,
    'x-switchboard-mode': settings.job ? definition.mode : 'sync',
  };
  if (definition.timeoutMs !== undefined) operation['x-switchboard-timeout-ms'] = definition.timeoutMs;
  if (settings.job && settings.callbacks) {
    const status = jobStatusSchema(parts.schemas, []);
    operation.callbacks = {
      completion: {
        '{$request.header.Switchboard-Callback}': {
          post: {
            summary: 'The job finished (Standard Webhooks 1.0, signed)',
            parameters: [
              { name: 'webhook-id', in: 'header', required: true, schema: { type: 'string' } },
              { name: 'webhook-timestamp', in: 'header', required: true, schema: { type: 'string' } },
              { name: 'webhook-signature', in: 'header', required: true, schema: { type: 'string' } },
            ],
            requestBody: { required: true, content: { [JSON_MEDIA_TYPE]: { schema: jobCallbackSchema(parts.schemas, status) } } },
            responses: { '2XX': { description: 'Delivered; anything else is retried with backoff' } },
          },
        },
      },
    };
  }
  return operation;
}

function operationDescription(definition: OperationDefinition, settings: OperationSettings): string {
  const lines: string[] = [];
  if (definition.description !== undefined) lines.push(definition.description);
  if (settings.job) {
    lines.push(
      definition.mode === 'async'
        ? 'Always runs as a durable job: 202 Accepted with the status monitor in `Location`; `Prefer: wait=N` answers inline when the job finishes in time.'
        : 'Answers inline, or runs as a durable job with `Prefer: respond-async` (202 Accepted, status monitor in `Location`).',
    );
  }
  if (definition.idempotent) lines.push('Idempotent: safe to retry without an `Idempotency-Key`.');
  if (definition.timeoutMs !== undefined) lines.push(`Time limit: ${definition.timeoutMs} ms (504 past it).`);
  return lines.join('\n\n');
}

/** `GET|DELETE {base}/jobs/{id}` and `GET {base}/jobs/{id}/result`. */
async function monitorPaths(
  parts: OpenApiParts,
  contract: AnyContract,
  jobs: ResolvedJobs,
  auth: boolean,
  id: (name: string) => string,
): Promise<Array<[string, string, JsonObject]>> {
  const status = jobStatusSchema(parts.schemas, jobs.operations);
  const monitor = `${jobs.path}{id}`;
  const tags = [contract.name];
  const json = (schema: JsonObject) => ({ [JSON_MEDIA_TYPE]: schema });
  const common = (responses: ResponseSet): ResponseSet => {
    responses.problems(['SB_NOT_FOUND', 'SB_JOB_GONE', 'SB_STORE_UNAVAILABLE', 'SB_INTERNAL']);
    if (auth) responses.problems(AUTH_ERRORS);
    return responses.otherProblems();
  };

  const unfinished = {
    ETag: header(parts, 'ETag'),
    'Cache-Control': header(parts, 'CacheControl'),
    'Retry-After': header(parts, 'RetryAfter'),
  };
  const get = common(
    new ResponseSet(parts)
      .add(
        200,
        'The status document (`Retry-After` while unfinished); with `Accept: text/event-stream`, a stream of `status` events',
        {
          ...json(status),
          'text/event-stream': {
            type: 'string',
            description: '`event: status`, `id: <version>`, `data: <status document>` on every change; ends after a final state.',
          },
        },
        { ...unfinished, 'Preference-Applied': header(parts, 'PreferenceApplied') },
      )
      .add(303, 'Succeeded: the result is at `Location`', json(status), {
        Location: header(parts, 'Location'),
        ETag: header(parts, 'ETag'),
        'Cache-Control': header(parts, 'CacheControl'),
      })
      .add(304, 'Not modified since the `If-None-Match` version', undefined, { ETag: header(parts, 'ETag') }),
  );
  const cancel = common(
    new ResponseSet(parts)
      .add(200, 'Canceled (it was queued)', json(status), unfinished)
      .add(202, 'Cancel requested (it is running; its signal aborts)', json(status), { ...unfinished, Location: header(parts, 'Location') })
      .problem('SB_JOB_FINISHED', { Location: header(parts, 'Location') }),
  );

  const outputs: JsonObject[] = [];
  const result = new ResponseSet(parts);
  for (const name of jobs.operations) {
    const definition = contract.operations[name] as OperationDefinition;
    outputs.push(
      await parts.schemas.add(`${contract.name}.${name}.Output`, definition.output, 'output', `${contract.name} operation ${name} output`),
    );
    for (const code of Object.keys(definition.errors)) {
      const declaration = definition.errors[code];
      result.add(declaration?.status ?? 400, `${declaration?.title ?? code} (\`${code}\`, declared by ${name})`, {
        [PROBLEM_MEDIA_TYPE]: await declaredProblem(parts, contract, name, code),
      });
    }
  }
  result.add(200, 'The output of the succeeded job', json(outputs.length === 1 ? (outputs[0] as JsonObject) : { anyOf: outputs }), {
    ETag: header(parts, 'ETag'),
    'Cache-Control': header(parts, 'CacheControl'),
    'Content-Location': header(parts, 'ContentLocation'),
  });
  result.problems(JOB_FAILURES);
  result.problem('SB_JOB_CANCELED');
  result.problem('SB_CONFLICT', { Location: header(parts, 'Location'), 'Retry-After': header(parts, 'RetryAfter') });
  common(result);

  const pathParameters = [parameter(parts, 'JobId')];
  return [
    [
      monitor,
      'get',
      {
        operationId: id('getJob'),
        tags,
        summary: 'Status monitor of a job',
        description:
          'Long-poll with `?wait=N` (or `Prefer: wait=N`) and `If-None-Match`; `Accept: text/event-stream` streams every change (`Last-Event-ID` resumes). After the retention the monitor answers 410 Gone.',
        parameters: [...pathParameters, parameter(parts, 'Wait'), parameter(parts, 'IfNoneMatch'), parameter(parts, 'PreferWait')],
        responses: get.toObject(),
      },
    ],
    [
      monitor,
      'delete',
      {
        operationId: id('cancelJob'),
        tags,
        summary: 'Cancels a job',
        parameters: pathParameters,
        responses: cancel.toObject(),
      },
    ],
    [
      `${monitor}/result`,
      'get',
      {
        operationId: id('getJobResult'),
        tags,
        summary: 'The result of a succeeded job',
        description: 'A failed job answers its problem; a canceled one 409 `SB_JOB_CANCELED`; an unfinished one 409 `SB_CONFLICT`.',
        parameters: pathParameters,
        responses: result.toObject(),
      },
    ],
  ];
}

function receiptsOperation(parts: OpenApiParts, contract: AnyContract, auth: boolean, operationId: string): JsonObject {
  const responses = new ResponseSet(parts)
    .add(
      200,
      'Every consumer group’s receipt for the MessageId',
      { [JSON_MEDIA_TYPE]: receiptDocumentSchema(parts.schemas) },
      {
        'Cache-Control': header(parts, 'CacheControl'),
      },
    )
    .problems(['SB_BAD_REQUEST', 'SB_RECEIPT_NOT_FOUND', 'SB_NOT_FOUND', 'SB_INTERNAL']);
  if (auth) responses.problems(AUTH_ERRORS);
  responses.otherProblems();
  return {
    operationId,
    tags: [contract.name],
    summary: 'What became of a message: its receipts',
    parameters: [parameter(parts, 'MessageId'), parameter(parts, 'ReceiptWait'), parameter(parts, 'ReceiptGroup')],
    responses: responses.toObject(),
  };
}

/** The CloudEvents `type`s `POST /events` routes: the contract's messages and operations, and the events of `accepts`. */
async function acceptedTypes(
  parts: OpenApiParts,
  contract: AnyContract,
  accepts: readonly AnyContract[],
): Promise<Array<{ readonly type: string; readonly data: JsonObject | undefined }>> {
  const out: Array<{ type: string; data: JsonObject | undefined }> = [];
  for (const [name, definition] of Object.entries(contract.messages)) {
    out.push({
      type: messageType(contract, name),
      data: await parts.schemas.add(`${contract.name}.${name}.Message`, definition.schema, 'input', `${contract.name} message ${name}`),
    });
  }
  for (const [name, definition] of Object.entries(contract.operations)) {
    out.push({
      type: operationType(contract, name),
      data: await parts.schemas.add(
        `${contract.name}.${name}.Input`,
        definition.input,
        'input',
        `${contract.name} operation ${name} input`,
      ),
    });
  }
  for (const other of accepts) {
    for (const [name, definition] of Object.entries(other.events)) {
      out.push({
        type: eventType(other, name),
        data:
          definition.data === undefined
            ? undefined
            : await parts.schemas.add(`${other.name}.${name}.Event`, definition.data, 'input', `${other.name} event ${name} data`),
      });
    }
  }
  return out;
}

async function eventsOperation(
  parts: OpenApiParts,
  contract: AnyContract,
  accepts: readonly AnyContract[],
  auth: boolean,
  operationId: string,
): Promise<JsonObject> {
  const types = await acceptedTypes(parts, contract, accepts);
  const envelope = parts.schemas.define('CloudEvent', {
    type: 'object',
    description: 'A CloudEvents 1.0 event in the JSON event format. Extension attributes are top-level members.',
    properties: { ...cloudEventProperties(), data: {}, data_base64: { type: 'string', contentEncoding: 'base64' } },
    required: ['specversion', 'id', 'source', 'type'],
  });
  const structured =
    types.length === 0
      ? envelope
      : {
          oneOf: types.map(({ type, data }) => ({
            allOf: [envelope],
            properties: { type: { const: type }, ...(data === undefined ? {} : { data }) },
            ...(data === undefined ? { not: { required: ['data'] } } : {}),
          })),
        };
  const binaryData = types.flatMap(({ data }) => (data === undefined ? [] : [data]));
  const ce = (name: string, description: string, schema: JsonObject = { type: 'string' }): JsonObject => ({
    name: `ce-${name}`,
    in: 'header',
    description: `${description} Binary mode only (percent-encoded, CloudEvents HTTP binding).`,
    schema,
  });
  const responses = new ResponseSet(parts)
    .add(204, 'One event handled, or a duplicate of one already handled')
    .add(200, 'A batch: what became of each event', { [JSON_MEDIA_TYPE]: eventResultsSchema(parts.schemas) })
    .add(
      503,
      'One event to retry later',
      { [PROBLEM_MEDIA_TYPE]: problemSchema(parts.schemas) },
      {
        'Retry-After': header(parts, 'RetryAfter'),
      },
    )
    .add(400, 'Malformed, not a CloudEvent, an unknown type, or data failing its schema (dead-lettered)', {
      [PROBLEM_MEDIA_TYPE]: problemSchema(parts.schemas),
    })
    .problems(['SB_REQUEST_TIMEOUT', 'SB_BODY_TOO_LARGE', 'SB_UNSUPPORTED_MEDIA_TYPE', 'SB_INTERNAL']);
  if (auth) responses.problems(AUTH_ERRORS);
  responses.add('default', 'The event was dead-lettered: its problem, with its status', {
    [PROBLEM_MEDIA_TYPE]: problemSchema(parts.schemas),
  });
  const typeNames = types.map(({ type }) => type);
  return {
    operationId,
    tags: [contract.name],
    summary: 'Receives CloudEvents over HTTP (binary, structured or batched mode)',
    description:
      'The CloudEvents HTTP protocol binding 1.0. Each event runs through the consumer pipeline (inbox, retries, dead letters, receipts) as if it came from the broker.',
    parameters: [
      ce('specversion', 'CloudEvents `specversion`, `1.0`.', { type: 'string', const: '1.0' }),
      ce('id', 'CloudEvents `id`: the MessageId.'),
      ce('source', 'CloudEvents `source`.'),
      ce('type', 'CloudEvents `type`.', typeNames.length > 0 ? { type: 'string', enum: typeNames } : { type: 'string' }),
      ce('time', 'CloudEvents `time`.', { type: 'string', format: 'date-time' }),
      ce('subject', 'CloudEvents `subject`.'),
      parameter(parts, 'Traceparent'),
    ],
    requestBody: {
      required: true,
      content: {
        'application/cloudevents+json': { schema: structured },
        'application/cloudevents-batch+json': { schema: { type: 'array', items: structured } },
        [JSON_MEDIA_TYPE]: {
          schema: {
            description: 'Binary mode: the data as the body, the attributes in `ce-*` headers.',
            ...(binaryData.length === 0 ? {} : binaryData.length === 1 ? binaryData[0] : { anyOf: binaryData }),
          },
        },
      },
    },
    responses: responses.toObject(),
    'x-switchboard-cloudevents-types': typeNames,
  };
}

function healthOperation(contract: AnyContract, kind: 'liveness' | 'readiness', operationId: string): JsonObject {
  const body = (status: string) => ({
    [JSON_MEDIA_TYPE]: { schema: { type: 'object', properties: { status: { const: status } }, required: ['status'] } },
  });
  const responses: JsonObject =
    kind === 'liveness'
      ? { 200: { description: 'The process runs', content: body('ok') } }
      : {
          200: { description: 'The service accepts work', content: body('ready') },
          503: { description: 'The service is shutting down', content: body('draining') },
        };
  return {
    operationId,
    tags: [contract.name],
    summary: kind === 'liveness' ? 'Liveness probe' : 'Readiness probe',
    responses,
  };
}
