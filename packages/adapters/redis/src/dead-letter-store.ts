import {
  type DeadLetter,
  type DeadLetterAttempt,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterReason,
  type DeadLetterStatus,
  type DeadLetterStore,
  type DeadLetterSummary,
  type DeadLetterTakeOptions,
  type Headers,
  type ListPage,
  type NewDeadLetter,
  newMessageId,
} from '@switchboard/core';
import { assertStorableIdentity, decodeListCursor, encodeListCursor, listPageLimit, mergeAttempts } from '@switchboard/core/kit';
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

export type RedisDeadLetterStoreOptions = RedisStoreOptions;

/*
 * Keys (after the prefix):
 *   e:<id>      hash: the entry (messageId, source, topic, group, type, key, reason, detail, headers
 *               JSON, body bytes, size, at, status, replayCount, replayedAt, owner, until, m)
 *   a:<id>      hash: attempt number → attempt JSON (HSETNX merges attempts idempotently)
 *   order       sorted set (all scores 0) of `<deadLetteredAt, 16 digits>\0<id>`: list order and paging
 *   active      hash: `<group>\0<source>\0<messageId>` → id of the entry not yet replayed (idempotent add);
 *               groups and sources hold no NUL (refused on add), so the field is unambiguous
 */

/** The summary fields, in the order scripts return them. */
const SUMMARY = [
  'messageId',
  'topic',
  'group',
  'type',
  'key',
  'reason',
  'detail',
  'at',
  'status',
  'replayCount',
  'replayedAt',
  'owner',
  'until',
  'size',
  'source',
] as const;

const COMMON = `
local p = ARGV[1]
local SUMMARY = {${SUMMARY.map((f) => `'${f}'`).join(', ')}}
local function fetch(ids)
  local out = {}
  for _, id in ipairs(ids) do
    out[#out + 1] = {id, redis.call('HGETALL', p .. 'e:' .. id), redis.call('HGETALL', p .. 'a:' .. id)}
  end
  return out
end
-- filter: {topic, group, type, reason, messageId, status, from, to, '=' .. source} ('' = any); v: HMGET of SUMMARY
local function matches(v, f, now)
  if not v[1] then return false end
  if (f[1] ~= '' and v[2] ~= f[1]) or (f[2] ~= '' and v[3] ~= f[2]) or (f[3] ~= '' and v[4] ~= f[3]) then return false end
  if (f[4] ~= '' and v[6] ~= f[4]) or (f[5] ~= '' and v[1] ~= f[5]) then return false end
  if f[9] ~= '' and v[15] ~= string.sub(f[9], 2) then return false end
  local at = tonumber(v[8])
  if (f[7] ~= '' and at < tonumber(f[7])) or (f[8] ~= '' and at >= tonumber(f[8])) then return false end
  if f[6] ~= '' then
    local status = v[9]
    if status == 'replaying' and (tonumber(v[13]) or 0) <= now then status = 'pending' end
    if status ~= f[6] then return false end
  end
  return true
end
local function unactivate(id, grp, src, mid)
  local ak = grp .. '\\0' .. src .. '\\0' .. mid
  if redis.call('HGET', p .. 'active', ak) == id then redis.call('HDEL', p .. 'active', ak) end
end
local function delete(id)
  local v = redis.call('HMGET', p .. 'e:' .. id, 'm', 'group', 'source', 'messageId')
  if not v[1] then return 0 end
  redis.call('DEL', p .. 'e:' .. id, p .. 'a:' .. id)
  redis.call('ZREM', p .. 'order', v[1])
  unactivate(id, v[2], v[3], v[4])
  return 1
end
`;

