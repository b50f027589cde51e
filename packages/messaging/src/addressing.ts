import type { AnyContract } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/**
 * Where things go on the broker, and how the CloudEvents `type` names them.
 *
 * | what                             | topic                     | CloudEvents `type`             |
 * | -------------------------------- | ------------------------- | ------------------------------ |
 * | message `m` of contract `c`      | `<c>.messages`            | `<c>.<m>`                      |
 * | operation `op` of contract `c`   | `<c>.messages`            | `<c>.op.<op>`                  |
 * | event `e` of contract `c`        | `<c>.events`              | `<c>.<e>`                      |
 *
 * Messages and operations are addressed *to* the service that owns the contract; events are
 * emitted *by* it. `source` is always the sending service's name.
 */

/** Topic of the messages and operations addressed to the service of `contract`. */
export function messagesTopic(contract: AnyContract | string): string {
  return `${typeof contract === 'string' ? contract : contract.name}.messages`;
}

/** Topic of the events the service of `contract` emits. */
export function eventsTopic(contract: AnyContract | string): string {
  return `${typeof contract === 'string' ? contract : contract.name}.events`;
}

/** CloudEvents `type` of message `name` of `contract`. */
export function messageType(contract: AnyContract, name: string): string {
  return `${contract.name}.${name}`;
}

/** CloudEvents `type` of event `name` of `contract`. */
export function eventType(contract: AnyContract, name: string): string {
  return `${contract.name}.${name}`;
}

/** CloudEvents `type` of a message that invokes operation `name` of `contract`. */
export function operationType(contract: AnyContract, name: string): string {
  return `${contract.name}.op.${name}`;
}

export type EntryKind = 'message' | 'operation' | 'event';

/** One addressable entry of a contract. */
export interface Address {
  readonly kind: EntryKind;
  readonly contract: AnyContract;
  readonly name: string;
  readonly type: string;
  readonly topic: string;
}

/**
 * Every address of a contract. Throws `SB_CONFIG_INVALID` when two entries of one topic would
 * share a `type` (a message called `op.save` next to an operation `save`).
 */
export function addressesOf(contract: AnyContract): Address[] {
  const out: Address[] = [];
  const seen = new Map<string, string>();
  const add = (address: Address): void => {
    const key = `${address.topic}\u0000${address.type}`;
    const previous = seen.get(key);
    if (previous !== undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `${address.kind} ${address.name} and ${previous} of contract ${contract.name} share the type ${address.type}`,
      });
    }
    seen.set(key, `${address.kind} ${address.name}`);
    out.push(address);
  };
  const messages = messagesTopic(contract);
  for (const name of Object.keys(contract.messages)) {
    add({ kind: 'message', contract, name, type: messageType(contract, name), topic: messages });
  }
  for (const name of Object.keys(contract.operations)) {
    add({ kind: 'operation', contract, name, type: operationType(contract, name), topic: messages });
  }
  const events = eventsTopic(contract);
  for (const name of Object.keys(contract.events)) {
    add({ kind: 'event', contract, name, type: eventType(contract, name), topic: events });
  }
  return out;
}
