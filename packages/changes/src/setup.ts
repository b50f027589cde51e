import type { AnyContract, ChangeDefinition, ChangeOperation } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { schemaPropertyNames } from '@switchboard/core/kit';
import pg from 'pg';
import { quoteIdentifier, quoteLiteral } from './replication.js';
import type { TypeInfo } from './values.js';

/**
 * What a change source needs from PostgreSQL, checked before it starts (and by `checkPostgresChanges`,
 * the doctor a CLI can call): `wal_level = logical`, a role that may replicate, the declared tables
 * and columns, a replica identity that carries the key, the publication (with every table and
 * operation), and a `pgoutput` slot of this database. Each problem says how to fix it, in SQL where
 * SQL fixes it.
 */

export type ChangeSetupProblemCode =
  /** `wal_level` is not `logical`. */
  | 'wal-level'
  /** `max_replication_slots` or `max_wal_senders` is 0. */
  | 'replication-capacity'
  /** The role lacks REPLICATION, or cannot create what it was asked to create. */
  | 'privileges'
  /** A declared table does not exist. */
  | 'table-missing'
  /** A declared column (a key column, or a column of the `columns` schema) does not exist. */
  | 'column-missing'
  /** Updates or deletes are declared but the table has no replica identity (PostgreSQL would refuse them once published). */
  | 'replica-identity'
  /** Deletes are declared but the key columns are not all in the replica identity (a delete would not carry them). */
  | 'key-not-identity'
  | 'publication-missing'
  /** The publication does not include a declared table. */
  | 'publication-table-missing'
  /** The publication does not publish a declared operation. */
  | 'publication-operation'
  /** The publication's column list leaves out a declared column. */
  | 'publication-columns'
  | 'slot-missing'
  /** The slot exists but is physical, uses another plugin, or belongs to another database. */
  | 'slot-mismatch'
  /** The slot was invalidated (the server removed WAL it still needed, `max_slot_wal_keep_size`). */
  | 'slot-invalidated'
  /** Another connection is streaming from the slot. */
  | 'slot-active';

export interface ChangeSetupProblem {
  readonly code: ChangeSetupProblemCode;
  readonly message: string;
  /** How to fix it: SQL to run, or what to change. */
  readonly fix: string;
  readonly table?: string;
  readonly column?: string;
  /** The change source creates it itself when its `create` option allows (the publication, its tables, the slot). */
  readonly creatable: boolean;
}

export interface ChangeSetupReport {
  /** No problem found. */
  readonly ok: boolean;
  readonly problems: readonly ChangeSetupProblem[];
  readonly database: string;
  readonly user: string;
  readonly walLevel: string;
}

export interface ChangeSetupOptions {
  /** PostgreSQL connection: a URL or a `pg` client configuration. */
  readonly connection: string | pg.ClientConfig;
  /** The contract whose `changes` are checked. */
  readonly contract: AnyContract;
  readonly slot: string;
  readonly publication: string;
}

/** One column as the catalog has it. */
export interface ColumnInfo {
  readonly name: string;
  readonly typeOid: number;
}

/** One declared table as the catalog has it. */
export interface TableInfo {
  readonly declaration: ChangeDefinition;
  /** `schema.table`. */
  readonly qualified: string;
  readonly exists: boolean;
  readonly owned: boolean;
  readonly columns: readonly ColumnInfo[];
  /** Columns of the replica identity (all of them for FULL, none for NOTHING or DEFAULT without a primary key). */
  readonly identity: readonly string[];
  readonly identityKind: 'default' | 'nothing' | 'full' | 'index';
}

/** Everything the inspection found, for the source: the report and what it learned about the tables and types. */
export interface Inspection {
  readonly report: ChangeSetupReport;
  readonly tables: readonly TableInfo[];
  /** Domains and array types of the declared tables' columns that the built-in converters do not know. */
  readonly types: ReadonlyMap<number, TypeInfo>;
  readonly publicationExists: boolean;
  readonly slotExists: boolean;
}

/** The doctor: what is missing for a change source with these options. Reads the catalog only; changes nothing. */
export async function checkPostgresChanges(options: ChangeSetupOptions): Promise<ChangeSetupReport> {
  const client = new pg.Client(clientConfig(options.connection));
  await connect(client);
  try {
    return (await inspect(client, options)).report;
  } finally {
    await client.end().catch(() => {});
  }
}

