export type { RabbitMqBroker } from './broker.js';
export { createRabbitMqBroker } from './broker.js';
export type { RabbitMqBrokerOptions } from './options.js';
