import { createMemoryJobStore } from '@switchboard/memory';
import { describeJobStoreConformance } from '@switchboard/testkit';

describeJobStoreConformance('memory', async (context) => ({ store: createMemoryJobStore(context) }));
