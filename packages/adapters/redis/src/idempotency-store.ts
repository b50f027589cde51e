import { createHash } from 'node:crypto';
import type {
  IdempotencyBegin,
  IdempotencyBeginResult,
  IdempotencyBounds,
  IdempotencyLock,
  IdempotencyStore,
  StoredResponse,
} from '@switchboard/core';
import { IDEMPOTENCY_FULL_RETRY_AFTER_MS, idempotencyRecordBytes, newSecretId, resolveIdempotencyBounds } from '@switchboard/core/kit';
import { RedisStoreClient, type RedisStoreOptions, Script } from './store-client.js';

export interface RedisIdempotencyStoreOptions extends RedisStoreOptions, IdempotencyBounds {}

// Shared by the scripts: ARGV[1] is the prefix, ARGV[2] the record id. Records are hashes
// `<prefix>r:<id>` (h: request hash, t: token, d: done, s/hd/b: status, headers, body, n: bytes,
// e: expiry); `<prefix>exp` and `<prefix>done` are sorted sets by expiry and by completion (the
// eviction order); `<prefix>totals` counts records and bytes.
const PRELUDE = `
local p = ARGV[1]
local id = ARGV[2]
local rk = p .. 'r:' .. id
local function remove(rid)
  local k = p .. 'r:' .. rid
  local n = redis.call('HGET', k, 'n')
  redis.call('ZREM', p .. 'exp', rid)
  redis.call('ZREM', p .. 'done', rid)
  if n then
    redis.call('DEL', k)
    redis.call('HINCRBY', p .. 'totals', 'entries', -1)
    redis.call('HINCRBY', p .. 'totals', 'bytes', -tonumber(n))
  end
end
local function fits(bytes, maxEntries, maxBytes)
  local t = redis.call('HMGET', p .. 'totals', 'entries', 'bytes')
  return (tonumber(t[1]) or 0) < maxEntries and (tonumber(t[2]) or 0) + bytes <= maxBytes
end
local function makeRoom(bytes, now, maxEntries, maxBytes)
  if fits(bytes, maxEntries, maxBytes) then return true end
  while true do
    local ids = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now, 'LIMIT', 0, 1)
    if #ids == 0 then break end
    remove(ids[1])
    if fits(bytes, maxEntries, maxBytes) then return true end
  end
  while true do
    local ids = redis.call('ZRANGE', p .. 'done', 0, 0)
    if #ids == 0 then break end
    remove(ids[1])
    if fits(bytes, maxEntries, maxBytes) then return true end
  end
  return false
end
`;

// ARGV: prefix, id, request hash, token, bytes, now, expiry (now + lockMs), maxEntries, maxBytes
const BEGIN = new Script(`${PRELUDE}
local now = tonumber(ARGV[6])
local r = redis.call('HMGET', rk, 'h', 'd', 'e', 's', 'hd', 'b')
if r[1] then
  if tonumber(r[3]) > now then
    if r[1] ~= ARGV[3] then return {'mismatch'} end
    if r[2] == '0' then return {'in-progress'} end
    return {'replay', r[4], r[5], r[6]}
  end
  remove(id)
end
local bytes = tonumber(ARGV[5])
if not makeRoom(bytes, now, tonumber(ARGV[8]), tonumber(ARGV[9])) then return {'full'} end
redis.call('HSET', rk, 'h', ARGV[3], 't', ARGV[4], 'd', '0', 'n', ARGV[5], 'e', ARGV[7])
redis.call('ZADD', p .. 'exp', ARGV[7], id)
redis.call('HINCRBY', p .. 'totals', 'entries', 1)
redis.call('HINCRBY', p .. 'totals', 'bytes', bytes)
return {'started'}
`);

// ARGV: prefix, id, token, bytes (computed for the stored hash length), now, expiry, maxEntries, maxBytes, status, headers, body
const COMPLETE = new Script(`${PRELUDE}
local r = redis.call('HMGET', rk, 'h', 't', 'd')
if not r[1] or r[3] ~= '0' or r[2] ~= ARGV[3] then return 0 end
remove(id)
local bytes = tonumber(ARGV[4])
local maxBytes = tonumber(ARGV[8])
if bytes > maxBytes or not makeRoom(bytes, tonumber(ARGV[5]), tonumber(ARGV[7]), maxBytes) then return 0 end
redis.call('HSET', rk, 'h', r[1], 't', ARGV[3], 'd', '1', 's', ARGV[9], 'hd', ARGV[10], 'b', ARGV[11], 'n', ARGV[4], 'e', ARGV[6])
redis.call('ZADD', p .. 'exp', ARGV[6], id)
redis.call('ZADD', p .. 'done', redis.call('INCR', p .. 'seq'), id)
redis.call('HINCRBY', p .. 'totals', 'entries', 1)
redis.call('HINCRBY', p .. 'totals', 'bytes', bytes)
return 1
`);

