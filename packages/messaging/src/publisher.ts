import type {
  AnyContract,
  Broker,
  CallInput,
  EventName,
  MessageInput,
  MessageName,
  OperationName,
  OutgoingMessage,
} from '@switchboard/core';
import { type SendMessage, SwitchboardError, traceAll, traceAsync, tracing } from '@switchboard/core';
import { type Address, eventsTopic, eventType, messagesTopic, messageType, operationType } from './addressing.js';
import { describeOutgoing, type OutgoingConfig, type OutgoingShape, prepareOutgoing } from './outgoing.js';
import type { EmitArgs, PublishOptions, Sent } from './types.js';

/** One item of `sendBatch`. */
export interface BatchMessage<C extends AnyContract, K extends MessageName<C> = MessageName<C>> {
  readonly name: K;
  readonly data: MessageInput<C, K>;
  readonly options?: PublishOptions;
}

/** One item of `emitBatch`. */
export interface BatchEvent<C extends AnyContract, K extends EventName<C> = EventName<C>> {
  readonly name: K;
  readonly data?: unknown;
  readonly options?: PublishOptions;
}

/** A broker and how messages are built for it. */
export interface Lane {
  readonly broker: Broker;
  readonly config: OutgoingConfig;
  /**
   * Declare the receiver's default group before the first send to it, so nothing sent before it
   * first subscribes is lost (at-least-once brokers only: an at-most-once one keeps nothing).
   */
  readonly declareReceivers: boolean;
}

/** Where one contract entry goes and what it accepts, computed once per contract and name. */
export interface Target {
  readonly address: Address;
  readonly shape: OutgoingShape;
  /** Events declared `delivery: 'at-most-once'` travel the fast lane when there is one. */
  readonly atMostOnce: boolean;
  /** For messages and operations: the receiver's default group (its contract name), declared before the first send. */
  readonly receiverGroup: string | undefined;
}

type Kind = Address['kind'];

/**
 * The publishing side: one path for `send`, `invoke` and `emit` (and their batches). A target is
 * looked up (validated against the contract once), the message is built by `prepareOutgoing`
 * (schema, claim check, CloudEvents through the broker's binding), the receiver's group is declared
 * where the lane says so, and the broker's confirm is awaited (publisher confirm, PubAck, commit).
 */
export class Publisher {
  readonly #reliable: Lane;
  readonly #fast: Lane | undefined;
  readonly #declared = new Map<string, Promise<void>>();

  constructor(reliable: Lane, fast: Lane | undefined) {
    this.#reliable = reliable;
    this.#fast = fast;
  }

