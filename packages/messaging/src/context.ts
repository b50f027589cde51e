import type { Readable } from 'node:stream';
import type { CloudEvent, Delivery, HandlerContext, Invocation, Progress, TraceCarrier, TraceContext } from '@switchboard/core';
import { continueTrace, parseTraceparent, SwitchboardError } from '@switchboard/core';
import type { Inbound, InboundVia } from './pipeline.js';
import type { AttachmentInfo, MessageContext } from './types.js';

/**
 * A delivery's own span (W3C Trace Context): a child of the hop's transport `traceparent` header
 * when the delivery has a valid one (a foreign producer's instrumentation), else of the event's
 * `traceparent` extension, the creation context; invalid or missing, a new trace. The hop is a
 * broker delivery's own headers, or the trace headers of the HTTP request that carried the event
 * (POST /events; its delivery headers would be the event encoded again).
 */
export function deliveryTrace(delivery: Delivery, event: CloudEvent, via: InboundVia): TraceContext {
  const parent = deliveryParent(delivery, event, via);
  return continueTrace(parent.traceparent, parent.tracestate);
}

/** What a delivery's own span continues: the hop's trace headers when its `traceparent` is valid, else the event's creation context. */
export function deliveryParent(delivery: Delivery, event: CloudEvent, via: InboundVia): TraceCarrier {
  const hop: TraceCarrier | undefined = via === 'broker' ? delivery.headers : (delivery as { hop?: TraceCarrier }).hop;
  if (hop?.traceparent !== undefined && parseTraceparent(hop.traceparent) !== undefined) return hop;
  const extensions = event.extensions;
  const traceparent = extensions?.traceparent;
  const tracestate = extensions?.tracestate;
  return {
    traceparent: typeof traceparent === 'string' ? traceparent : undefined,
    tracestate: typeof tracestate === 'string' ? tracestate : undefined,
  };
}

/** The `MessageContext` of one run. A class, so every delivery shares one shape. */
export class DeliveryContext implements MessageContext {
  readonly messageId: string;
  readonly attempt: number;
  readonly type: string;
  readonly source: string;
  readonly subject: string | undefined;
  readonly time: string | undefined;
  readonly topic: string;
  readonly group: string;
  readonly key: string | undefined;
  readonly event: CloudEvent;
  readonly attachmentInfo: AttachmentInfo | undefined;
  readonly #inbound: Inbound;

  constructor(inbound: Inbound) {
    const event = inbound.event!;
    this.#inbound = inbound;
    this.messageId = event.id;
    this.attempt = inbound.attempt;
    this.type = event.type;
    this.source = event.source;
    this.subject = event.subject;
    this.time = event.time;
    this.topic = inbound.delivery.topic;
    this.group = inbound.group;
    this.key = inbound.delivery.key;
    this.event = event;
    this.attachmentInfo = inbound.attachment?.info;
  }

  /**
   * The handler's own span (W3C Trace Context): a child of the hop's transport `traceparent` header
   * when the delivery has a valid one (a foreign producer's instrumentation), else of the event's
   * `traceparent` extension, the creation context. Invalid or missing: a new trace. The
   * `tracestate` travels with the parent it came with, normalized. Computed on first read.
   */
  get traceparent(): string {
    return this.#traced().traceparent;
  }

  get tracestate(): string | undefined {
    return this.#traced().tracestate;
  }

  #trace: TraceContext | undefined;

  #traced(): TraceContext {
    if (this.#trace === undefined) {
      const inbound = this.#inbound;
      this.#trace = inbound.trace ?? deliveryTrace(inbound.delivery, this.event, inbound.via);
    }
    return this.#trace;
  }

  /** The run's signal, read lazily: its `AbortController` is only made for handlers that use it. */
  get signal(): AbortSignal {
    return this.#inbound.signal;
  }

  attachment(): Readable {
    const attachment = this.#inbound.attachment;
    if (attachment === undefined)
      throw new SwitchboardError('SB_CLAIM_CHECK_MISSING', { detail: `message ${this.messageId} has no attachment` });
    return attachment.open();
  }

  /** The `HandlerContext` an operation handler gets when reached through the broker. */
  operationContext(operation: string, timeoutMs: number | undefined): HandlerContext {
    return new MessageHandlerContext(this, operation, timeoutMs);
  }
}

class MessageHandlerContext implements HandlerContext {
  readonly operation: string;
  readonly via: Invocation = 'message';
  readonly deadline: number | undefined;
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  readonly messageId: string;
  readonly #context: DeliveryContext;

  constructor(context: DeliveryContext, operation: string, timeoutMs: number | undefined) {
    this.#context = context;
    this.operation = operation;
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.traceparent = context.traceparent;
    this.tracestate = context.tracestate;
    this.messageId = context.messageId;
  }

  get signal(): AbortSignal {
    return this.#context.signal;
  }

  progress(_progress: Progress): void {}
}
