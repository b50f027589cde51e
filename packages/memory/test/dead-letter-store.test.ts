import { createMemoryDeadLetterStore } from '@switchboard/memory';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';

describeDeadLetterStoreConformance('memory', ({ clock }) => ({ store: createMemoryDeadLetterStore({ clock }) }));
