import { createMemoryReceiptStore } from '@switchboard/memory';
import { describeReceiptStoreConformance } from '@switchboard/testkit';

describeReceiptStoreConformance('memory', ({ clock }) => ({ store: createMemoryReceiptStore({ clock }) }));