/** ARGV: prefix, n, then per entry: new id, active key, order member, field count, fields…, attempt count, (number, JSON)…. */
const ADD = new Script(`${COMMON}
local n = tonumber(ARGV[2])
local i = 3
local ids = {}
for _ = 1, n do
  local id, ak, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local fstart = i + 4
  i = fstart + tonumber(ARGV[i + 3]) * 2
  local astart = i + 1
  i = astart + tonumber(ARGV[i]) * 2
  local target = redis.call('HGET', p .. 'active', ak)
  if not target or redis.call('EXISTS', p .. 'e:' .. target) == 0 then
    target = id
    local fields = {'m', member}
    for f = fstart, astart - 2 do fields[#fields + 1] = ARGV[f] end
    redis.call('HSET', p .. 'e:' .. id, unpack(fields))
    redis.call('ZADD', p .. 'order', 0, member)
    redis.call('HSET', p .. 'active', ak, id)
  end
  for a = astart, i - 1, 2 do redis.call('HSETNX', p .. 'a:' .. target, ARGV[a], ARGV[a + 1]) end
  ids[#ids + 1] = target
end
return fetch(ids)
`);

/** ARGV: prefix, ids…. */
const FETCH = new Script(`${COMMON}
local ids = {}
for i = 2, #ARGV do
  if redis.call('EXISTS', p .. 'e:' .. ARGV[i]) == 1 then ids[#ids + 1] = ARGV[i] end
end
return fetch(ids)
`);

/** ARGV: prefix, now, lex min, lex max, how many, filter (9 values). Answers {id, summary values, attempts} in order. */
const LIST = new Script(`${COMMON}
local now = tonumber(ARGV[2])
local min, max, want = ARGV[3], ARGV[4], tonumber(ARGV[5])
local f = {ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14]}
local out = {}
while true do
  local members = redis.call('ZRANGEBYLEX', p .. 'order', min, max, 'LIMIT', 0, 256)
  for _, m in ipairs(members) do
    local id = string.sub(m, 18)
    local v = redis.call('HMGET', p .. 'e:' .. id, unpack(SUMMARY))
    if matches(v, f, now) then
      out[#out + 1] = {id, v, redis.call('HGETALL', p .. 'a:' .. id)}
      if #out >= want then return out end
    end
  end
  if #members < 256 then return out end
  min = '(' .. members[#members]
end
`);

/** ARGV: prefix, now, owner, lease until, limit, lex min, lex max, filter (9 values, status 'pending'), id count, ids…. */
const TAKE = new Script(`${COMMON}
local now, owner, untill, limit = tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local min, max = ARGV[6], ARGV[7]
local f = {ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16]}
local nids = tonumber(ARGV[17])
local taken = {}
local function try(id)
  local v = redis.call('HMGET', p .. 'e:' .. id, unpack(SUMMARY))
  if matches(v, f, now) then
    redis.call('HSET', p .. 'e:' .. id, 'status', 'replaying', 'owner', owner, 'until', untill)
    taken[#taken + 1] = id
  end
  return #taken >= limit
end
if nids > 0 then
  local ranked = {}
  for i = 18, 17 + nids do
    local m = redis.call('HGET', p .. 'e:' .. ARGV[i], 'm')
    if m then
      local rank = redis.call('ZRANK', p .. 'order', m)
      if rank then ranked[#ranked + 1] = {rank, ARGV[i]} end
    end
  end
  table.sort(ranked, function(a, b) return a[1] < b[1] end)
  local previous = -1
  for _, r in ipairs(ranked) do
    if r[1] ~= previous then
      previous = r[1]
      if try(r[2]) then break end
    end
  end
else
  local done = false
  while not done do
    local members = redis.call('ZRANGEBYLEX', p .. 'order', min, max, 'LIMIT', 0, 256)
    for _, m in ipairs(members) do
      if try(string.sub(m, 18)) then
        done = true
        break
      end
    end
    if #members < 256 then break end
    min = '(' .. members[#members]
  end
end
return fetch(taken)
`);

