import type {
  AnyContract,
  BlobStore,
  BrokerRequests,
  CallInput,
  CallOutput,
  CloudEvent,
  CloudEventExtensions,
  OperationDefinition,
  OperationName,
  ProblemDetails,
  ReplyMessage,
  RequestDelivery,
  SignatureProblem,
  Subscription,
} from '@switchboard/core';
import {
  createCloudEvent,
  decodeCloudEvent,
  encodeCloudEvent,
  errorFromProblem,
  errorRegistry,
  isSwitchboardError,
  OperationError,
  SwitchboardError,
  signatureError,
  signEvent,
} from '@switchboard/core';
import { checkRequestTimeout, childTraceparent, validate } from '@switchboard/core/kit';
import type { Address } from './addressing.js';
import { operationType } from './addressing.js';
import { DeliveryContext } from './context.js';
import { decodeDelivery } from './decode.js';
import { runOperation } from './handler-step.js';
import { claimCheck } from './middleware/claim-check.js';
import { classify, OperationFailure } from './middleware/retry.js';
import { claimExtensions, encodeData, type OutgoingConfig, prepareOutgoing } from './outgoing.js';
import { type Inbound, InboundMessage, type Outcome, type Step } from './pipeline.js';
import { targetOf } from './publisher.js';
import type { Route, RouteTable } from './routes.js';
import type { PublishOptions } from './types.js';

/** What `messaging.request` takes besides the input: how long to wait, a signal, and what a publish takes. */
export interface RequestCallOptions extends PublishOptions {
  /** How long to wait for the reply, in ms. Default: the operation's `timeoutMs`, else 30 000. */
  readonly timeout?: number;
  /** Aborts the wait (`SB_ABORTED`); nothing is kept for the request. */
  readonly signal?: AbortSignal;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const PROBLEM_TYPE = 'application/problem+json';
const JSON_TYPE = 'application/json';
/** Room kept under the engine's size limit for the reply's headers and envelope. */
const ENVELOPE_ALLOWANCE = 16 * 1024;

/** CloudEvents `type` of the reply to a request for operation `name` of `contract`. */
export function replyType(contract: AnyContract, name: string): string {
  return `${operationType(contract, name)}.reply`;
}

function isProblemType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';')[0]!.trim().toLowerCase() === PROBLEM_TYPE;
}

/**
 * The requesting side of `messaging.request`: builds the request as `invoke` builds its message (the
 * same CloudEvent, the same topic, the same binding), hands it to the broker's request/reply and
 * reads the reply: the output checked against the contract, or the declared error rebuilt as an
 * `OperationError` (any other problem as a `SwitchboardError`).
 */
export class Requester {
  readonly #config: OutgoingConfig;
  readonly #requests: BrokerRequests;
  readonly #blobs: readonly BlobStore[];
  readonly #verify: ((event: CloudEvent) => SignatureProblem | undefined) | undefined;

  constructor(
    config: OutgoingConfig,
    requests: BrokerRequests,
    blobs: readonly BlobStore[],
    verify?: (event: CloudEvent) => SignatureProblem | undefined,
  ) {
    this.#config = config;
    this.#requests = requests;
    this.#blobs = blobs;
    this.#verify = verify;
  }

