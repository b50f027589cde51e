import type { Broker, CloudEventsBinding, CloudEventsMode } from '@switchboard/core';

/** The CloudEvents binding a broker declares (`Broker.binding`): how attributes travel on its engine. */
export function bindingForBroker(broker: Pick<Broker, 'binding'>): CloudEventsBinding {
  return broker.binding;
}

/** The content mode a broker's binding writes (receivers accept both). */
export function contentModeForBroker(broker: Pick<Broker, 'binding'>): CloudEventsMode {
  return broker.binding.mode;
}
