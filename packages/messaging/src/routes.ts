import type { CompiledFilter } from '@switchboard/cesql';
import type { AnyContract, CloudEvent, HandlerContext, Handlers, StandardSchemaV1 } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { type Address, addressesOf, type EntryKind, eventsTopic, eventType } from './addressing.js';
import type { MessageContext } from './types.js';

/** How a route runs its handler: returns a short result summary for the receipt, or undefined. */
export type RouteInvoker = (data: unknown, context: MessageContext, operationContext: () => HandlerContext) => Promise<unknown>;

/** A registered handler for one CloudEvents `type` on one topic. */
export interface Route {
  readonly kind: EntryKind;
  readonly contract: AnyContract;
  readonly name: string;
  readonly type: string;
  readonly topic: string;
  /** Schema the data must pass (undefined: payload-free event). */
  readonly schema: StandardSchemaV1 | undefined;
  /** Handler time limit from the contract (operations' `timeoutMs`). */
  readonly timeoutMs?: number;
  readonly invoke: RouteInvoker;
  /** A CloudEvents SQL filter: events it does not match are acknowledged without running the handler. */
  readonly filter?: CompiledFilter;
}

interface Wildcard {
  readonly contract: AnyContract;
  readonly topic: string;
  /** Type prefix, e.g. `service-a.picture.` (or `service-a.` for `*`). */
  readonly prefix: string;
  readonly invoke: RouteInvoker;
  readonly filter?: CompiledFilter;
}

type AnyHandler = (data: unknown, context: never) => unknown;

/**
 * The consumer's routing table: `type` → handler, per topic. An exact registration wins over a
 * wildcard; among wildcards the longest prefix wins. A type that the contract does not declare
 * is never routed (it is dead-lettered as `unknown-type`).
 */
export class RouteTable {
  readonly #exact = new Map<string, Route>();
  readonly #wildcards: Wildcard[] = [];
  readonly #addresses = new Map<string, Address>();
  readonly #topics = new Set<string>();
  readonly #operationTopics = new Set<string>();
  readonly #byTopic = new Map<string, Map<string, Route>>();
  #frozen = false;

  freeze(): void {
    this.#frozen = true;
  }

  topics(): string[] {
    return [...this.#topics];
  }

  /** Topics with at least one operation handler: where requests (`messaging.request`) are served. */
  operationTopics(): string[] {
    return [...this.#operationTopics];
  }

  message(contract: AnyContract, name: string, handler: AnyHandler): void {
    const address = this.#address(contract, 'message', name);
    const schema = contract.messages[name]?.schema;
    this.#add({ ...address, schema, invoke: async (data, context) => handler(data, context as never) });
  }

  operations(contract: AnyContract, handlers: Handlers<AnyContract>): void {
    for (const name of Object.keys(contract.operations)) {
      const definition = contract.operations[name]!;
      const handler = handlers[name];
      if (typeof handler !== 'function') throw config(`no handler for operation ${name} of ${contract.name}`);
      const address = this.#address(contract, 'operation', name);
      this.#add({
        ...address,
        schema: definition.input,
        ...(definition.timeoutMs === undefined ? {} : { timeoutMs: definition.timeoutMs }),
        invoke: async (data, _context, operationContext) => handler(data as never, operationContext()),
      });
    }
  }

