import type { CloudEvent, Delivery } from '@switchboard/core';
import { newMessageId } from '@switchboard/core';
import type { Inbound } from '@switchboard/messaging';

/** An inbound message as the consumer hands it to the pipeline: its CloudEvent decoded, its id the delivery's. */
export function inbound(overrides: Partial<Inbound> = {}, delivery: Partial<Delivery> = {}, event: Partial<CloudEvent> = {}): Inbound {
  const id = delivery.id ?? newMessageId();
  return {
    delivery: {
      id,
      topic: 'service-b.messages',
      headers: { 'ce-type': 'service-b.name.submitted', 'ce-source': 'service-a' },
      body: new Uint8Array(),
      attempt: 1,
      ack: async () => {},
      nack: async () => {},
      ...delivery,
    },
    event: { specversion: '1.0', id, source: 'service-a', type: 'service-b.name.submitted', ...event },
    group: 'service-b',
    via: 'broker',
    attempt: delivery.attempt ?? 1,
    signal: new AbortController().signal,
    ...overrides,
  };
}
