import { createMemoryBroker } from '@switchboard/memory';
import { describeBrokerConformance } from '@switchboard/testkit';

describeBrokerConformance('memory', () => createMemoryBroker(), {
  persistent: false,
  multiProcess: false,
  ordering: 'per-key',
  delayedRedelivery: false,
  publishDeduplication: false,
  maxMessageBytes: 16 * 1024 * 1024,
  pending: true,
  ackTimeoutMs: 100,
  nackDelayMs: 100,
  quietMs: 150,
  throughputMessages: 5000,
});
