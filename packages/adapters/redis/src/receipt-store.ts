import {
  type ListPage,
  type Receipt,
  type ReceiptClaim,
  type ReceiptClaimResult,
  type ReceiptKey,
  type ReceiptListFilter,
  type ReceiptPurgeOptions,
  type ReceiptStore,
  type ReceiptUpdate,
  type RecordOutcome,
  SwitchboardError,
} from '@switchboard/core';
import {
  applyReceiptClaims,
  applyReceiptUpdates,
  assertStorableIdentity,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  reopenReceipt,
} from '@switchboard/core/kit';
import {
  assertNoNul,
  lexTime,
  maxLexStart,
  optionalFilter,
  RedisStoreClient,
  type RedisStoreOptions,
  Script,
  type ScriptArg,
} from './store-client.js';

export type RedisReceiptStoreOptions = RedisStoreOptions;

/*
 * Keys (after the prefix):
 *   r:<messageId>        hash: `<group>\0<source>` → receipt JSON (every group and source of one MessageId)
 *   idx                  sorted set (all scores 0) of `<receivedAt, 16 digits>\0<group>\0<source>\0<messageId>`: list order
 *   idx:g:<group>        the same members for one group (list by group without scanning others)
 *   upd                  sorted set of `<group>\0<source>\0<messageId>` scored by updatedAt: purge
 * Groups and sources hold no NUL (refused on write), so every member splits back unambiguously.
 */

/** Compare-and-set of a whole batch. ARGV: prefix, n, then per record: messageId, group, field, expected JSON ('' = absent), new JSON, idx member, updatedAt. */
const WRITE = new Script(`
local p = ARGV[1]
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local b = 3 + i * 7
  local current = redis.call('HGET', p .. 'r:' .. ARGV[b], ARGV[b + 2])
  if (current or '') ~= ARGV[b + 3] then return 0 end
end
for i = 0, n - 1 do
  local b = 3 + i * 7
  local mid, grp, field = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  redis.call('HSET', p .. 'r:' .. mid, field, ARGV[b + 4])
  redis.call('ZADD', p .. 'upd', ARGV[b + 6], field .. '\\0' .. mid)
  if ARGV[b + 3] == '' then
    redis.call('ZADD', p .. 'idx', 0, ARGV[b + 5])
    redis.call('ZADD', p .. 'idx:g:' .. grp, 0, ARGV[b + 5])
  end
end
return 1
`);

/**
 * ARGV: prefix, index key, lex min, lex max, group|'', '=' .. source | '' (any), state|'', type|'', topic|'', how many.
 * Answers receipt JSONs in list order.
 */
const LIST = new Script(`
local p = ARGV[1]
local key, min, max = p .. ARGV[2], ARGV[3], ARGV[4]
local group, source, state, typ, topic = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local want = tonumber(ARGV[10])
local out = {}
while true do
  local members = redis.call('ZRANGEBYLEX', key, min, max, 'LIMIT', 0, 256)
  for _, m in ipairs(members) do
    local rest = string.sub(m, 18)
    local s1 = string.find(rest, '\\0', 1, true)
    local s2 = string.find(rest, '\\0', s1 + 1, true)
    local grp = string.sub(rest, 1, s1 - 1)
    if (group == '' or grp == group) and (source == '' or string.sub(rest, s1 + 1, s2 - 1) == string.sub(source, 2)) then
      local json = redis.call('HGET', p .. 'r:' .. string.sub(rest, s2 + 1), string.sub(rest, 1, s2 - 1))
      if json then
        local keep = true
        if state ~= '' or typ ~= '' or topic ~= '' then
          local r = cjson.decode(json)
          keep = (state == '' or r.state == state) and (typ == '' or r.type == typ) and (topic == '' or r.topic == topic)
        end
        if keep then
          out[#out + 1] = json
          if #out >= want then return out end
        end
      end
    end
  end
  if #members < 256 then return out end
  min = '(' .. members[#members]
end
`);

/** ARGV: prefix, olderThan, ',state,state,' | '' (all), skip, chunk. Answers {deleted, skipped, examined}. */
const PURGE = new Script(`
local p = ARGV[1]
local members = redis.call('ZRANGEBYSCORE', p .. 'upd', '-inf', '(' .. ARGV[2], 'LIMIT', ARGV[4], ARGV[5])
local deleted, skipped = 0, 0
for _, m in ipairs(members) do
  local s1 = string.find(m, '\\0', 1, true)
  local s2 = string.find(m, '\\0', s1 + 1, true)
  local grp, field, mid = string.sub(m, 1, s1 - 1), string.sub(m, 1, s2 - 1), string.sub(m, s2 + 1)
  local json = redis.call('HGET', p .. 'r:' .. mid, field)
  if not json then
    redis.call('ZREM', p .. 'upd', m)
  else
    local r = cjson.decode(json)
    if ARGV[3] == '' or string.find(ARGV[3], ',' .. r.state .. ',', 1, true) then
      local im = string.format('%016.0f', r.receivedAt) .. '\\0' .. field .. '\\0' .. mid
      redis.call('HDEL', p .. 'r:' .. mid, field)
      redis.call('ZREM', p .. 'upd', m)
      redis.call('ZREM', p .. 'idx', im)
      redis.call('ZREM', p .. 'idx:g:' .. grp, im)
      deleted = deleted + 1
    else
      skipped = skipped + 1
    end
  end
end
return {deleted, skipped, #members}
`);

