import { SwitchboardError } from '@switchboard/core';
import type { DroppedDelivery } from '@switchboard/core/kit';
import type { IClientOptions } from 'mqtt';

export interface MqttBrokerOptions {
  /** Server URL, `mqtt://host:1883` or `mqtts://host:8883`. Default `mqtt://127.0.0.1:1883`. */
  readonly url?: string;
  /**
   * Extra mqtt.js options for every connection the broker opens (credentials, TLS, keepalive, ...).
   * The protocol version (5), the clean start and the client id are the broker's own.
   */
  readonly clientOptions?: Omit<IClientOptions, 'protocolVersion' | 'clean' | 'clientId'>;
  /** Namespace of the MQTT topics: `<prefix>/<topic>` (`''`: the topic as it is). Default `sb`. */
  readonly prefix?: string;
  /** Largest body accepted, in bytes. Default: the server's maximum packet size minus 64 KiB kept for topic and properties. */
  readonly maxMessageBytes?: number;
  /** Deliveries waiting for a free `maxInFlight` slot, per subscription, before new ones are dropped. Default 100 000. */
  readonly maxPending?: number;
  /** How long closing waits for running and queued handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /**
   * How long a publish waits for its PUBACK (across reconnects) before `SB_BROKER_UNAVAILABLE`.
   * Default 15 000 ms.
   */
  readonly publishTimeoutMs?: number;
  /** How long the first connection of the broker or of a subscription may take. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Told about every delivery dropped on this side (overflow, failed handler, close). */
  readonly onDrop?: (drop: DroppedDelivery) => void;
  /** Receives errors of connections after they were opened (they reconnect by themselves, nothing is thrown). */
  readonly onError?: (error: SwitchboardError) => void;
}

/** `value` checked as a positive integer (`fallback` when absent); `SB_CONFIG_INVALID` otherwise. */
export function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive integer, got ${value}` });
  }
  return value;
}