// ARGV: prefix, id, token
const ABANDON = new Script(`${PRELUDE}
local r = redis.call('HMGET', rk, 't', 'd')
if r[1] == ARGV[3] and r[2] == '0' then remove(id) end
return 0
`);

// ARGV: prefix, id (unused), now
const PURGE = new Script(`${PRELUDE}
local ids = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', ARGV[3], 'LIMIT', 0, 1000)
for _, rid in ipairs(ids) do remove(rid) end
return #ids
`);

/**
 * `IdempotencyStore` on Redis: keys are shared by every instance and survive restarts as far as
 * the server's persistence goes (AOF `appendfsync everysec` loses up to a second). Every call is one
 * Lua script, so `begin` is atomic. The store bounds itself (count and bytes, kept in
 * `<prefix>totals`) and never relies on key expiry, so its counters stay exact; leave its keys out
 * of an `allkeys-*` eviction policy (use `volatile-*` or `noeviction`). Use a hash tag in `prefix`
 * (`{idem}:`) on Redis Cluster.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #redis: RedisStoreClient;
  readonly #clock: () => number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(options: RedisIdempotencyStoreOptions) {
    const bounds = resolveIdempotencyBounds(options);
    this.#maxEntries = bounds.maxEntries;
    this.#maxBytes = bounds.maxBytes;
    this.#redis = new RedisStoreClient('idempotency', options, 'switchboard:idempotency:');
    this.#clock = options.clock ?? Date.now;
  }

  async begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult> {
    const now = this.#clock();
    const token = newSecretId();
    const bytes = idempotencyRecordBytes(request.scope, request.key, request.requestHash);
    const answer = (await this.#redis.call((client) =>
      BEGIN.run(client, [
        this.#redis.prefix,
        recordId(request.scope, request.key),
        request.requestHash,
        token,
        bytes,
        now,
        now + request.lockMs,
        this.#maxEntries,
        this.#maxBytes,
      ]),
    )) as string[];
    switch (answer[0]) {
      case 'mismatch':
        return { status: 'mismatch' };
      case 'in-progress':
        return { status: 'in-progress' };
      case 'replay':
        return {
          status: 'replay',
          response: { status: Number(answer[1]), headers: JSON.parse(answer[2] ?? '{}') as Record<string, string>, body: answer[3] ?? '' },
        };
      case 'full':
        return { status: 'full', retryAfterMs: IDEMPOTENCY_FULL_RETRY_AFTER_MS };
      default:
        return { status: 'started', token };
    }
  }

  async complete(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): Promise<void> {
    const now = this.#clock();
    // The request hash is always 64 hex digits (SHA-256), so the size is known before the script reads it.
    const bytes = idempotencyRecordBytes(lock.scope, lock.key, '0'.repeat(64), response);
    await this.#redis.call((client) =>
      COMPLETE.run(client, [
        this.#redis.prefix,
        recordId(lock.scope, lock.key),
        lock.token,
        bytes,
        now,
        now + ttlMs,
        this.#maxEntries,
        this.#maxBytes,
        response.status,
        JSON.stringify(response.headers),
        response.body,
      ]),
    );
  }

  async abandon(lock: IdempotencyLock): Promise<void> {
    await this.#redis.call((client) => ABANDON.run(client, [this.#redis.prefix, recordId(lock.scope, lock.key), lock.token]));
  }

  /** Deletes up to 1 000 expired records; answers how many. Expired records also go whenever room is needed. */
  async purge(): Promise<number> {
    return Number(await this.#redis.call((client) => PURGE.run(client, [this.#redis.prefix, '', this.#clock()])));
  }

  close(): Promise<void> {
    return this.#redis.close();
  }
}

/** A bounded key name for any scope and key. */
function recordId(scope: string, key: string): string {
  return createHash('sha256').update(scope).update('\u0000').update(key).digest('base64url');
}

export function createRedisIdempotencyStore(options: RedisIdempotencyStoreOptions): RedisIdempotencyStore {
  return new RedisIdempotencyStore(options);
}
