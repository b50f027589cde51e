import { basename, extname } from 'node:path';
import type { AnyContract, ChangeDefinition, ChangeOperation } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { schemaPropertyNames } from '@switchboard/core/kit';
import { eventsTopic } from '@switchboard/messaging';

/**
 * Row changes from SQLite. SQLite has no replication stream, so each declared table gets AFTER
 * INSERT, UPDATE and DELETE triggers that write the change into the transactional outbox, in the
 * transaction that changed the row: the change exists exactly when that transaction commits.
 *
 * A trigger writes a compact **change row**, not a finished broker message: the outbox row's `id`
 * (a UUIDv7 drawn when the row changes, kept with it), the contract's events topic, headers naming
 * the change (`x-sb-change: insert|update|delete`, the contract, event, table and `source`), and a
 * body holding the changed row's columns, each tagged with its storage class so nothing is lost on
 * the way (`{"id":"i42","name":"tAda","photo":"x89504E47","note":null}`: `i` integer, `r` real in 17
 * significant digits, `t` text, `x` blob in hex). The relay (`createSqliteChangeRelay`) turns each
 * change row into the event through the messaging layer's own encoder, for the binding of the broker
 * it publishes to; see `sqlite-relay.ts`.
 */

/**
 * The parts of a `better-sqlite3` database handle the triggers need. Structural, so this package
 * needs no SQLite driver of its own; pass the application's `new Database(file)`.
 */
export interface SqliteDatabase {
  /** The file name the handle was opened with (the default database name of the events' `source`). */
  readonly name: string;
  /** Whether a transaction is open on the handle (the install joins it as a savepoint). */
  readonly inTransaction: boolean;
  exec(sql: string): unknown;
  prepare(sql: string): {
    all(...params: unknown[]): unknown[];
  };
}

export interface SqliteChangeOptions {
  /** The outbox's table prefix, as given to `createSqliteOutbox` (the triggers write to `<prefix>outbox`). Default `sb_`. */
  readonly tablePrefix?: string;
  /**
   * The database's name in the events' `source` (`/sqlite/<database>/<table>`). Default: the
   * file's name without its extension (`orders.db` → `orders`); required for an in-memory database.
   */
  readonly database?: string;
}

export type SqliteChangeProblemCode =
  /** The outbox table does not exist (or lacks a column the triggers write). */
  | 'outbox-missing'
  /** A declared table does not exist. */
  | 'table-missing'
  /** The declared name is a view or a virtual table: no AFTER triggers on it. */
  | 'not-a-table'
  /** The table is declared with a schema other than `main`: triggers and the outbox live in one database file. */
  | 'table-schema'
  /** A declared column (a key column, or a column of the `columns` schema) does not exist. */
  | 'column-missing'
  /** A trigger the declarations need is not installed. */
  | 'trigger-missing'
  /** A trigger is installed but differs from what the declarations and the table need now (a column added, the contract changed). */
  | 'trigger-outdated'
  /** A change trigger of the contract for a table or operation it no longer declares. */
  | 'trigger-extra';

export interface SqliteChangeProblem {
  readonly code: SqliteChangeProblemCode;
  readonly message: string;
  /** How to fix it. */
  readonly fix: string;
  readonly table?: string;
  readonly column?: string;
  readonly trigger?: string;
  /** `installSqliteChangeTriggers` fixes it by itself (the triggers); the others need the schema changed. */
  readonly creatable: boolean;
}

export interface SqliteChangeReport {
  /** No problem found: every trigger is installed and current. */
  readonly ok: boolean;
  readonly problems: readonly SqliteChangeProblem[];
  /** The database's name in `source`. */
  readonly database: string;
  /** The triggers the declarations need, by name. */
  readonly triggers: readonly string[];
}

export interface SqliteChangeInstall {
  /** Every change trigger of the contract, by name. */
  readonly triggers: readonly string[];
  /** Triggers created or replaced by this call (empty when everything was already current). */
  readonly created: readonly string[];
  /** Triggers of operations or tables no longer declared, dropped by this call. */
  readonly dropped: readonly string[];
}

