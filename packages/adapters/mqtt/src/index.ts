export { createMqttBroker, MQTT_MAX_PACKET_BYTES, MqttBroker, type ServerLimits } from './broker.js';
export type { MqttBrokerOptions } from './options.js';
export type { DroppedDelivery, DropReason, MqttSubscription } from './subscription.js';
