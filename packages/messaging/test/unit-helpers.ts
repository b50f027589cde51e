import type { Delivery } from '@switchboard/core';
import { newMessageId } from '@switchboard/core';
import type { Inbound } from '@switchboard/messaging';

export function inbound(overrides: Partial<Inbound> = {}, delivery: Partial<Delivery> = {}): Inbound {
  return {
    delivery: {
      id: newMessageId(),
      topic: 'service-b.messages',
      headers: { 'ce-type': 'service-b.name.submitted', 'ce-source': 'service-a' },
      body: new Uint8Array(),
      attempt: 1,
      ack: async () => {},
      nack: async () => {},
      ...delivery,
    },
    group: 'service-b',
    via: 'broker',
    attempt: delivery.attempt ?? 1,
    signal: new AbortController().signal,
    ...overrides,
  };
}