/** One trigger the declarations need. */
interface PlannedTrigger {
  readonly name: string;
  readonly table: string;
  readonly sql: string;
}

interface Plan {
  readonly database: string;
  readonly problems: SqliteChangeProblem[];
  readonly triggers: PlannedTrigger[];
  /** Change triggers of this contract that are installed: name → SQL. */
  readonly installed: Map<string, string>;
}

/** Columns the triggers write into the outbox; the outbox must have them. */
const OUTBOX_COLUMNS = ['id', 'topic', 'headers', 'body', 'created_at'] as const;

/** `json_object` takes up to 1000 arguments in SQLite's default build; this many columns per call keeps well below. */
const COLUMNS_PER_OBJECT = 200;

/** The headers of a change row (the relay reads them; they never reach the broker). */
export const CHANGE_HEADERS = {
  operation: 'x-sb-change',
  contract: 'x-sb-change-contract',
  event: 'x-sb-change-event',
  table: 'x-sb-change-table',
  source: 'x-sb-change-source',
} as const;

/**
 * The doctor: what is missing for row changes of `contract` on this database (the outbox, the
 * declared tables and columns, the triggers and whether they are current). Reads the schema only;
 * changes nothing.
 */
export function checkSqliteChanges(db: SqliteDatabase, contract: AnyContract, options: SqliteChangeOptions = {}): SqliteChangeReport {
  const plan = planTriggers(db, contract, options);
  const problems = [...plan.problems];
  const wanted = new Set(plan.triggers.map((t) => t.name));
  for (const trigger of plan.triggers) {
    const installed = plan.installed.get(trigger.name);
    if (installed === undefined) {
      problems.push({
        code: 'trigger-missing',
        message: `trigger ${trigger.name} on ${trigger.table} is not installed`,
        fix: 'installSqliteChangeTriggers(db, contract)',
        table: trigger.table,
        trigger: trigger.name,
        creatable: true,
      });
    } else if (installed !== trigger.sql) {
      problems.push({
        code: 'trigger-outdated',
        message: `trigger ${trigger.name} on ${trigger.table} differs from what the contract and the table need now`,
        fix: 'installSqliteChangeTriggers(db, contract) again (it replaces it)',
        table: trigger.table,
        trigger: trigger.name,
        creatable: true,
      });
    }
  }
  for (const name of plan.installed.keys()) {
    if (wanted.has(name)) continue;
    problems.push({
      code: 'trigger-extra',
      message: `trigger ${name} writes changes the contract ${contract.name} no longer declares`,
      fix: `installSqliteChangeTriggers(db, contract) (it drops it), or DROP TRIGGER ${quoteIdentifier(name)};`,
      trigger: name,
      creatable: true,
    });
  }
  return { ok: problems.length === 0, problems, database: plan.database, triggers: plan.triggers.map((t) => t.name) };
}

/**
 * Creates the AFTER INSERT / UPDATE / DELETE triggers of every table `contract` declares with
 * `changes(...)`, each writing the change into the outbox (`<prefix>outbox`, which must exist: open
 * the outbox on this database first). Idempotent: triggers already current are left as they are,
 * outdated ones replaced, those of operations or tables no longer declared dropped, all in one
 * `BEGIN IMMEDIATE` transaction (a savepoint of the caller's transaction when one is open). A
 * table, column or outbox that does not exist is an `SB_CHANGES_SETUP` error listing each problem
 * and its fix; nothing changes.
 *
 * Install again after adding a column to a table whose `columns` schema does not describe its
 * properties (then every column is captured) — `checkSqliteChanges` reports `trigger-outdated`.
 */
