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
import { channels, SwitchboardError } from '@switchboard/core';
import { type Address, eventsTopic, eventType, messagesTopic, messageType, operationType } from './addressing.js';
import { buildOutgoing, describeOutgoing, type OutgoingConfig, type OutgoingShape, prepareOutgoing } from './outgoing.js';
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

/**
 * The publishing side. Every method validates against the contract, builds a CloudEvents 1.0
 * event and resolves only once the broker confirmed it (publisher confirm, PubAck, commit).
 */
export class Publisher {
  readonly #broker: Broker;
  readonly #config: OutgoingConfig;
  readonly #declareReceiverGroups: boolean;
  readonly #declared = new Map<string, Promise<void>>();

  constructor(broker: Broker, config: OutgoingConfig, declareReceiverGroups: boolean) {
    this.#broker = broker;
    this.#config = config;
    this.#declareReceiverGroups = declareReceiverGroups;
  }

  /** Sends message `name` of `contract` to the service that owns the contract. */
  async send<C extends AnyContract, K extends MessageName<C>>(
    contract: C,
    name: K,
    data: MessageInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent> {
    const message = await this.#message(contract, name, data, options);
    await this.#publish([message], contract);
    return { messageId: message.id };
  }

  /**
   * Invokes operation `name` of `contract` through the broker. The receiving service runs the
   * same `Handlers<C>` it serves over HTTP; the result or error lands in its receipt.
   */
  async invoke<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    name: K,
    input: CallInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent> {
    const definition = contract.operations[name];
    if (definition === undefined) throw unknownEntry('operation', contract, name);
    const address: Address = {
      kind: 'operation',
      contract,
      name,
      type: operationType(contract, name),
      topic: messagesTopic(contract),
    };
    const message = await buildOutgoing(this.#config, address, { schema: definition.input, attachments: true }, input, options);
    await this.#publish([message], contract);
    return { messageId: message.id };
  }

  /** Emits event `name` of `contract` (this service's own contract): payload-free, or with its declared data and attachment. */
  emit<C extends AnyContract, K extends EventName<C>>(contract: C, name: K, ...args: EmitArgs<C, K>): Promise<Sent> {
    const [data, options] = args as [unknown, PublishOptions | undefined];
    const target = eventTarget(contract, name);
    if (target === undefined) return Promise.reject(unknownEntry('event', contract, name));
    // Built in this call when it can be (a plain send, synchronous validation): no promise until the broker's.
    let message: OutgoingMessage | Promise<OutgoingMessage>;
    try {
      message = prepareOutgoing(this.#config, target.address, target.shape, data, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return message instanceof Promise ? message.then(this.#publishEvent) : this.#publishEvent(message);
  }

  readonly #publishEvent = (message: OutgoingMessage): Promise<Sent> => {
    const sent: Sent = { messageId: message.id };
    let published: Promise<void>;
    try {
      published = this.#broker.publish(message);
    } catch (error) {
      return Promise.reject(error);
    }
    if (channels.publish.hasSubscribers) {
      return published.then(() => {
        this.#report([message]);
        return sent;
      });
    }
    // Only the id outlives the publish: the body can go as soon as the broker let go of it.
    return published.then(() => sent);
  };

  /** Sends many messages to one contract's service, published pipelined (one broker batch). */
  async sendBatch<C extends AnyContract>(contract: C, messages: readonly BatchMessage<C>[]): Promise<Sent[]> {
    const built = await Promise.all(messages.map((m) => this.#message(contract, m.name, m.data, m.options)));
    await this.#publish(built, contract);
    return built.map((m) => ({ messageId: m.id }));
  }

  /** Emits many events of one contract, published pipelined (one broker batch). */
  async emitBatch<C extends AnyContract>(contract: C, events: readonly BatchEvent<C>[]): Promise<Sent[]> {
    const built = await Promise.all(events.map((e) => this.#event(contract, e.name, e.data, e.options)));
    await this.#publish(built);
    return built.map((m) => ({ messageId: m.id }));
  }

  #message(contract: AnyContract, name: string, data: unknown, options: PublishOptions | undefined): Promise<OutgoingMessage> {
    const target = messageTarget(contract, name);
    if (target === undefined) return Promise.reject(unknownEntry('message', contract, name));
    return buildOutgoing(this.#config, target.address, target.shape, data, options);
  }

  #event(contract: AnyContract, name: string, data: unknown, options: PublishOptions | undefined): Promise<OutgoingMessage> {
    const target = eventTarget(contract, name);
    if (target === undefined) return Promise.reject(unknownEntry('event', contract, name));
    return buildOutgoing(this.#config, target.address, target.shape, data, options);
  }

  async #publish(messages: readonly OutgoingMessage[], receiver?: AnyContract): Promise<void> {
    if (receiver !== undefined && this.#declareReceiverGroups) await this.#declare(receiver);
    if (messages.length === 1) await this.#broker.publish(messages[0]!);
    else if (messages.length > 1) await this.#broker.publishBatch(messages);
    if (channels.publish.hasSubscribers) this.#report(messages);
  }

  /** Tells the `publish` diagnostics channel about published messages. */
  #report(messages: readonly OutgoingMessage[]): void {
    for (const m of messages) {
      const { type, traceparent } = describeOutgoing(m, this.#config.binding);
      channels.publish.publish({ messageId: m.id, topic: m.topic, type, traceparent });
    }
  }

  /**
   * Declares the receiving service's default group (its contract name) on first use, so messages
   * sent before the receiver first subscribed are kept for it.
   */
  #declare(contract: AnyContract): Promise<void> {
    const topic = messagesTopic(contract);
    let declared = this.#declared.get(topic);
    if (declared === undefined) {
      declared = this.#broker.declareGroup(topic, contract.name);
      declared.catch(() => this.#declared.delete(topic));
      this.#declared.set(topic, declared);
    }
    return declared;
  }
}

/** The address and shape of one contract entry, computed once per contract and name. */
interface Target {
  readonly address: Address;
  readonly shape: OutgoingShape;
}

const eventTargets = new WeakMap<AnyContract, Map<string, Target>>();
const messageTargets = new WeakMap<AnyContract, Map<string, Target>>();

function targetsOf(cache: WeakMap<AnyContract, Map<string, Target>>, contract: AnyContract): Map<string, Target> {
  let targets = cache.get(contract);
  if (targets === undefined) {
    targets = new Map();
    cache.set(contract, targets);
  }
  return targets;
}

function eventTarget(contract: AnyContract, name: string): Target | undefined {
  const targets = targetsOf(eventTargets, contract);
  let target = targets.get(name);
  if (target === undefined) {
    if (!Object.hasOwn(contract.events, name)) return undefined;
    const definition = contract.events[name];
    if (definition === undefined) return undefined;
    target = {
      address: { kind: 'event', contract, name, type: eventType(contract, name), topic: eventsTopic(contract) },
      shape: { schema: definition.data, attachments: definition.attachment },
    };
    targets.set(name, target);
  }
  return target;
}

function messageTarget(contract: AnyContract, name: string): Target | undefined {
  const targets = targetsOf(messageTargets, contract);
  let target = targets.get(name);
  if (target === undefined) {
    if (!Object.hasOwn(contract.messages, name)) return undefined;
    const definition = contract.messages[name];
    if (definition === undefined) return undefined;
    target = {
      address: { kind: 'message', contract, name, type: messageType(contract, name), topic: messagesTopic(contract) },
      shape: { schema: definition.schema, attachments: true },
    };
    targets.set(name, target);
  }
  return target;
}

function unknownEntry(kind: string, contract: AnyContract, name: string): SwitchboardError {
  return new SwitchboardError('SB_UNKNOWN_TYPE', { detail: `contract ${contract.name} has no ${kind} ${name}` });
}
