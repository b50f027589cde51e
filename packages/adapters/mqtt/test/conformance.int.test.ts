import { randomBytes } from 'node:crypto';
import { describeBrokerConformance } from '@switchboard/testkit';
import { createMqttBroker, MQTT_MAX_PACKET_BYTES } from '../src/index.js';

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
// A private topic prefix per run: no other test sees these topics.
const prefix = `sbt-mqtt-${randomBytes(4).toString('hex')}`;

describeBrokerConformance('mqtt (at-most-once)', () => createMqttBroker({ url, prefix }), {
  delivery: 'at-most-once',
  persistent: false,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: false,
  publishDeduplication: false,
  // The test server sets no maximum packet size: MQTT's own limit minus the broker's header allowance.
  maxMessageBytes: MQTT_MAX_PACKET_BYTES - 64 * 1024,
  ackTimeoutMs: 200,
});