export function installSqliteChangeTriggers(
  db: SqliteDatabase,
  contract: AnyContract,
  options: SqliteChangeOptions = {},
): SqliteChangeInstall {
  // Read and write under the write lock, so two processes installing at once do not both create a trigger.
  const outer = !db.inTransaction;
  db.exec(outer ? 'BEGIN IMMEDIATE' : 'SAVEPOINT sb_change_triggers');
  const created: string[] = [];
  const dropped: string[] = [];
  let plan: Plan;
  try {
    plan = planTriggers(db, contract, options);
    if (plan.problems.length > 0) {
      throw new SwitchboardError('SB_CHANGES_SETUP', {
        detail: plan.problems.map((p) => `${p.message}. Fix: ${p.fix}`).join(' | '),
        extensions: { problems: plan.problems },
      });
    }
    const wanted = new Set(plan.triggers.map((t) => t.name));
    for (const name of plan.installed.keys()) {
      if (wanted.has(name)) continue;
      db.exec(`DROP TRIGGER ${quoteIdentifier(name)}`);
      dropped.push(name);
    }
    for (const trigger of plan.triggers) {
      const installed = plan.installed.get(trigger.name);
      if (installed === trigger.sql) continue;
      if (installed !== undefined) db.exec(`DROP TRIGGER ${quoteIdentifier(trigger.name)}`);
      db.exec(trigger.sql);
      created.push(trigger.name);
    }
    db.exec(outer ? 'COMMIT' : 'RELEASE sb_change_triggers');
  } catch (error) {
    if (outer) {
      if (db.inTransaction) db.exec('ROLLBACK');
    } else {
      db.exec('ROLLBACK TO sb_change_triggers');
      db.exec('RELEASE sb_change_triggers');
    }
    if (error instanceof SwitchboardError) throw error;
    throw new SwitchboardError('SB_CHANGES_SETUP', {
      detail: `installing the change triggers failed: ${(error as Error).message}`,
      cause: error,
    });
  }
  return { triggers: plan.triggers.map((t) => t.name), created, dropped };
}

/** The name of a table in SQLite: the declared one without `main.`; undefined when declared in another schema. */
export function sqliteTableName(declaration: ChangeDefinition): string | undefined {
  if (!declaration.table.includes('.')) return declaration.table;
  return declaration.schema === 'main' ? declaration.name : undefined;
}

/** `/sqlite/<database>/<table>`, each part percent-encoded. */
export function sqliteSource(database: string, table: string): string {
  return `/sqlite/${encodeURIComponent(database)}/${encodeURIComponent(table)}`;
}