export function clientConfig(connection: string | pg.ClientConfig): pg.ClientConfig {
  return typeof connection === 'string' ? { connectionString: connection } : connection;
}

export async function connect(client: pg.Client): Promise<void> {
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new SwitchboardError('SB_UNAVAILABLE', { detail: `cannot connect to PostgreSQL: ${(error as Error).message}`, cause: error });
  }
}

const OPERATIONS: readonly ChangeOperation[] = ['insert', 'update', 'delete'];

/** The operations the contract publishes for a table. */
export function declaredOperations(declaration: ChangeDefinition): ChangeOperation[] {
  return OPERATIONS.filter((operation) => declaration.events[operation] !== undefined);
}

export async function inspect(client: pg.Client, options: Omit<ChangeSetupOptions, 'connection'>): Promise<Inspection> {
  const { contract, slot, publication } = options;
  const problems: ChangeSetupProblem[] = [];
  const declarations = contract.changes;
  if (declarations.length === 0) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `contract ${contract.name} declares no changes (defineContract({ changes: [...] }))`,
    });
  }

  const server = (
    await client.query<{
      wal_level: string;
      max_replication_slots: number;
      max_wal_senders: number;
      database: string;
      user: string;
      can_replicate: boolean;
      superuser: boolean;
      can_create: boolean;
    }>(
      `SELECT current_setting('wal_level') AS wal_level,
              current_setting('max_replication_slots')::int AS max_replication_slots,
              current_setting('max_wal_senders')::int AS max_wal_senders,
              current_database() AS database, current_user AS user,
              r.rolreplication OR r.rolsuper AS can_replicate, r.rolsuper AS superuser,
              has_database_privilege(current_database(), 'CREATE') AS can_create
         FROM pg_roles r WHERE r.rolname = current_user`,
    )
  ).rows[0];
  if (server === undefined) throw new SwitchboardError('SB_INTERNAL', { detail: 'the current role is not in pg_roles' });
  const user = quoteIdentifier(server.user);

  if (server.wal_level !== 'logical') {
    problems.push({
      code: 'wal-level',
      message: `wal_level is '${server.wal_level}'; logical decoding needs 'logical'`,
      fix: "ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL",
      creatable: false,
    });
  }
  if (server.max_replication_slots < 1 || server.max_wal_senders < 1) {
    problems.push({
      code: 'replication-capacity',
      message: `max_replication_slots is ${server.max_replication_slots} and max_wal_senders ${server.max_wal_senders}; each must be at least 1`,
      fix: 'ALTER SYSTEM SET max_replication_slots = 10; ALTER SYSTEM SET max_wal_senders = 10; then restart PostgreSQL',
      creatable: false,
    });
  }
  if (!server.can_replicate) {
    problems.push({
      code: 'privileges',
      message: `role ${server.user} may not stream changes: it lacks the REPLICATION attribute`,
      fix: `ALTER ROLE ${user} WITH REPLICATION; (as a superuser)`,
      creatable: false,
    });
  }

  // --- tables, columns, replica identity
  const schemas = declarations.map((d) => d.schema);
  const names = declarations.map((d) => d.name);
  const found = await client.query<{ schema: string; name: string; oid: number; replident: string; owned: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.oid::int AS oid, c.relreplident AS replident,
            pg_has_role(c.relowner, 'USAGE') AS owned
       FROM unnest($1::text[], $2::text[]) AS t(schema, name)
       JOIN pg_namespace n ON n.nspname = t.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')`,
    [schemas, names],
  );
  const oids = found.rows.map((r) => r.oid);
  const columns = await client.query<{ oid: number; name: string; type: number; base: number; elem: number; elem_base: number }>(
    `SELECT a.attrelid::int AS oid, a.attname AS name, a.atttypid::int AS type,
            CASE WHEN t.typtype = 'd' THEN t.typbasetype::int ELSE 0 END AS base,
            t.typelem::int AS elem,
            CASE WHEN e.typtype = 'd' THEN e.typbasetype::int ELSE 0 END AS elem_base
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const identity = await client.query<{ oid: number; name: string; primary: boolean; replident: boolean }>(
    `SELECT i.indrelid::int AS oid, a.attname AS name, i.indisprimary AS primary, i.indisreplident AS replident
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = ANY($1::oid[]) AND (i.indisprimary OR i.indisreplident)`,
    [oids],
  );
  const types = new Map<number, TypeInfo>();
  for (const c of columns.rows) {
    if (c.base !== 0) types.set(c.type, { baseOid: c.base });
    else if (c.elem !== 0) types.set(c.type, { elementOid: c.elem });
    if (c.elem_base !== 0) types.set(c.elem, { baseOid: c.elem_base });
  }

  const tables: TableInfo[] = declarations.map((declaration) => {
    const qualified = `${declaration.schema}.${declaration.name}`;
    const row = found.rows.find((r) => r.schema === declaration.schema && r.name === declaration.name);
    if (row === undefined) {
      return { declaration, qualified, exists: false, owned: false, columns: [], identity: [], identityKind: 'nothing' };
    }
    const cols = columns.rows.filter((c) => c.oid === row.oid).map((c) => ({ name: c.name, typeOid: c.type }));
    const kind = ({ d: 'default', n: 'nothing', f: 'full', i: 'index' } as const)[row.replident as 'd' | 'n' | 'f' | 'i'] ?? 'default';
    const indexed = identity.rows.filter((r) => r.oid === row.oid);
    const identityColumns =
      kind === 'full'
        ? cols.map((c) => c.name)
        : kind === 'default'
          ? indexed.filter((r) => r.primary).map((r) => r.name)
          : kind === 'index'
            ? indexed.filter((r) => r.replident).map((r) => r.name)
            : [];
    return { declaration, qualified, exists: true, owned: row.owned, columns: cols, identity: identityColumns, identityKind: kind };
  });

  for (const table of tables) {
    const { declaration, qualified } = table;
    const sqlName = `${quoteIdentifier(declaration.schema)}.${quoteIdentifier(declaration.name)}`;
    if (!table.exists) {
      problems.push({
        code: 'table-missing',
        table: qualified,
        message: `table ${qualified} does not exist`,
        fix: `create it, or correct changes('${declaration.table}') in contract ${contract.name} (names as the catalog spells them)`,
        creatable: false,
      });
      continue;
    }
    const known = new Set(table.columns.map((c) => c.name));
    const wanted = [...new Set([...declaration.key, ...(schemaPropertyNames(declaration.columns) ?? [])])];
    for (const column of wanted) {
      if (known.has(column)) continue;
      problems.push({
        code: 'column-missing',
        table: qualified,
        column,
        message: `column ${column} of ${declaration.key.includes(column) ? 'the key' : 'the columns schema'} does not exist in ${qualified} (it has ${[...known].join(', ')})`,
        fix: `add the column, or correct changes('${declaration.table}') in contract ${contract.name}`,
        creatable: false,
      });
    }
    const operations = declaredOperations(declaration);
    const changesRows = operations.includes('update') || operations.includes('delete');
    if (changesRows && table.identity.length === 0) {
      problems.push({
        code: 'replica-identity',
        table: qualified,
        message: `${qualified} has no replica identity (${table.identityKind === 'nothing' ? 'REPLICA IDENTITY NOTHING' : 'no primary key'}), so PostgreSQL refuses its updates and deletes once they are published`,
        fix: `ALTER TABLE ${sqlName} ADD PRIMARY KEY (...); or ALTER TABLE ${sqlName} REPLICA IDENTITY FULL;`,
        creatable: false,
      });
    } else if (operations.includes('delete')) {
      const missing = declaration.key.filter((column) => known.has(column) && !table.identity.includes(column));
      if (missing.length > 0) {
        problems.push({
          code: 'key-not-identity',
          table: qualified,
          column: missing.join(', '),
          message: `key column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${qualified} ${missing.length > 1 ? 'are' : 'is'} not in its replica identity (${table.identity.join(', ')}), so a delete would not carry ${missing.length > 1 ? 'them' : 'it'}`,
          fix: `ALTER TABLE ${sqlName} REPLICA IDENTITY FULL; or declare key: [${table.identity.map((c) => `'${c}'`).join(', ')}]`,
          creatable: false,
        });
      }
    }
  }

  // --- publication
  const publicationRow = (
    await client.query<{ all: boolean; insert: boolean; update: boolean; delete: boolean }>(
      'SELECT puballtables AS all, pubinsert AS insert, pubupdate AS update, pubdelete AS delete FROM pg_publication WHERE pubname = $1',
      [publication],
    )
  ).rows[0];
  const existing = tables.filter((t) => t.exists);
  const tableList = existing.map((t) => `${quoteIdentifier(t.declaration.schema)}.${quoteIdentifier(t.declaration.name)}`).join(', ');
  const neededOperations = OPERATIONS.filter((op) => declarations.some((d) => d.events[op] !== undefined));
  if (publicationRow === undefined) {
    const notOwned = existing.filter((t) => !t.owned && !server.superuser).map((t) => t.qualified);
    problems.push({
      code: 'publication-missing',
      message: `publication ${publication} does not exist${notOwned.length > 0 ? ` (and role ${server.user} does not own ${notOwned.join(', ')}, so it cannot create it)` : ''}`,
      fix: `CREATE PUBLICATION ${quoteIdentifier(publication)} FOR TABLE ${tableList || '<tables>'} WITH (publish = '${neededOperations.join(', ')}');`,
      creatable: notOwned.length === 0,
    });
  } else {
    // `SELECT *`: `attnames` (the column list) exists from PostgreSQL 15 on.
    const published = await client.query<{ schemaname: string; tablename: string; attnames?: string[] | null }>(
      'SELECT * FROM pg_publication_tables WHERE pubname = $1',
      [publication],
    );
    for (const table of existing) {
      const entry = published.rows.find((r) => r.schemaname === table.declaration.schema && r.tablename === table.declaration.name);
      const sqlName = `${quoteIdentifier(table.declaration.schema)}.${quoteIdentifier(table.declaration.name)}`;
      if (entry === undefined) {
        const canAdd = table.owned || server.superuser;
        problems.push({
          code: 'publication-table-missing',
          table: table.qualified,
          message: `publication ${publication} does not include ${table.qualified}${canAdd ? '' : ` (and role ${server.user} does not own it, so it cannot add it)`}`,
          fix: `ALTER PUBLICATION ${quoteIdentifier(publication)} ADD TABLE ${sqlName};`,
          creatable: canAdd,
        });
        continue;
      }
      const attnames = entry.attnames;
      if (Array.isArray(attnames)) {
        const wanted = [...new Set([...table.declaration.key, ...(schemaPropertyNames(table.declaration.columns) ?? [])])];
        const left = wanted.filter((c) => table.columns.some((col) => col.name === c) && !attnames.includes(c));
        if (left.length > 0) {
          problems.push({
            code: 'publication-columns',
            table: table.qualified,
            column: left.join(', '),
            message: `publication ${publication} publishes only the columns ${attnames.join(', ')} of ${table.qualified}, not ${left.join(', ')}`,
            fix: `ALTER PUBLICATION ${quoteIdentifier(publication)} SET TABLE ${sqlName} (${[...new Set([...attnames, ...left])].map(quoteIdentifier).join(', ')});`,
            creatable: false,
          });
        }
      }
    }
    const unpublished = neededOperations.filter((op) => !publicationRow[op]);
    if (unpublished.length > 0) {
      const all = OPERATIONS.filter((op) => publicationRow[op] || unpublished.includes(op));
      problems.push({
        code: 'publication-operation',
        message: `publication ${publication} does not publish ${unpublished.join(', ')}`,
        fix: `ALTER PUBLICATION ${quoteIdentifier(publication)} SET (publish = '${all.join(', ')}');`,
        creatable: false,
      });
    }
  }

  // --- slot
  const slotRow = (
    await client.query<{
      plugin: string | null;
      slot_type: string;
      database: string | null;
      active: boolean;
      active_pid: number | null;
      wal_status: string | null;
    }>(`SELECT plugin, slot_type, database, active, active_pid, wal_status FROM pg_replication_slots WHERE slot_name = $1`, [slot])
  ).rows[0];
  if (slotRow === undefined) {
    problems.push({
      code: 'slot-missing',
      message: `replication slot ${slot} does not exist${server.can_replicate ? '' : ` (and role ${server.user} cannot create it without REPLICATION)`}`,
      fix: `SELECT pg_create_logical_replication_slot(${quoteLiteral(slot)}, 'pgoutput');`,
      creatable: server.can_replicate,
    });
  } else if (slotRow.slot_type !== 'logical' || slotRow.plugin !== 'pgoutput' || slotRow.database !== server.database) {
    problems.push({
      code: 'slot-mismatch',
      message: `replication slot ${slot} is a ${slotRow.slot_type} slot${slotRow.plugin ? ` of plugin ${slotRow.plugin}` : ''}${slotRow.database ? ` in database ${slotRow.database}` : ''}; a change source needs a logical pgoutput slot of ${server.database}`,
      fix: `use another slot name, or (if nothing else reads it) SELECT pg_drop_replication_slot(${quoteLiteral(slot)}); and let the source create it`,
      creatable: false,
    });
  } else if (slotRow.wal_status === 'lost') {
    problems.push({
      code: 'slot-invalidated',
      message: `replication slot ${slot} was invalidated: the server removed WAL it still needed (max_slot_wal_keep_size), so changes since its position are gone`,
      fix: `SELECT pg_drop_replication_slot(${quoteLiteral(slot)}); then create it again (and reconcile what was missed)`,
      creatable: false,
    });
  } else if (slotRow.active) {
    problems.push({
      code: 'slot-active',
      message: `replication slot ${slot} is in use by another connection (pid ${slotRow.active_pid ?? '?'})`,
      fix: `stop the other change source, or SELECT pg_terminate_backend(${slotRow.active_pid ?? '<pid>'}); if it is stale`,
      creatable: false,
    });
  }

  return {
    report: { ok: problems.length === 0, problems, database: server.database, user: server.user, walLevel: server.wal_level },
    tables,
    types,
    publicationExists: publicationRow !== undefined,
    slotExists: slotRow !== undefined,
  };
}

export interface CreateOptions {
  readonly publication: boolean;
  readonly slot: boolean;
}

/**
 * Creates what the inspection found missing and may be created: the publication (for the declared
 * tables and operations) or the tables it lacks, then the slot. Returns whether it created anything.
 */
export async function createMissing(
  client: pg.Client,
  inspection: Inspection,
  options: Omit<ChangeSetupOptions, 'connection'>,
  allowed: CreateOptions,
): Promise<boolean> {
  const { problems } = inspection.report;
  // Nothing can be created while the server is not ready for it.
  if (problems.some((p) => p.code === 'wal-level' || p.code === 'table-missing')) return false;
  let created = false;
  const publication = quoteIdentifier(options.publication);
  const name = (t: TableInfo) => `${quoteIdentifier(t.declaration.schema)}.${quoteIdentifier(t.declaration.name)}`;
  if (allowed.publication) {
    const missing = problems.find((p) => p.code === 'publication-missing');
    if (missing?.creatable) {
      const operations = OPERATIONS.filter((op) => options.contract.changes.some((d) => d.events[op] !== undefined));
      await client.query(
        `CREATE PUBLICATION ${publication} FOR TABLE ${inspection.tables.map(name).join(', ')} WITH (publish = '${operations.join(', ')}')`,
      );
      created = true;
    }
    for (const problem of problems) {
      if (problem.code !== 'publication-table-missing' || !problem.creatable) continue;
      const table = inspection.tables.find((t) => t.qualified === problem.table);
      if (table === undefined) continue;
      await client.query(`ALTER PUBLICATION ${publication} ADD TABLE ${name(table)}`);
      created = true;
    }
  }
  if (allowed.slot && problems.find((p) => p.code === 'slot-missing')?.creatable) {
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [options.slot]);
    created = true;
  }
  return created;
}

/** The `SB_CHANGES_SETUP` error of a report with problems: every problem and its fix in `detail`, the list in `problems`. */
export function setupError(report: ChangeSetupReport): SwitchboardError {
  return new SwitchboardError('SB_CHANGES_SETUP', {
    detail: report.problems.map((p) => `${p.message}. Fix: ${p.fix}`).join(' | '),
    extensions: { problems: report.problems },
  });
}
