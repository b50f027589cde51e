import type { AnyContract, Broker, CloudEventsMode } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { Middleware } from './pipeline.js';

/** The transport for events declared `delivery: 'at-most-once'` (`createMessaging({ atMostOnce })`). */
export interface AtMostOnceOptions {
  /** An at-most-once broker (`capabilities.delivery === 'at-most-once'`): core NATS, Redis pub/sub, MQTT. */
  readonly broker: Broker;
  /** Handlers running at once per subscription. Default: the messaging `maxInFlight`. */
  readonly maxInFlight?: number;
  /** CloudEvents content mode of the events sent. Default: the broker binding's own (`broker.binding.mode`). Receivers read both. */
  readonly mode?: CloudEventsMode;
}

/** Whether event `name` of `contract` declares itself at-most-once. */
export function isAtMostOnceEvent(contract: AnyContract, name: string): boolean {
  return contract.events[name]?.delivery === 'at-most-once';
}

/** Whether `contract` declares at least one at-most-once event. */
export function hasAtMostOnceEvents(contract: AnyContract): boolean {
  return Object.values(contract.events).some((definition) => definition.delivery === 'at-most-once');
}

/** Refuses a broker that promises redelivery: it would silently turn fire-and-forget into at-least-once without an inbox. */
export function checkAtMostOnceBroker(broker: Broker): void {
  checkBinding(broker);
  if (broker.capabilities.delivery !== 'at-most-once') {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `atMostOnce.broker must declare capabilities.delivery 'at-most-once'; ${broker.name} does not`,
    });
  }
}

/**
 * Refuses an at-most-once broker as the main broker: it would accept every send and lose whatever
 * arrives while a receiver is down, and never retry a failed handler, while the API promises
 * at-least-once with receipts and dead letters.
 */
export function checkMainBroker(broker: Broker): void {
  checkBinding(broker);
  if (broker.capabilities.delivery === 'at-most-once') {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail:
        `${broker.name} is an at-most-once engine: it keeps nothing for a receiver that is down and never redelivers, ` +
        'so it cannot be the main broker. Pass it as `atMostOnce: { broker }` (for events declared ' +
        "`delivery: 'at-most-once'`) next to an at-least-once broker.",
    });
  }
}

/**
 * On the at-most-once track: only events declared at-most-once are handled; any other type on the
 * topic belongs on the reliable broker and is dropped here (`SB_UNKNOWN_TYPE`).
 */
export function onlyAtMostOnce(): Middleware {
  return (next) => (message) => {
    const route = message.route!;
    if (route.kind !== 'event' || !isAtMostOnceEvent(route.contract, route.name)) {
      throw new SwitchboardError('SB_UNKNOWN_TYPE', { detail: `${route.type} is not an at-most-once event` });
    }
    return next(message);
  };
}

/** Every broker declares how CloudEvents travel on it (`Broker.binding`); one that does not cannot carry messages. */
function checkBinding(broker: Broker): void {
  const binding = (broker as Partial<Broker>).binding;
  if (binding === undefined || typeof binding.prefix !== 'string' || (binding.mode !== 'binary' && binding.mode !== 'structured')) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `broker ${broker.name} declares no CloudEvents binding (Broker.binding); a wrapper must pass on the wrapped broker's binding`,
    });
  }
}
