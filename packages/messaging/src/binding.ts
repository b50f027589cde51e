import type { Broker, CloudEventsBinding } from '@switchboard/core';
import { cloudEventsBindings } from '@switchboard/core';

/**
 * The CloudEvents binding used on a broker's headers (binary content mode). AMQP brokers use the
 * AMQP binding (`cloudEvents:` prefix), NATS the NATS binding (`ce-`, percent-encoded values),
 * Kafka `ce_`; every other engine (memory, SQLite, Redis, PostgreSQL) uses `ce-` with raw values,
 * since their headers take any string.
 */
export function bindingForBroker(broker: Pick<Broker, 'name'>): CloudEventsBinding {
  switch (broker.name) {
    case 'rabbitmq':
    case 'amqp':
      return cloudEventsBindings.amqp;
    case 'nats':
    case 'nats-core':
      return cloudEventsBindings.nats;
    case 'kafka':
      return cloudEventsBindings.kafka;
    default:
      return cloudEventsBindings.redis;
  }
}