function planTriggers(db: SqliteDatabase, contract: AnyContract, options: SqliteChangeOptions): Plan {
  const database = databaseName(db, options);
  const outbox = outboxTable(options.tablePrefix);
  const problems: SqliteChangeProblem[] = [];
  const triggers: PlannedTrigger[] = [];

  const outboxColumns = new Set(columnsOf(db, outbox).map((c) => c.name));
  if (outboxColumns.size === 0) {
    problems.push({
      code: 'outbox-missing',
      message: `the outbox table ${outbox} does not exist in ${db.name}`,
      fix: `open the outbox on this database first: createSqliteOutbox({ database: db${options.tablePrefix === undefined ? '' : `, tablePrefix: '${options.tablePrefix}'`} })`,
      table: outbox,
      creatable: false,
    });
  } else {
    for (const column of OUTBOX_COLUMNS) {
      if (outboxColumns.has(column)) continue;
      problems.push({
        code: 'outbox-missing',
        message: `the outbox table ${outbox} has no column ${column}: it is not a Switchboard outbox`,
        fix: `use the outbox's own table prefix (tablePrefix), or let createSqliteOutbox create ${outbox}`,
        table: outbox,
        column,
        creatable: false,
      });
    }
  }

  const prefix = `${triggerPrefix(options.tablePrefix)}${contract.name}_`;
  const installed = new Map<string, string>();
  for (const row of db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string }[]) {
    if (row.name.startsWith(prefix)) installed.set(row.name, row.sql);
  }

  for (const declaration of contract.changes) {
    const table = sqliteTableName(declaration);
    if (table === undefined) {
      problems.push({
        code: 'table-schema',
        message: `${declaration.table} is declared in schema ${declaration.schema}; SQLite change triggers write to the outbox of the same database`,
        fix: `declare the table without a schema: changes('${declaration.name}', ...)`,
        table: declaration.table,
        creatable: false,
      });
      continue;
    }
    const kind = objectType(db, table);
    if (kind === undefined) {
      problems.push({
        code: 'table-missing',
        message: `table ${table} does not exist in ${db.name}`,
        fix: `CREATE TABLE ${quoteIdentifier(table)} (...) before installing the triggers, or correct the name in changes('${declaration.table}', ...)`,
        table,
        creatable: false,
      });
      continue;
    }
    if (kind !== 'table') {
      problems.push({
        code: 'not-a-table',
        message: `${table} is a ${kind}: SQLite has no AFTER triggers on it`,
        fix: `declare the table the rows are stored in instead of ${table}`,
        table,
        creatable: false,
      });
      continue;
    }
    const columns = columnsOf(db, table);
    const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c.name]));
    const declared = schemaPropertyNames(declaration.columns);
    // The captured columns, named as the schema names them: the schema's and the key's, or else every column and the key's.
    const wanted: string[] = [];
    for (const name of [...(declared ?? columns.map((c) => c.name)), ...declaration.key]) {
      if (!wanted.some((w) => w.toLowerCase() === name.toLowerCase())) wanted.push(name);
    }
    let missing = false;
    const captured: { key: string; column: string }[] = [];
    for (const name of wanted) {
      const column = byName.get(name.toLowerCase());
      if (column === undefined) {
        missing = true;
        const isKey = (declaration.key as readonly string[]).includes(name);
        problems.push({
          code: 'column-missing',
          message: `table ${table} has no column ${name}${isKey ? ' (a key column)' : ' (in the columns schema)'}`,
          fix: isKey
            ? `ALTER TABLE ${quoteIdentifier(table)} ADD COLUMN ${quoteIdentifier(name)} ...; or name an existing column in key`
            : `ALTER TABLE ${quoteIdentifier(table)} ADD COLUMN ${quoteIdentifier(name)} ...; or remove ${name} from the columns schema`,
          table,
          column: name,
          creatable: false,
        });
      } else captured.push({ key: name, column });
    }
    if (missing) continue;
    const keyColumns = captured.filter((c) => (declaration.key as readonly string[]).some((k) => k.toLowerCase() === c.key.toLowerCase()));
    for (const operation of ['insert', 'update', 'delete'] as const) {
      const event = declaration.events[operation];
      if (event === undefined) continue;
      const name = `${prefix}${table}_${operation}`;
      const headers = {
        [CHANGE_HEADERS.operation]: operation,
        [CHANGE_HEADERS.contract]: contract.name,
        [CHANGE_HEADERS.event]: event,
        [CHANGE_HEADERS.table]: table,
        [CHANGE_HEADERS.source]: sqliteSource(database, table),
      };
      triggers.push({
        name,
        table,
        sql: triggerSql({
          name,
          table,
          operation,
          outbox,
          topic: eventsTopic(contract),
          headers: JSON.stringify(headers),
          columns: operation === 'delete' ? keyColumns : captured,
        }),
      });
    }
  }
  return { database, problems, triggers, installed };
}

/**
 * The trigger: one INSERT into the outbox per changed row, in the changing statement's
 * transaction. The id is a UUIDv7 drawn here (48 bits of milliseconds, 74 random bits), stored
 * with the row, so every relay that reads the row publishes it with that id.
 */