/** ARGV: prefix, now, owner, ids…. Answers how many were marked. */
const MARK_REPLAYED = new Script(`${COMMON}
local count = 0
for i = 4, #ARGV do
  local key = p .. 'e:' .. ARGV[i]
  local v = redis.call('HMGET', key, 'status', 'owner', 'group', 'source', 'messageId')
  if v[1] == 'replaying' and v[2] == ARGV[3] then
    redis.call('HSET', key, 'status', 'replayed', 'replayedAt', ARGV[2])
    redis.call('HINCRBY', key, 'replayCount', 1)
    redis.call('HDEL', key, 'owner', 'until')
    unactivate(ARGV[i], v[3], v[4], v[5])
    count = count + 1
  end
end
return count
`);

/** ARGV: prefix, owner, ids…. Answers how many were released. */
const RELEASE = new Script(`${COMMON}
local count = 0
for i = 3, #ARGV do
  local key = p .. 'e:' .. ARGV[i]
  local v = redis.call('HMGET', key, 'status', 'owner')
  if v[1] == 'replaying' and v[2] == ARGV[2] then
    redis.call('HSET', key, 'status', 'pending')
    redis.call('HDEL', key, 'owner', 'until')
    count = count + 1
  end
end
return count
`);

/** ARGV: prefix, ids…. */
const REMOVE = new Script(`${COMMON}
local count = 0
for i = 2, #ARGV do count = count + delete(ARGV[i]) end
return count
`);

/** ARGV: prefix, lex max, only replayed ('1'|'0'), skip, chunk. Answers {deleted, skipped, examined}. */
const PURGE = new Script(`${COMMON}
local members = redis.call('ZRANGEBYLEX', p .. 'order', '-', ARGV[2], 'LIMIT', ARGV[4], ARGV[5])
local deleted, skipped = 0, 0
for _, m in ipairs(members) do
  local id = string.sub(m, 18)
  if ARGV[3] == '1' and redis.call('HGET', p .. 'e:' .. id, 'status') ~= 'replayed' then
    skipped = skipped + 1
  else
    if delete(id) == 0 then redis.call('ZREM', p .. 'order', m) end
    deleted = deleted + 1
  end
end
return {deleted, skipped, #members}
`);

const PURGE_CHUNK = 1000;

type Fetched = [Buffer, Buffer[], Buffer[]][];
type Listed = [string, (string | null)[], string[]][];

