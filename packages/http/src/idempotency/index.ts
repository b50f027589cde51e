export { requestHash } from './hash.js';
export type { MemoryIdempotencyStoreOptions } from './memory.js';
export { createMemoryIdempotencyStore, MemoryIdempotencyStore } from './memory.js';
export type { IdempotencyBegin, IdempotencyBeginResult, IdempotencyStore, StoredResponse } from './store.js';