  event(contract: AnyContract, pattern: string, handler: AnyHandler, filter?: CompiledFilter): void {
    this.#assertOpen();
    this.#index(contract);
    const invoke: RouteInvoker = async (data, context) => handler(data, context as never);
    const filtered = filter === undefined ? {} : { filter };
    if (pattern === '*' || pattern.endsWith('.*')) {
      const prefix = pattern === '*' ? `${contract.name}.` : eventType(contract, pattern.slice(0, -1));
      const topic = eventsTopic(contract);
      if (this.#wildcards.some((w) => w.topic === topic && w.prefix === prefix))
        throw config(`${pattern} of ${contract.name} is already handled`);
      this.#wildcards.push({ contract, topic, prefix, invoke, ...filtered });
      this.#wildcards.sort((a, b) => b.prefix.length - a.prefix.length);
      this.#topics.add(topic);
      return;
    }
    const address = this.#address(contract, 'event', pattern);
    this.#add({ ...address, schema: contract.events[pattern]?.data, invoke, ...filtered });
  }

  /**
   * Whether the handler an event would reach takes it: false only when its route has a filter the
   * event does not match (a type without a route is admitted: the pipeline dead-letters it).
   */
  admits(topic: string, event: CloudEvent): boolean {
    const route = this.match(topic, event.type);
    return route?.filter === undefined || route.filter.matches(event);
  }

  /**
   * The CloudEvents SQL expression of everything a topic's handlers take, for engines that can filter
   * on the server (`SubscribeOptions.filter`); undefined when no handler of the topic has a filter
   * (then the server need not filter at all).
   */
  filterOf(topic: string): string | undefined {
    const exact = [...this.#exact.values()].filter((r) => r.topic === topic && r.kind === 'event');
    const wildcards = this.#wildcards.filter((w) => w.topic === topic);
    if (![...exact, ...wildcards].some((r) => r.filter !== undefined)) return undefined;
    if ([...this.#exact.values()].some((r) => r.topic === topic && r.kind !== 'event')) return undefined;
    // An exact registration wins over a wildcard, a longer wildcard over a shorter one: each term
    // leaves out the types a more specific route takes, so the expression is exactly the routing.
    const terms = [
      ...exact.map((r) => and(`type = ${quote(r.type)}`, r.filter)),
      ...wildcards.map((w) => {
        const exceptExact = exact.filter((r) => r.type.startsWith(w.prefix)).map((r) => quote(r.type));
        const exceptLonger = wildcards.filter((o) => o.prefix.length > w.prefix.length && o.prefix.startsWith(w.prefix));
        let test = `type LIKE ${quote(`${escapeLike(w.prefix)}%`)}`;
        if (exceptExact.length > 0) test += ` AND NOT (type IN (${exceptExact.join(', ')}))`;
        for (const longer of exceptLonger) test += ` AND NOT (type LIKE ${quote(`${escapeLike(longer.prefix)}%`)})`;
        return and(test, w.filter);
      }),
    ];
    return terms.length === 1 ? terms[0] : terms.map((t) => `(${t})`).join(' OR ');
  }

  /** The route for a `type` arriving on `topic`, or undefined. */
  match(topic: string, type: string): Route | undefined {
    const known = this.#byTopic.get(topic)?.get(type);
    if (known !== undefined) return known;
    const key = `${topic}\u0000${type}`;
    const exact = this.#exact.get(key);
    if (exact !== undefined) {
      this.#remember(topic, type, exact);
      return exact;
    }
    const address = this.#addresses.get(key);
    if (address === undefined || address.kind !== 'event') return undefined;
    for (const wildcard of this.#wildcards) {
      if (wildcard.topic === topic && type.startsWith(wildcard.prefix)) {
        const route: Route = {
          ...address,
          schema: address.contract.events[address.name]?.data,
          invoke: wildcard.invoke,
          ...(wildcard.filter === undefined ? {} : { filter: wildcard.filter }),
        };
        this.#exact.set(key, route);
        this.#remember(topic, type, route);
        return route;
      }
    }
    return undefined;
  }

  /** Routes found, by topic then type: a match costs two map lookups and no string building. */
  #remember(topic: string, type: string, route: Route): void {
    if (!this.#frozen) return;
    let byType = this.#byTopic.get(topic);
    if (byType === undefined) {
      byType = new Map();
      this.#byTopic.set(topic, byType);
    }
    byType.set(type, route);
  }

  /** The topic a `type` travels on among the registered contracts (for events received over HTTP). */
  topicOf(type: string): string | undefined {
    for (const address of this.#addresses.values()) if (address.type === type) return address.topic;
    return undefined;
  }

  #index(contract: AnyContract): void {
    for (const address of addressesOf(contract)) {
      const key = `${address.topic}\u0000${address.type}`;
      const known = this.#addresses.get(key);
      if (known !== undefined && known.contract !== contract && known.contract.name === contract.name && known.kind !== address.kind) {
        throw config(`type ${address.type} is declared twice`);
      }
      this.#addresses.set(key, address);
    }
  }

  #address(contract: AnyContract, kind: EntryKind, name: string): Address {
    this.#assertOpen();
    this.#index(contract);
    const address = addressesOf(contract).find((a) => a.kind === kind && a.name === name);
    if (address === undefined) throw config(`contract ${contract.name} has no ${kind} ${name}`);
    return address;
  }

  #add(route: Route): void {
    const key = `${route.topic}\u0000${route.type}`;
    if (this.#exact.has(key)) throw config(`${route.kind} ${route.name} of ${route.contract.name} is already handled`);
    this.#exact.set(key, route);
    this.#topics.add(route.topic);
    if (route.kind === 'operation') this.#operationTopics.add(route.topic);
  }

  #assertOpen(): void {
    if (this.#frozen) throw config('handlers must be registered before start()');
  }
}

function and(typeTest: string, filter: CompiledFilter | undefined): string {
  return filter === undefined ? typeTest : `${typeTest} AND (${filter.expression})`;
}

/** A CESQL string literal. */
function quote(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** `value` as a LIKE pattern matching itself (CESQL escapes `%`, `_` and `\\` with a backslash). */
function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function config(detail: string): SwitchboardError {
  return new SwitchboardError('SB_CONFIG_INVALID', { detail });
}
