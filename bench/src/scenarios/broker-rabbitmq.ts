import { compareEngine } from '../lib/broker-load.js';
import type { Scenario } from '../lib/scenario.js';

/**
 * RabbitMQ quorum queue: ConfirmChannel publish (serial, 256 in flight), prefetch + manual ack; raw amqplib vs adapter
 * Server: `RABBITMQ_URL` (default `amqp://guest:guest@127.0.0.1:5672`); a row says so when it is not reachable.
 */
export const brokerRabbitMq: Scenario = {
  name: 'broker-rabbitmq',
  description:
    'RabbitMQ quorum queue: ConfirmChannel publish (serial, 256 in flight), prefetch + manual ack; raw amqplib vs adapter vs messaging transport and full paths',
  run(ctx) {
    return compareEngine(ctx, {
      scenario: 'broker-rabbitmq',
      engine: 'rabbitmq',
      target: process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
      defaultPort: 5672,
      rawLabel: 'raw amqplib',
    });
  },
};
