export { createVirtualNetwork, type VirtualNetwork, virtualHost } from './network.js';
export type {
  CallOutcome,
  CallTrail,
  CallVia,
  CheckedSpec,
  DeadLetterWait,
  HandlersOf,
  ReceiptWait,
  ServiceSpec,
  Testbed,
  TestbedOptions,
  TestMessagingOptions,
  TestService,
  Via,
} from './testbed.js';
export { createTestbed } from './testbed.js';
export { FAKE_TIMERS, type TimerDriver } from './time.js';
