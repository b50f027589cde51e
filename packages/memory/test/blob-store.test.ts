import { createMemoryBlobStore } from '@switchboard/memory';
import { describeBlobStoreConformance } from '@switchboard/testkit';

describeBlobStoreConformance('memory', ({ clock, name }) => {
  const store = createMemoryBlobStore({ clock, name });
  return {
    store,
    async corrupt(key) {
      store.corrupt(key, new TextEncoder().encode('tampered'));
    },
  };
});