function triggerSql(spec: {
  name: string;
  table: string;
  operation: ChangeOperation;
  outbox: string;
  topic: string;
  headers: string;
  columns: readonly { key: string; column: string }[];
}): string {
  const row = spec.operation === 'delete' ? 'OLD' : 'NEW';
  const chunks: string[] = [];
  for (let i = 0; i < spec.columns.length; i += COLUMNS_PER_OBJECT) {
    const pairs = spec.columns
      .slice(i, i + COLUMNS_PER_OBJECT)
      .map(({ key, column }) => `${quoteLiteral(key)}, ${tagged(`${row}.${quoteIdentifier(column)}`)}`);
    chunks.push(`json_object(${pairs.join(', ')})`);
  }
  // Several objects join into one: every value is a string or null, so each object ends with exactly one '}' and starts with one '{'.
  const body =
    chunks.length === 0
      ? `'{}'`
      : chunks.length === 1
        ? chunks[0]
        : chunks
            .map((chunk, i) =>
              i === 0 ? `rtrim(${chunk}, '}')` : i === chunks.length - 1 ? `ltrim(${chunk}, '{')` : `trim(${chunk}, '{}')`,
            )
            .join(` || ',' || `);
  const id =
    `substr(sb_t, 1, 8) || '-' || substr(sb_t, 9, 4) || '-7' || substr(sb_r, 1, 3) || '-' || ` +
    `substr('89ab', 1 + (instr('0123456789abcdef', substr(sb_r, 4, 1)) - 1) % 4, 1) || substr(sb_r, 5, 3) || '-' || substr(sb_r, 8, 12)`;
  return (
    `CREATE TRIGGER ${quoteIdentifier(spec.name)} AFTER ${spec.operation.toUpperCase()} ON ${quoteIdentifier(spec.table)} FOR EACH ROW BEGIN\n` +
    `  INSERT INTO ${quoteIdentifier(spec.outbox)} (id, topic, headers, body, created_at)\n` +
    `  SELECT ${id},\n` +
    `    ${quoteLiteral(spec.topic)}, ${quoteLiteral(spec.headers)},\n` +
    `    CAST(${body} AS BLOB), sb_ms\n` +
    `  FROM (SELECT printf('%012x', sb_ms) AS sb_t, lower(hex(randomblob(10))) AS sb_r, sb_ms\n` +
    `        FROM (SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS sb_ms));\n` +
    'END'
  );
}

/** A column value as a string tagged with its storage class (`i`, `r`, `t`, `x`), or NULL. */
function tagged(value: string): string {
  return (
    `CASE typeof(${value}) WHEN 'integer' THEN 'i' || ${value} WHEN 'real' THEN 'r' || printf('%!.17g', ${value}) ` +
    `WHEN 'text' THEN 't' || ${value} WHEN 'blob' THEN 'x' || hex(${value}) END`
  );
}

/** The columns of a table, generated ones included (hidden columns of virtual tables excluded). */
function columnsOf(db: SqliteDatabase, table: string): { readonly name: string }[] {
  return db.prepare('SELECT name FROM pragma_table_xinfo(?) WHERE hidden <> 1').all(table) as { name: string }[];
}

function objectType(db: SqliteDatabase, name: string): 'table' | 'view' | 'virtual table' | undefined {
  const rows = db.prepare("SELECT type, sql FROM sqlite_master WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE").all(name) as {
    type: 'table' | 'view';
    sql: string | null;
  }[];
  const row = rows[0];
  if (row === undefined) return undefined;
  return row.type === 'table' && /^\s*CREATE\s+VIRTUAL\b/i.test(row.sql ?? '') ? 'virtual table' : row.type;
}

function databaseName(db: SqliteDatabase, options: SqliteChangeOptions): string {
  if (options.database !== undefined) {
    if (typeof options.database !== 'string' || options.database === '') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: '`database` must be a non-empty string' });
    }
    return options.database;
  }
  const file = db.name;
  if (file === '' || file === ':memory:' || file.startsWith('file::memory:')) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: 'an in-memory database has no file name: pass `database` (its name in the events’ source)',
    });
  }
  const base = basename(file);
  return base.slice(0, base.length - extname(base).length) || base;
}

function checkedPrefix(prefix: string | undefined): string {
  const value = prefix ?? 'sb_';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `table prefix "${value}" must be letters, digits and _` });
  }
  return value;
}

/** The outbox table, named as `createSqliteOutbox` names it. */
function outboxTable(prefix: string | undefined): string {
  return `${checkedPrefix(prefix)}outbox`;
}

/** `<prefix>changes_`: change triggers are `<prefix>changes_<contract>_<table>_<operation>` (a contract name has no `_`). */
function triggerPrefix(prefix: string | undefined): string {
  return `${checkedPrefix(prefix)}changes_`;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
