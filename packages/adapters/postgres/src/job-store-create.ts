import type { CreateJobInput, CreateJobResult } from '@switchboard/core';
import type { ItemOutcome } from '@switchboard/core/kit';
import { jobStoreDefaults } from '@switchboard/core/kit';
import type pg from 'pg';

type Queryable = Pick<pg.PoolClient, 'query'>;

/** A create with its row values worked out at call time. */
export interface PreparedCreate {
  readonly input: CreateJobInput;
  readonly id: string;
  readonly owner: string | null;
  readonly scope: string | null;
  readonly now: number;
  readonly retentionMs: number;
}

/** The columns a batch create compares and answers with; the caller maps rows to records. */
export interface CreatedRow {
  readonly id: string;
  readonly operation: string;
  readonly request_hash: string | null;
  readonly idempotency_scope: string | null;
  readonly expires_at: string | null;
}

/** Whether the batch needs a transaction: idempotency keys and bounded queues read before they write. */
export function needsTransaction(items: readonly PreparedCreate[]): boolean {
  return items.some((item) => item.scope !== null || item.input.maxQueued !== undefined);
}

/**
 * Inserts the rows in one statement (`INSERT … SELECT FROM unnest(…) ON CONFLICT (idempotency_scope)
 * DO NOTHING RETURNING *`). Answers the inserted rows by id; a row that lost an idempotency race to
 * another submitter is absent.
 */
