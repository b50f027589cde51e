import type { Broker, CloudEventsBinding, CloudEventsMode } from '@switchboard/core';
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

/**
 * The CloudEvents content mode on a broker. At-most-once brokers (core NATS, Redis pub/sub) carry
 * structured mode: one `application/cloudevents+json` document with `content-type` as the only
 * header, which spares the per-attribute header encoding and parsing on a path that is all about
 * throughput, and which is the form the NATS binding reads without headers. Every other broker
 * carries binary mode. Receivers accept both.
 */
export function contentModeForBroker(broker: Pick<Broker, 'capabilities'>): CloudEventsMode {
  return broker.capabilities.delivery === 'at-most-once' ? 'structured' : 'binary';
}
