export { createMqttBroker, MQTT_MAX_PACKET_BYTES, MqttBroker, type MqttBrokerOptions, type ServerLimits } from './broker.js';
export { ENCODING_PROPERTY, fromUserProperties, ID_PROPERTY, KEY_PROPERTY, toUserProperties } from './properties.js';
export type { DroppedDelivery, DropReason, MqttSubscription } from './subscription.js';