const PURGE_CHUNK = 1000;
/** Compare-and-set retries before a batch gives up under extreme contention. */
const MAX_TRIES = 50;

/**
 * `ReceiptStore` on Redis. Every batch (`record`, `claimBatch`, `reopen`, `extendLease`) reads the
 * batch's records in one pipelined round trip, applies the shared rules of `@switchboard/core`
 * (`mergeReceipt`, `decideClaim`, `reopenReceipt`) in order, and writes the changed records with one
 * Lua compare-and-set script that applies the whole batch only if none of its records changed
 * meanwhile (else the batch is read and decided again). Two round trips per batch whatever its
 * size; concurrent claims of one message from any number of processes let exactly one win.
 *
 * Durability is Redis's own: receipts survive a restart only as far as AOF/RDB persistence is
 * configured. `list` with filters other than `group` and time scans the (time-ordered) index.
 * Keys over the identity limits, and groups or sources holding a NUL (which the key layout cannot
 * hold), are refused with `SB_STORE_REFUSED` before anything is read or written.
 */
export class RedisReceiptStore implements ReceiptStore {
  readonly #redis: RedisStoreClient;
  readonly #clock: () => number;
  readonly #p: string;

  constructor(options: RedisReceiptStoreOptions) {
    this.#redis = new RedisStoreClient('receipt', options, 'switchboard:receipts:');
    this.#clock = options.clock ?? Date.now;
    this.#p = this.#redis.prefix;
  }

  async record(updates: readonly ReceiptUpdate[]): Promise<RecordOutcome[]> {
    assertKeys(updates);
    return this.#batch(updates, (records, now) => applyReceiptUpdates(records, updates, now, keyOf));
  }

  async claim(request: ReceiptClaim): Promise<ReceiptClaimResult> {
    const [result] = await this.claimBatch([request]);
    return result as ReceiptClaimResult;
  }

  async claimBatch(requests: readonly ReceiptClaim[]): Promise<ReceiptClaimResult[]> {
    assertKeys(requests);
    return this.#batch(requests, (records, now) => applyReceiptClaims(records, requests, now, keyOf));
  }

