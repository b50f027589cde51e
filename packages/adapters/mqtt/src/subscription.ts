import { PushSubscription, type PushSubscriptionConfig } from '@switchboard/core/kit';
import type { MqttClient } from 'mqtt';

export type { DroppedDelivery, DropReason } from '@switchboard/core/kit';

export interface MqttSubscriptionConfig extends PushSubscriptionConfig {
  /** The subscription's own connection. */
  readonly client: MqttClient;
}

/**
 * One group member: a shared subscription on a connection of its own, feeding the shared
 * at-most-once subscription logic (`maxInFlight`, a bounded FIFO, drops told to `onDrop`).
 */
export class MqttSubscription extends PushSubscription {
  /** The subscription's own connection (for events and diagnostics). */
  readonly client: MqttClient;

  constructor(config: MqttSubscriptionConfig) {
    super(config);
    this.client = config.client;
  }
}