  send<C extends AnyContract, K extends MessageName<C>>(
    contract: C,
    name: K,
    data: MessageInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent> {
    return this.#one('message', contract, name, data, options);
  }

  /**
   * Invokes operation `name` of `contract` through the broker. The receiving service runs the
   * same `Handlers<C>` it serves over HTTP; the result or error lands in its receipt.
   */
  invoke<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    name: K,
    input: CallInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent> {
    return this.#one('operation', contract, name, input, options);
  }

  /** Emits event `name` of `contract` (this service's own contract): payload-free, or with its declared data and attachment. */
  emit<C extends AnyContract, K extends EventName<C>>(contract: C, name: K, ...args: EmitArgs<C, K>): Promise<Sent> {
    const [data, options] = args as [unknown, PublishOptions | undefined];
    return this.#one('event', contract, name, data, options);
  }

  sendBatch<C extends AnyContract>(contract: C, messages: readonly BatchMessage<C>[]): Promise<Sent[]> {
    return this.#batch('message', contract, messages);
  }

  emitBatch<C extends AnyContract>(contract: C, events: readonly BatchEvent<C>[]): Promise<Sent[]> {
    return this.#batch('event', contract, events);
  }

  /** The message `send`/`invoke`/`emit` would publish, built but not published (the outbox enqueues it). */
  build(
    kind: Kind,
    contract: AnyContract,
    name: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<{ message: OutgoingMessage; receiverGroup: string | undefined }> {
    try {
      const target = targetOf(kind, contract, name);
      const lane = this.#reliable;
      const built = prepareOutgoing(lane.config, target.address, target.shape, data, options);
      const wrap = (message: OutgoingMessage) => ({ message, receiverGroup: target.receiverGroup });
      return built instanceof Promise ? built.then(wrap) : Promise.resolve(wrap(built));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #lane(target: Target): Lane {
    return target.atMostOnce && this.#fast !== undefined ? this.#fast : this.#reliable;
  }

  /** One message: built in this call when it can be (a plain send, synchronous validation), so no promise waits but the broker's. */
  #one(kind: Kind, contract: AnyContract, name: string, data: unknown, options: PublishOptions | undefined): Promise<Sent> {
    let target: Target;
    let built: OutgoingMessage | Promise<OutgoingMessage>;
    let lane: Lane;
    try {
      target = targetOf(kind, contract, name);
      lane = this.#lane(target);
      built = prepareOutgoing(lane.config, target.address, target.shape, data, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const declared = this.#declare(lane, target);
    if (built instanceof Promise || declared !== undefined) {
      return Promise.all([built, declared]).then(([message]) => this.#publish(lane, message));
    }
    return this.#publish(lane, built);
  }

  #publish(lane: Lane, message: OutgoingMessage): Promise<Sent> {
    if (tracing.send.hasSubscribers)
      return traceAsync(tracing.send, sendContext(lane.broker, message, 1), () => this.#publishNow(lane, message));
    return this.#publishNow(lane, message);
  }

  #publishNow(lane: Lane, message: OutgoingMessage): Promise<Sent> {
    let published: Promise<void>;
    try {
      published = lane.broker.publish(message);
    } catch (error) {
      return Promise.reject(error);
    }
    // Only the id outlives the publish: the body can go as soon as the broker let go of it.
    const sent: Sent = { messageId: message.id };
    return published.then(() => sent);
  }

  async #batch(
    kind: Kind,
    contract: AnyContract,
    items: readonly { readonly name: string; readonly data?: unknown; readonly options?: PublishOptions | undefined }[],
  ): Promise<Sent[]> {
    const targets = items.map((item) => targetOf(kind, contract, item.name));
    const lanes = targets.map((target) => this.#lane(target));
    const messages = await Promise.all(
      items.map((item, i) => prepareOutgoing(lanes[i]!.config, targets[i]!.address, targets[i]!.shape, item.data, item.options)),
    );
    await Promise.all(targets.map((target, i) => this.#declare(lanes[i]!, target)));
    // One broker batch per lane, in input order within each.
    const byLane = new Map<Lane, OutgoingMessage[]>();
    messages.forEach((message, i) => {
      const lane = lanes[i]!;
      const list = byLane.get(lane);
      if (list === undefined) byLane.set(lane, [message]);
      else list.push(message);
    });
    await Promise.all([...byLane].map(([lane, list]) => publishList(lane.broker, list)));
    return messages.map((message) => ({ messageId: message.id }));
  }

  /** Declares the receiver's default group on first use; undefined once declared (or when nothing is to declare). */
  #declare(lane: Lane, target: Target): Promise<void> | undefined {
    if (!lane.declareReceivers || target.receiverGroup === undefined) return undefined;
    const key = `${target.address.topic}\u0000${target.receiverGroup}`;
    let declared = this.#declared.get(key);
    if (declared === undefined) {
      const pending = lane.broker.declareGroup(target.address.topic, target.receiverGroup);
      declared = pending.then(() => {
        // From now on, sends to this receiver need no promise of their own.
        this.#declared.set(key, DONE);
      });
      declared.catch(() => this.#declared.delete(key));
      this.#declared.set(key, declared);
      return declared;
    }
    return declared === DONE ? undefined : declared;
  }
}

const DONE: Promise<void> = Promise.resolve();

/** One broker batch (or a single publish); each message traced on `switchboard:send` when someone listens. */
function publishList(broker: Broker, list: readonly OutgoingMessage[]): Promise<void> {
  if (list.length === 1) {
    const message = list[0]!;
    return tracing.send.hasSubscribers
      ? traceAsync(tracing.send, sendContext(broker, message, 1), () => broker.publish(message))
      : broker.publish(message);
  }
  if (!tracing.send.hasSubscribers) return broker.publishBatch(list);
  const contexts = list.map((message) => sendContext(broker, message, list.length));
  // One context per message, all ended by the batch's confirmation.
  return traceAll(tracing.send, contexts, broker.publishBatch(list));
}

/** The `switchboard:send` context of a message. */
export function sendContext(broker: Broker, message: OutgoingMessage, batchSize: number): SendMessage {
  const described = describeOutgoing(message);
  return {
    system: broker.name,
    destination: message.topic,
    kind: described.kind === 'event' ? 'emit' : described.kind === 'operation' ? 'invoke' : 'send',
    messageId: message.id,
    source: described.source,
    type: described.type,
    traceparent: described.traceparent,
    parentTraceparent: described.parentTraceparent,
    idempotencyKey: undefined,
    batchSize,
    bodySize: message.body.byteLength,
  };
}

const targets = new WeakMap<AnyContract, Map<string, Target>>();

/** The target of entry `name` of kind `kind`; `SB_UNKNOWN_TYPE` when the contract has no such entry. */
export function targetOf(kind: Kind, contract: AnyContract, name: string): Target {
  let byName = targets.get(contract);
  if (byName === undefined) {
    byName = new Map();
    targets.set(contract, byName);
  }
  const key = `${kind}\u0000${name}`;
  let target = byName.get(key);
  if (target === undefined) {
    target = makeTarget(kind, contract, name);
    byName.set(key, target);
  }
  return target;
}

function makeTarget(kind: Kind, contract: AnyContract, name: string): Target {
  switch (kind) {
    case 'event': {
      const definition = Object.hasOwn(contract.events, name) ? contract.events[name] : undefined;
      if (definition === undefined) throw unknownEntry(kind, contract, name);
      return {
        address: { kind, contract, name, type: eventType(contract, name), topic: eventsTopic(contract) },
        shape: { schema: definition.data, attachments: definition.attachment },
        atMostOnce: definition.delivery === 'at-most-once',
        receiverGroup: undefined,
      };
    }
    case 'message': {
      const definition = Object.hasOwn(contract.messages, name) ? contract.messages[name] : undefined;
      if (definition === undefined) throw unknownEntry(kind, contract, name);
      return {
        address: { kind, contract, name, type: messageType(contract, name), topic: messagesTopic(contract) },
        shape: { schema: definition.schema, attachments: true },
        atMostOnce: false,
        receiverGroup: contract.name,
      };
    }
    case 'operation': {
      const definition = Object.hasOwn(contract.operations, name) ? contract.operations[name] : undefined;
      if (definition === undefined) throw unknownEntry(kind, contract, name);
      return {
        address: { kind, contract, name, type: operationType(contract, name), topic: messagesTopic(contract) },
        shape: { schema: definition.input, attachments: true },
        atMostOnce: false,
        receiverGroup: contract.name,
      };
    }
  }
}

function unknownEntry(kind: string, contract: AnyContract, name: string): SwitchboardError {
  return new SwitchboardError('SB_UNKNOWN_TYPE', { detail: `contract ${contract.name} has no ${kind} ${name}` });
}