  /** `record(updates)` then `claimBatch(requests)` in one batch: one read, one compare-and-set. */
  async recordAndClaim(
    updates: readonly ReceiptUpdate[],
    requests: readonly ReceiptClaim[],
  ): Promise<{ outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }> {
    assertKeys(updates);
    assertKeys(requests);
    return this.#batch([...updates, ...requests], (records, now) => ({
      outcomes: applyReceiptUpdates(records, updates, now, keyOf),
      claims: applyReceiptClaims(records, requests, now, keyOf),
    }));
  }

  async extendLease(key: ReceiptKey, owner: string, leaseMs: number): Promise<boolean> {
    return this.#batch([key], (records, now) => {
      const current = records.get(keyOf(key));
      if (current === undefined || current.state !== 'processing' || current.leaseOwner !== owner) return false;
      records.set(keyOf(key), { ...current, leaseUntil: now + leaseMs, updatedAt: Math.max(now, current.updatedAt) });
      return true;
    });
  }

  async reopen(keys: readonly ReceiptKey[]): Promise<number> {
    return this.#batch(keys, (records, now) => {
      let count = 0;
      for (const key of keys) {
        const current = records.get(keyOf(key));
        const next = current === undefined ? undefined : reopenReceipt(current, now);
        if (next !== undefined) {
          records.set(keyOf(key), next);
          count++;
        }
      }
      return count;
    });
  }

  async get(key: ReceiptKey): Promise<Receipt | undefined> {
    const json = await this.#redis.call((client) => client.hget(`${this.#p}r:${key.messageId}`, fieldOf(key)));
    return json === null ? undefined : parse(json);
  }

  async getAll(messageId: string, source?: string): Promise<Receipt[]> {
    const all = await this.#redis.call((client) => client.hgetall(`${this.#p}r:${messageId}`));
    return Object.values(all)
      .map(parse)
      .filter((receipt) => source === undefined || receipt.source === source)
      .sort((a, b) => compareText(a.source, b.source) || compareText(a.group, b.group));
  }

  async list(filter: ReceiptListFilter = {}): Promise<ListPage<Receipt>> {
    this.#redis.assertOpen();
    const limit = listPageLimit(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeListCursor(filter.cursor, 4);
    let min = filter.receivedFrom === undefined ? '-' : `[${lexTime(filter.receivedFrom)}`;
    if (after !== undefined) {
      min = maxLexStart(min, `(${lexTime(Number(after[0]))}\u0000${String(after[1])}\u0000${String(after[2])}\u0000${String(after[3])}`);
    }
    const max = filter.receivedTo === undefined ? '+' : `(${lexTime(filter.receivedTo)}`;
    const index = filter.group === undefined ? 'idx' : `idx:g:${filter.group}`;
    const rows = (await this.#redis.call((client) =>
      LIST.run(client, [
        this.#p,
        index,
        min,
        max,
        filter.group ?? '',
        optionalFilter(filter.source),
        filter.state ?? '',
        filter.type ?? '',
        filter.topic ?? '',
        limit + 1,
      ]),
    )) as string[];
    const items = rows.slice(0, limit).map(parse);
    const last = items.at(-1);
    return rows.length > limit && last !== undefined
      ? { items, nextCursor: encodeListCursor([last.receivedAt, last.group, last.source, last.messageId]) }
      : { items };
  }

  async purge(olderThan: number, options: ReceiptPurgeOptions = {}): Promise<number> {
    this.#redis.assertOpen();
    const states = options.states;
    if (states !== undefined && states.length === 0) return 0;
    const stateList = states === undefined ? '' : `,${states.join(',')},`;
    let total = 0;
    let skip = 0;
    for (;;) {
      const [deleted, skipped, examined] = (await this.#redis.call((client) =>
        PURGE.run(client, [this.#p, olderThan, stateList, skip, PURGE_CHUNK]),
      )) as [number, number, number];
      total += deleted;
      skip += skipped;
      if (examined < PURGE_CHUNK) return total;
    }
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  /**
   * Reads the records of `keys`, lets `apply` decide in order (setting changed records in the map),
   * and writes the changes with one compare-and-set script; on a conflict, reads and decides again.
   */
  async #batch<T>(keys: readonly ReceiptKey[], apply: (records: Map<string, Receipt>, now: number) => T): Promise<T> {
    this.#redis.assertOpen();
    const distinct = [...new Map(keys.map((key) => [keyOf(key), key])).values()];
    for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
      const raw = await this.#read(distinct);
      const before = new Map<string, Receipt>();
      for (const [key, json] of raw) if (json !== null) before.set(key, parse(json));
      const records = new Map(before);
      const result = apply(records, this.#clock());
      const args: ScriptArg[] = [];
      let changed = 0;
      for (const [key, receipt] of records) {
        if (before.get(key) === receipt) continue;
        changed++;
        const field = fieldOf(receipt);
        const member = `${lexTime(receipt.receivedAt)}\u0000${field}\u0000${receipt.messageId}`;
        args.push(receipt.messageId, receipt.group, field, raw.get(key) ?? '', JSON.stringify(receipt), member, receipt.updatedAt);
      }
      if (changed === 0) return result;
      const written = await this.#redis.call((client) => WRITE.run(client, [this.#p, changed, ...args]));
      if (written === 1) return result;
    }
    throw new SwitchboardError('SB_STORE_UNAVAILABLE', {
      detail: `the Redis receipt store gave up after ${MAX_TRIES} conflicting writes`,
      retryAfterMs: 10,
    });
  }

  async #read(keys: readonly ReceiptKey[]): Promise<Map<string, string | null>> {
    if (keys.length === 0) return new Map();
    const results = await this.#redis.call(async (client) => {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.hget(`${this.#p}r:${key.messageId}`, fieldOf(key));
      return (await pipeline.exec()) ?? [];
    });
    return new Map(
      keys.map((key, i) => {
        const [error, value] = results[i] ?? [new Error('missing pipeline answer'), null];
        if (error) throw this.#redis.failure(error);
        return [keyOf(key), (value as string | null) ?? null];
      }),
    );
  }
}

/** The hash field of a record under `r:<messageId>`. */
function fieldOf(key: ReceiptKey): string {
  return `${key.group}\u0000${key.source}`;
}

/** Map key of a record: groups and sources hold no NUL (see `assertKey`), so this is unambiguous. */
function keyOf(key: ReceiptKey): string {
  return `${key.group}\u0000${key.source}\u0000${key.messageId}`;
}

/**
 * Refuses the whole batch, before anything is read, when one key is over the identity limits or
 * holds a NUL in its group or source (the key layout splits on NUL).
 */
function assertKeys(keys: readonly ReceiptKey[]): void {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as ReceiptKey;
    assertStorableIdentity('receipt', key);
    assertNoNul('receipt', key.group, 'group');
    assertNoNul('receipt', key.source, 'source');
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parse(json: string): Receipt {
  return JSON.parse(json) as Receipt;
}

export function createRedisReceiptStore(options: RedisReceiptStoreOptions): RedisReceiptStore {
  return new RedisReceiptStore(options);
}