  async request<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    name: K,
    input: CallInput<C, K>,
    options: RequestCallOptions = {},
  ): Promise<CallOutput<C, K>> {
    const definition = Object.hasOwn(contract.operations, name) ? contract.operations[name] : undefined;
    if (definition === undefined) {
      throw new SwitchboardError('SB_UNKNOWN_OPERATION', { detail: `contract ${contract.name} has no operation ${String(name)}` });
    }
    const { timeout, signal, ...publish } = options;
    const timeoutMs = timeout ?? definition.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    checkRequestTimeout(timeoutMs);
    const target = targetOf('operation', contract, name);
    const built = prepareOutgoing(this.#config, target.address, target.shape, input, publish);
    const message = built instanceof Promise ? await built : built;
    const reply = await this.#requests.request(message, signal === undefined ? { timeoutMs } : { timeoutMs, signal });
    return (await this.#read(reply, contract, name, definition)) as CallOutput<C, K>;
  }

  async #read(reply: ReplyMessage, contract: AnyContract, name: string, definition: OperationDefinition): Promise<unknown> {
    let event: CloudEvent;
    try {
      event = decodeCloudEvent(reply.headers, reply.body, this.#config.binding);
    } catch (error) {
      throw new SwitchboardError('SB_BAD_GATEWAY', {
        detail: `the reply to ${name} of ${contract.name} is not a CloudEvent`,
        cause: error,
      });
    }
    // Signed messages: a reply is taken only as the consumer takes an event (signed by a key bound to its source).
    const forged = this.#verify?.(event);
    if (forged !== undefined) throw signatureError(forged);
    const data = event.extensions?.dataref === undefined ? event.data : await claimedData(event, this.#blobs);
    if (isProblemType(event.datacontenttype)) throw await errorOf(data, name, definition);
    const checked = validate(definition.output, data);
    const result = checked instanceof Promise ? await checked : checked;
    if (!result.ok) {
      throw new SwitchboardError('SB_BAD_GATEWAY', {
        detail: `Output of operation ${name} does not match its schema`,
        errors: result.errors,
      });
    }
    return result.value;
  }
}

/** A claim-checked reply's data, fetched from the blob store and verified against its hash. */
async function claimedData(event: CloudEvent, blobs: readonly BlobStore[]): Promise<unknown> {
  let data: unknown;
  const capture: Step = async (message) => {
    data = message.data;
    return ACK;
  };
  const inbound = { event, data: event.data } as unknown as Inbound;
  await claimCheck(blobs)(capture)(inbound);
  return data;
}

function isProblem(value: unknown): value is ProblemDetails {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'string';
}

/** The error a problem reply stands for: a declared one as `OperationError` (its data checked), else a `SwitchboardError`. */
async function errorOf(data: unknown, name: string, definition: OperationDefinition): Promise<Error> {
  if (!isProblem(data)) return new SwitchboardError('SB_BAD_GATEWAY', { detail: `the error reply to ${name} is not a problem document` });
  const declaration = Object.hasOwn(definition.errors, data.code) ? definition.errors[data.code] : undefined;
  if (declaration !== undefined) {
    let payload: unknown = data.data;
    if (declaration.data !== undefined) {
      const checked = await validate(declaration.data, payload);
      if (!checked.ok) {
        return new SwitchboardError('SB_BAD_GATEWAY', {
          detail: `Data of error ${data.code} of operation ${name} does not match its schema`,
          errors: checked.errors,
        });
      }
      payload = checked.value;
    }
    return new OperationError(data.code, {
      data: payload,
      status: declaration.status,
      ...(typeof data.detail === 'string' ? { detail: data.detail } : {}),
    });
  }
  const status = typeof data.status === 'number' ? data.status : 500;
  return errorFromProblem(data.code in errorRegistry ? { ...data, status } : { ...data, status, upstreamCode: data.code });
}

const ACK: Outcome = { kind: 'ack' };

export interface RequestServerConfig {
  readonly requests: BrokerRequests;
  readonly routes: RouteTable;
  readonly group: string;
  /** Route → claim check → validate → timeout → [middleware], around the operation run. */
  readonly middlewares: readonly ((next: Step) => Step)[];
  readonly handlerTimeoutMs: number;
  /** How replies are built: the service, the binding, the claim-check store and threshold. */
  readonly replies: OutgoingConfig;
  /** The engine's size limit: a reply over it (less room for the envelope) is claim-checked. */
  readonly maxMessageBytes: number;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  /** Signed messages: a request whose signature is missing or does not verify is answered with `SB_SIGNATURE_INVALID`, never run. */
  readonly verify?: (event: CloudEvent) => SignatureProblem | undefined;
}

/**
 * The serving side: one request subscription (`BrokerRequests.serve`) per topic of the served
 * operations, in the consumer group. Each request runs the operation through route → claim check →
 * validate → timeout → [middleware] → the same `Handlers` that serve HTTP, jobs and messages, once
 * (no inbox, no retries, no dead letter: the caller waits and decides), and is answered with the
 * output, or with the failure as a problem document (`application/problem+json`). A request found
 * past its deadline is dropped unanswered: nobody waits for it.
 */
export class RequestServer {
  readonly #config: RequestServerConfig;
  readonly #pipeline: Step;
  readonly #outputs = new WeakMap<Inbound, unknown>();
  readonly #subscriptions: Subscription[] = [];
  readonly #closing = new AbortController();
  /** How outputs are encoded: the replies config, its claim-check threshold within the engine's limit. */
  readonly #outputConfig: OutgoingConfig;
  readonly #replyAddresses = new WeakMap<Route, Address>();
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(config: RequestServerConfig) {
    this.#config = config;
    const limit = Math.max(1, config.maxMessageBytes - ENVELOPE_ALLOWANCE);
    this.#outputConfig = { ...config.replies, thresholdBytes: Math.min(limit, config.replies.thresholdBytes) };
    const final: Step = async (message) => {
      if (message.route?.kind !== 'operation') {
        throw new SwitchboardError('SB_UNKNOWN_OPERATION', { detail: `${message.event.type} is not an operation` });
      }
      const value = await runOperation(message, new DeliveryContext(message), config.handlerTimeoutMs);
      this.#outputs.set(message, value);
      return ACK;
    };
    let step = final;
    for (let i = config.middlewares.length - 1; i >= 0; i--) step = config.middlewares[i]!(step);
    this.#pipeline = step;
  }

  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const { requests, routes, group, maxInFlight, ackTimeoutMs } = this.#config;
    for (const topic of routes.operationTopics()) {
      this.#subscriptions.push(await requests.serve({ topic, group, maxInFlight, ackTimeoutMs }, this.#onRequest));
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.close()));
      this.#closing.abort();
    })();
    return this.#closed;
  }

  readonly #onRequest = async (request: RequestDelivery): Promise<void> => {
    if (request.deadline !== undefined && Date.now() > request.deadline) return;
    let event: CloudEvent | undefined;
    let answer: { readonly output: unknown } | { readonly problem: ProblemDetails };
    let route: Route | undefined;
    try {
      event = decodeDelivery(request, this.#config.replies.binding);
      const forged = this.#config.verify?.(event);
      if (forged !== undefined) throw signatureError(forged);
      const message = new InboundMessage(request, event, this.#config.group, 'broker', this.#closing.signal);
      await this.#pipeline(message);
      route = message.route;
      answer = { output: this.#outputs.get(message) };
    } catch (error) {
      answer = { problem: problemOf(error) };
    }
    if (request.deadline !== undefined && Date.now() > request.deadline) return;
    let reply: ReplyMessage;
    try {
      reply =
        route !== undefined && 'output' in answer
          ? await this.#encodeOutput(route, event!, answer.output)
          : await this.#encode(event, answer);
    } catch (error) {
      reply = await this.#encode(event, { problem: problemOf(error) });
    }
    // The requester may be gone (its reply queue closed): there is nobody left to tell.
    await request.reply(reply).catch(() => {});
  };

  /** An output reply, from its address's template (as a send is built). */
  async #encodeOutput(route: Route, request: CloudEvent, output: unknown): Promise<ReplyMessage> {
    let address = this.#replyAddresses.get(route);
    if (address === undefined) {
      address = { kind: 'operation', contract: route.contract, name: route.name, type: replyType(route.contract, route.name), topic: '' };
      this.#replyAddresses.set(route, address);
    }
    const traceparent = request.extensions?.traceparent;
    const built = encodeData(this.#outputConfig, address, output, typeof traceparent === 'string' ? { traceparent } : {});
    const message = built instanceof Promise ? await built : built;
    if (this.#outputConfig.blobs === undefined && message.body.byteLength > this.#config.maxMessageBytes - ENVELOPE_ALLOWANCE) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `the reply is ${message.body.byteLength} bytes, over what the broker takes, and no blob store is configured for a claim check`,
      });
    }
    return { headers: message.headers, body: message.body };
  }

  async #encode(
    request: CloudEvent | undefined,
    answer: { readonly output: unknown } | { readonly problem: ProblemDetails },
  ): Promise<ReplyMessage> {
    const config = this.#config.replies;
    const isProblemAnswer = 'problem' in answer;
    let json: string | undefined = JSON.stringify(isProblemAnswer ? answer.problem : answer.output);
    const traceparent = request?.extensions?.traceparent;
    const extensions: Record<string, string | number> = {
      traceparent: childTraceparent(typeof traceparent === 'string' ? traceparent : undefined),
    };
    const limit = Math.max(1, this.#config.maxMessageBytes - ENVELOPE_ALLOWANCE);
    if (json !== undefined && json.length > Math.min(limit, config.thresholdBytes) / 3) {
      const bytes = Buffer.byteLength(json);
      if (config.blobs !== undefined && bytes > Math.min(limit, config.thresholdBytes)) {
        const expiresAt = config.expiresInMs === undefined ? undefined : Date.now() + config.expiresInMs;
        const info = await config.blobs.put(Buffer.from(json, 'utf8'), {
          mediaType: isProblemAnswer ? PROBLEM_TYPE : JSON_TYPE,
          ...(expiresAt === undefined ? {} : { expiresAt }),
        });
        Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, expiresAt));
        json = undefined;
      } else if (bytes > limit) {
        throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
          detail: `the reply is ${bytes} bytes, over what the broker takes, and no blob store is configured for a claim check`,
        });
      }
    }
    const contentType = isProblemAnswer ? PROBLEM_TYPE : JSON_TYPE;
    const unsigned = createCloudEvent({
      type: request === undefined ? 'switchboard.reply' : `${request.type}.reply`,
      source: config.service,
      datacontenttype: contentType,
      ...(json === undefined ? {} : { data: config.binding.mode === 'structured' ? JSON.parse(json) : Buffer.from(json, 'utf8') }),
      extensions: extensions as CloudEventExtensions,
    });
    const event = config.signer === undefined ? unsigned : signEvent(unsigned, config.signer);
    const encoded = encodeCloudEvent(event, config.binding);
    return { headers: encoded.headers, body: encoded.body };
  }
}

/** A failure as the problem document of a reply. */
function problemOf(error: unknown): ProblemDetails {
  if (error instanceof OperationFailure) return error.problem;
  if (isSwitchboardError(error, 'SB_UNKNOWN_TYPE')) {
    return new SwitchboardError('SB_UNKNOWN_OPERATION', { ...(error.detail === undefined ? {} : { detail: error.detail }) }).toProblem();
  }
  return classify(error).problem;
}