/**
 * `DeadLetterStore` on Redis. Every method is one Lua script (one round trip, atomic on the
 * server): `addBatch` merges attempts with `HSETNX` per attempt number (the rule of core's
 * `mergeAttempts`), `take` leases entries in order so concurrent replayers never take the same live
 * entry. Bodies are stored as raw bytes. `list` and `take` with filters scan the time-ordered index
 * from the first possible position. Ids and sources over the identity limits, and groups or sources
 * holding a NUL (which the `active` field cannot hold), are refused with `SB_STORE_REFUSED`.
 *
 * Durability is Redis's own: entries survive a restart only as far as AOF/RDB persistence is
 * configured.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly #redis: RedisStoreClient;
  readonly #clock: () => number;
  readonly #p: string;

  constructor(options: RedisDeadLetterStoreOptions) {
    this.#redis = new RedisStoreClient('dead-letter', options, 'switchboard:dead-letters:');
    this.#clock = options.clock ?? Date.now;
    this.#p = this.#redis.prefix;
  }

  async add(entry: NewDeadLetter): Promise<DeadLetter> {
    const [added] = await this.addBatch([entry]);
    return added as DeadLetter;
  }

  async addBatch(entries: readonly NewDeadLetter[]): Promise<DeadLetter[]> {
    this.#redis.assertOpen();
    if (entries.length === 0) return [];
    for (const entry of entries) {
      assertStorableIdentity('dead-letter', entry);
      assertNoNul('dead-letter', entry.group, 'group');
      assertNoNul('dead-letter', entry.source, 'source');
    }
    const now = this.#clock();
    const args: ScriptArg[] = [this.#p, entries.length];
    for (const entry of entries) {
      const id = newMessageId();
      const at = entry.deadLetteredAt ?? now;
      const fields: ScriptArg[] = [
        'messageId',
        entry.messageId,
        'source',
        entry.source,
        'topic',
        entry.topic,
        'group',
        entry.group,
        'reason',
        entry.reason,
        'headers',
        JSON.stringify(entry.headers),
        'body',
        Buffer.from(entry.body.buffer, entry.body.byteOffset, entry.body.byteLength),
        'size',
        entry.body.byteLength,
        'at',
        at,
        'status',
        'pending',
        'replayCount',
        0,
      ];
      if (entry.type !== undefined) fields.push('type', entry.type);
      if (entry.key !== undefined) fields.push('key', entry.key);
      if (entry.detail !== undefined) fields.push('detail', entry.detail);
      args.push(
        id,
        `${entry.group}\u0000${entry.source}\u0000${entry.messageId}`,
        `${lexTime(at)}\u0000${id}`,
        fields.length / 2,
        ...fields,
      );
      args.push(entry.attempts.length);
      for (const attempt of entry.attempts) args.push(attempt.attempt, JSON.stringify(attempt));
    }
    const fetched = (await this.#redis.call((client) => ADD.runBuffer(client, args))) as Fetched;
    return fetched.map((item) => fromFetched(item, now));
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const fetched = (await this.#redis.call((client) => FETCH.runBuffer(client, [this.#p, id]))) as Fetched;
    return fetched[0] === undefined ? undefined : fromFetched(fetched[0], this.#clock());
  }

  async list(options: DeadLetterListOptions = {}): Promise<ListPage<DeadLetterSummary>> {
    this.#redis.assertOpen();
    const limit = listPageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeListCursor(options.cursor, 2);
    const now = this.#clock();
    let { min, max } = lexRange(options);
    if (after !== undefined) min = maxLexStart(min, `(${lexTime(Number(after[0]))}\u0000${String(after[1])}`);
    const listed = (await this.#redis.call((client) =>
      LIST.run(client, [this.#p, now, min, max, limit + 1, ...filterArgs(options)]),
    )) as Listed;
    const items = listed.slice(0, limit).map(([id, values, attempts]) => summaryOf(id, values, attempts, now));
    const last = items.at(-1);
    return listed.length > limit && last !== undefined
      ? { items, nextCursor: encodeListCursor([last.deadLetteredAt, last.id]) }
      : { items };
  }

  async take(options: DeadLetterTakeOptions): Promise<DeadLetter[]> {
    this.#redis.assertOpen();
    const now = this.#clock();
    const { min, max } = lexRange(options);
    const ids = options.ids ?? [];
    if (options.ids !== undefined && ids.length === 0) return [];
    const args: ScriptArg[] = [
      this.#p,
      now,
      options.owner,
      now + options.leaseMs,
      listPageLimit(options.limit),
      min,
      max,
      ...filterArgs({ ...options, status: 'pending' }),
      ids.length,
      ...ids,
    ];
    const fetched = (await this.#redis.call((client) => TAKE.runBuffer(client, args))) as Fetched;
    return fetched.map((item) => fromFetched(item, now));
  }

  async markReplayed(ids: readonly string[], owner: string): Promise<number> {
    if (ids.length === 0) return this.#none();
    return (await this.#redis.call((client) => MARK_REPLAYED.run(client, [this.#p, this.#clock(), owner, ...ids]))) as number;
  }

  async release(ids: readonly string[], owner: string): Promise<number> {
    if (ids.length === 0) return this.#none();
    return (await this.#redis.call((client) => RELEASE.run(client, [this.#p, owner, ...ids]))) as number;
  }

  async remove(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return this.#none();
    return (await this.#redis.call((client) => REMOVE.run(client, [this.#p, ...new Set(ids)]))) as number;
  }

  async purge(olderThan: number, options: { readonly onlyReplayed?: boolean } = {}): Promise<number> {
    this.#redis.assertOpen();
    let total = 0;
    let skip = 0;
    for (;;) {
      const [deleted, skipped, examined] = (await this.#redis.call((client) =>
        PURGE.run(client, [this.#p, `(${lexTime(olderThan)}`, options.onlyReplayed === true ? '1' : '0', skip, PURGE_CHUNK]),
      )) as [number, number, number];
      total += deleted;
      skip += skipped;
      if (examined < PURGE_CHUNK) return total;
    }
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  async #none(): Promise<number> {
    this.#redis.assertOpen();
    return 0;
  }
}

function lexRange(filter: DeadLetterFilter): { min: string; max: string } {
  return {
    min: filter.from === undefined ? '-' : `[${lexTime(filter.from)}`,
    max: filter.to === undefined ? '+' : `(${lexTime(filter.to)}`,
  };
}

function filterArgs(filter: DeadLetterFilter): string[] {
  return [
    filter.topic ?? '',
    filter.group ?? '',
    filter.type ?? '',
    filter.reason ?? '',
    filter.messageId ?? '',
    filter.status ?? '',
    filter.from === undefined ? '' : String(filter.from),
    filter.to === undefined ? '' : String(filter.to),
    optionalFilter(filter.source),
  ];
}

function attemptsOf(flat: readonly (string | Buffer)[]): DeadLetterAttempt[] {
  const attempts: DeadLetterAttempt[] = [];
  for (let i = 1; i < flat.length; i += 2) attempts.push(JSON.parse(String(flat[i])) as DeadLetterAttempt);
  return mergeAttempts([], attempts);
}

function summaryOf(id: string, values: readonly (string | null)[], attempts: readonly string[], now: number): DeadLetterSummary {
  const field = (name: (typeof SUMMARY)[number]): string | null => values[SUMMARY.indexOf(name)] ?? null;
  const stored = field('status') as DeadLetterStatus;
  const until = field('until');
  const leaseLive = stored === 'replaying' && until !== null && Number(until) > now;
  const status: DeadLetterStatus = stored === 'replaying' && !leaseLive ? 'pending' : stored;
  const type = field('type');
  const key = field('key');
  const detail = field('detail');
  const replayedAt = field('replayedAt');
  const owner = field('owner');
  return {
    id,
    messageId: field('messageId') ?? '',
    source: field('source') ?? '',
    topic: field('topic') ?? '',
    group: field('group') ?? '',
    ...(type === null ? {} : { type }),
    ...(key === null ? {} : { key }),
    reason: (field('reason') ?? '') as DeadLetterReason,
    ...(detail === null ? {} : { detail }),
    attempts: attemptsOf(attempts),
    deadLetteredAt: Number(field('at')),
    status,
    replayCount: Number(field('replayCount') ?? 0),
    ...(replayedAt === null ? {} : { replayedAt: Number(replayedAt) }),
    ...(leaseLive && owner !== null ? { replayOwner: owner } : {}),
    ...(leaseLive && until !== null ? { replayLeaseUntil: Number(until) } : {}),
    size: Number(field('size') ?? 0),
  };
}

function fromFetched([id, flat, attempts]: [Buffer, Buffer[], Buffer[]], now: number): DeadLetter {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] as Buffer);
  const text = (name: string) => {
    const value = fields.get(name);
    return value === undefined ? null : value.toString('utf8');
  };
  const summary = summaryOf(
    id.toString('utf8'),
    SUMMARY.map((name) => text(name)),
    attempts.map((a) => a.toString('utf8')),
    now,
  );
  const body = fields.get('body');
  return {
    ...summary,
    headers: JSON.parse(text('headers') ?? '{}') as Headers,
    body: body === undefined ? new Uint8Array() : new Uint8Array(body),
  };
}

export function createRedisDeadLetterStore(options: RedisDeadLetterStoreOptions): RedisDeadLetterStore {
  return new RedisDeadLetterStore(options);
}