export async function insertRows<R extends CreatedRow>(
  db: Queryable,
  t: string,
  items: readonly PreparedCreate[],
): Promise<Map<string, R>> {
  const column = <T>(pick: (item: PreparedCreate) => T): T[] => items.map(pick);
  const { rows } = await db.query<R>(
    `INSERT INTO ${t} (id, operation, owner, status, input, version, attempts, max_attempts, run_at, created_at, updated_at,
        retention_ms, idempotency_key, idempotency_scope, request_hash, traceparent, tracestate, callback)
     SELECT id, operation, owner, 'queued', input, 1, 0, max_attempts, run_at, created_at, created_at,
        retention_ms, idempotency_key, idempotency_scope, request_hash, traceparent, tracestate, callback
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[], $8::bigint[],
        $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
       AS v(id, operation, owner, input, max_attempts, run_at, created_at, retention_ms,
        idempotency_key, idempotency_scope, request_hash, traceparent, tracestate, callback)
     ON CONFLICT (idempotency_scope) DO NOTHING RETURNING *`,
    [
      column((item) => item.id),
      column((item) => item.input.operation),
      column((item) => item.owner),
      column((item) => JSON.stringify(item.input.input ?? null)),
      column((item) => item.input.maxAttempts ?? jobStoreDefaults.maxAttempts),
      column((item) => item.input.runAt ?? item.now),
      column((item) => item.now),
      column((item) => item.input.retentionMs ?? item.retentionMs),
      column((item) => item.input.idempotencyKey ?? null),
      column((item) => item.scope),
      column((item) => item.input.requestHash ?? null),
      column((item) => item.input.traceparent ?? null),
      column((item) => item.input.tracestate ?? null),
      column((item) =>
        item.input.callbackUrl === undefined ? null : JSON.stringify({ url: item.input.callbackUrl, state: 'pending', attempts: 0 }),
      ),
    ],
  );
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * The creates of one batch inside one transaction, each with its own answer: the bounded-queue
 * operations are locked (advisory, sorted) and counted once for the batch, and counted on as the
 * batch inserts; the idempotency scopes are read with one `SELECT … FOR UPDATE`; expired holders of
 * a scope are buried; the new rows go in with one multi-row insert. A later item with the scope of an
 * earlier one in the same batch is answered against the earlier one's job, as if it came second.
 */
export async function createInTransaction<R extends CreatedRow>(
  client: Queryable,
  t: string,
  items: readonly PreparedCreate[],
  hooks: {
    readonly toResult: (row: R, outcome: 'created' | 'existing') => CreateJobResult;
    readonly bury: (ids: string[], now: number) => Promise<void>;
  },
): Promise<ItemOutcome<CreateJobResult>[]> {
  const bounded = [...new Set(items.filter((item) => item.input.maxQueued !== undefined).map((item) => item.input.operation))].sort();
  const queued = new Map<string, number>();
  if (bounded.length > 0) {
    await client.query('SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k', [bounded.map((op) => `${t}:queue:${op}`)]);
    const { rows } = await client.query<{ operation: string; n: string }>(
      `SELECT operation, count(*) AS n FROM ${t} WHERE status = 'queued' AND operation = ANY($1::text[]) GROUP BY operation`,
      [bounded],
    );
    for (const row of rows) queued.set(row.operation, Number(row.n));
  }
  const scopes = [...new Set(items.flatMap((item) => (item.scope === null ? [] : [item.scope])))];
  const holders = new Map<string, R>();
  if (scopes.length > 0) {
    const { rows } = await client.query<R>(`SELECT * FROM ${t} WHERE idempotency_scope = ANY($1::text[]) FOR UPDATE`, [scopes]);
    for (const row of rows) holders.set(row.idempotency_scope!, row);
  }
  const compare = (item: PreparedCreate, existing: R): CreateJobResult => {
    const same = existing.operation === item.input.operation && (existing.request_hash ?? '') === (item.input.requestHash ?? '');
    return same ? hooks.toResult(existing, 'existing') : { outcome: 'mismatch', jobId: existing.id };
  };
  const answers: (CreateJobResult | undefined)[] = [];
  /** Items answered by the job of an earlier item with the same scope: index → scope. */
  const followers = new Map<number, string>();
  const leaders = new Map<string, PreparedCreate>();
  const toBury: string[] = [];
  const toInsert: PreparedCreate[] = [];
  items.forEach((item, index) => {
    answers.push(undefined);
    if (item.scope !== null) {
      if (leaders.has(item.scope)) {
        followers.set(index, item.scope);
        return;
      }
      const holder = holders.get(item.scope);
      if (holder && !(holder.expires_at !== null && Number(holder.expires_at) <= item.now)) {
        answers[index] = compare(item, holder);
        return;
      }
      if (holder) {
        toBury.push(holder.id);
        holders.delete(item.scope);
      }
    }
    const { operation, maxQueued } = item.input;
    const count = queued.get(operation) ?? 0;
    if (maxQueued !== undefined && count >= maxQueued) {
      answers[index] = { outcome: 'full' };
      return;
    }
    queued.set(operation, count + 1);
    if (item.scope !== null) leaders.set(item.scope, item);
    toInsert.push(item);
  });
  if (toBury.length > 0) await hooks.bury(toBury, Math.max(...items.map((item) => item.now)));
  const inserted = toInsert.length > 0 ? await insertRows<R>(client, t, toInsert) : new Map<string, R>();
  const lostRace = toInsert.filter((item) => !inserted.has(item.id)).map((item) => item.scope!);
  const winners = new Map<string, R>();
  if (lostRace.length > 0) {
    // Another submitter with the same key committed first.
    const { rows } = await client.query<R>(`SELECT * FROM ${t} WHERE idempotency_scope = ANY($1::text[])`, [lostRace]);
    for (const row of rows) winners.set(row.idempotency_scope!, row);
  }
  const jobOf = (item: PreparedCreate): { row: R; mine: boolean } => {
    const row = inserted.get(item.id);
    return row ? { row, mine: true } : { row: winners.get(item.scope!)!, mine: false };
  };
  return items.map((item, index): ItemOutcome<CreateJobResult> => {
    const answered = answers[index];
    if (answered) return { ok: true, value: answered };
    const scope = followers.get(index);
    if (scope !== undefined) return { ok: true, value: compare(item, jobOf(leaders.get(scope)!).row) };
    const { row, mine } = jobOf(item);
    return { ok: true, value: mine ? hooks.toResult(row, 'created') : compare(item, row) };
  });
}
