import { createMemoryIdempotencyStore } from '@switchboard/memory';
import { describeIdempotencyStoreConformance } from '@switchboard/testkit';

describeIdempotencyStoreConformance('memory', (options) => ({ store: createMemoryIdempotencyStore(options) }));
