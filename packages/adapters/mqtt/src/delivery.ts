import { AtMostOnceDelivery } from '@switchboard/core/kit';
import { fromMqttProperties, type IncomingProperties, type ReceivedProperties } from './binding.js';

/**
 * An MQTT delivery (at most once: `ack` / `nack` are no-ops, `attempt` is 1). Its headers, key
 * and transport id are read from the PUBLISH properties on first use.
 */
export class MqttDelivery extends AtMostOnceDelivery {
  readonly #properties: IncomingProperties | undefined;

  constructor(topic: string, body: Uint8Array, properties: IncomingProperties | undefined) {
    super(topic, body);
    this.#properties = properties;
  }

  protected readFields(): ReceivedProperties {
    return fromMqttProperties(this.#properties);
  }
}
