import type { AnyContract } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { collect } from '../command.js';
import { CliError, useColor } from '../io.js';
import { loadContracts } from '../load.js';

/** One finding: `ok`, `warn` (works, but not safe as configured) or `fail`. */
export interface Check {
  readonly engine: string;
  readonly target: string;
  readonly check: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
}

interface DoctorFlags {
  readonly contract?: string;
  readonly export?: string[];
  readonly broker?: string[];
  readonly store?: string[];
  readonly changes?: string;
  readonly slot?: string;
  readonly publication?: string;
  readonly maxSlotLag?: string;
  readonly timeout?: string;
  readonly json?: boolean;
  readonly color?: boolean;
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

/** Rejects after `ms` so that an unreachable engine fails the check instead of hanging. */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function redis(url: string, ms: number): Promise<Check[]> {
  const target = redact(url);
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: ms });
  client.on('error', () => {});
  const base = { engine: 'redis', target };
  try {
    await within(ms, 'connect', client.connect());
  } catch (error) {
    client.disconnect();
    return [{ ...base, check: 'reachable', status: 'fail', detail: message(error) }];
  }
  const checks: Check[] = [{ ...base, check: 'reachable', status: 'ok', detail: 'PING answered' }];
  try {
    const [, appendonly] = (await client.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await client.config('GET', 'appendfsync')) as string[];
    checks.push({
      ...base,
      check: 'appendonly',
      status: appendonly === 'yes' ? 'ok' : 'fail',
      detail:
        appendonly === 'yes'
          ? 'AOF on'
          : `appendonly is ${appendonly}: a restart loses every stream entry since the last RDB snapshot (CONFIG SET appendonly yes)`,
    });
    checks.push({
      ...base,
      check: 'appendfsync',
      status: fsync === 'always' ? 'ok' : fsync === 'everysec' ? 'warn' : 'fail',
      detail:
        fsync === 'always'
          ? 'every write is fsynced'
          : fsync === 'everysec'
            ? 'everysec: a crash of the host may lose up to a second of confirmed messages'
            : `appendfsync is ${fsync}: the OS decides when confirmed messages reach the disk`,
    });
  } catch (error) {
    checks.push({
      ...base,
      check: 'appendonly',
      status: 'warn',
      detail: `CONFIG GET refused (${message(error)}): check appendonly/appendfsync by hand`,
    });
  } finally {
    client.disconnect();
  }
  return checks;
}

async function nats(url: string, ms: number): Promise<Check[]> {
  const target = redact(url);
  const base = { engine: 'nats', target };
  const [{ connect }, { jetstreamManager }] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
  const parsed = new URL(url);
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: `${parsed.hostname}:${parsed.port || '4222'}`, timeout: ms, reconnect: false });
  } catch (error) {
    return [{ ...base, check: 'reachable', status: 'fail', detail: message(error) }];
  }
  const checks: Check[] = [{ ...base, check: 'reachable', status: 'ok', detail: `server ${nc.info?.version ?? '?'}` }];
  try {
    const jsm = await within(ms, 'JetStream', jetstreamManager(nc));
    const info = await within(ms, 'JetStream account info', jsm.getAccountInfo());
    checks.push({ ...base, check: 'jetstream', status: 'ok', detail: `enabled (${info.streams} stream(s))` });
    const prefix = parsed.searchParams.get('prefix');
    for await (const stream of jsm.streams.list()) {
      if (prefix !== null && !stream.config.name.startsWith(prefix.replace(/[^A-Za-z0-9_-]/g, '_'))) continue;
      const storage = String(stream.config.storage);
      checks.push({
        ...base,
        check: `stream ${stream.config.name}`,
        status: storage === 'file' ? 'ok' : 'fail',
        detail:
          storage === 'file'
            ? `file storage, ${stream.config.num_replicas} replica(s)`
            : `${storage} storage: lost when the server restarts`,
      });
    }
  } catch (error) {
    checks.push({
      ...base,
      check: 'jetstream',
      status: 'fail',
      detail: `JetStream not available (${message(error)}): start nats-server with -js`,
    });
  } finally {
    await nc.close();
  }
  return checks;
}

async function rabbitmq(url: string, ms: number): Promise<Check[]> {
  const base = { engine: 'rabbitmq', target: redact(url) };
  const amqp = await import('amqplib');
  try {
    const connection = await within(ms, 'connect', amqp.connect(url, { timeout: ms }));
    const properties = (connection as unknown as { connection?: { serverProperties?: Record<string, unknown> } }).connection
      ?.serverProperties;
    await connection.close();
    return [{ ...base, check: 'reachable', status: 'ok', detail: `RabbitMQ ${String(properties?.version ?? '')}`.trim() }];
  } catch (error) {
    return [{ ...base, check: 'reachable', status: 'fail', detail: message(error) }];
  }
}

interface PostgresOptions {
  readonly changes: boolean;
  /** The contract whose `changes(...)` the source publishes: the full setup check of `@switchboard/changes`. */
  readonly contract?: AnyContract;
  readonly slot?: string;
  readonly publication?: string;
  readonly maxSlotLagBytes: number;
}

async function postgres(url: string, ms: number, options: PostgresOptions): Promise<Check[]> {
  const base = { engine: 'postgres', target: redact(url) };
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: ms });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    return [{ ...base, check: 'reachable', status: 'fail', detail: message(error) }];
  }
  const checks: Check[] = [];
  try {
    const version = await client.query<{ server_version: string }>('SHOW server_version');
    checks.push({ ...base, check: 'reachable', status: 'ok', detail: `PostgreSQL ${version.rows[0]?.server_version ?? '?'}` });
    if (!options.changes) return checks;
    const wal = (await client.query<{ wal_level: string }>('SHOW wal_level')).rows[0]?.wal_level;
    checks.push({
      ...base,
      check: 'wal_level',
      status: wal === 'logical' ? 'ok' : 'fail',
      detail: wal === 'logical' ? 'logical' : `wal_level is ${wal}: set wal_level = logical (postgresql.conf) and restart the server`,
    });
    const role = (
      await client.query<{ rolname: string; rolreplication: boolean; rolsuper: boolean }>(
        'SELECT rolname, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user',
      )
    ).rows[0];
    const canReplicate = role?.rolreplication === true || role?.rolsuper === true;
    checks.push({
      ...base,
      check: 'replication privilege',
      status: canReplicate ? 'ok' : 'fail',
      detail: canReplicate ? `${role?.rolname} may replicate` : `ALTER ROLE ${role?.rolname ?? 'current_user'} REPLICATION`,
    });
    if (options.publication !== undefined) {
      const found = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [options.publication]);
      checks.push({
        ...base,
        check: `publication ${options.publication}`,
        status: found.rowCount === 1 ? 'ok' : 'fail',
        detail:
          found.rowCount === 1
            ? 'exists'
            : `missing: CREATE PUBLICATION ${options.publication} FOR TABLE … (the change source creates it at first start when allowed)`,
      });
    }
    if (options.contract !== undefined && options.slot !== undefined && options.publication !== undefined) {
      const { checkPostgresChanges } = await import('@switchboard/changes');
      const report = await checkPostgresChanges({
        connection: url,
        contract: options.contract,
        slot: options.slot,
        publication: options.publication,
      });
      for (const problem of report.problems) {
        const where = [problem.table, problem.column].filter((part) => part !== undefined).join('.');
        checks.push({
          ...base,
          check: `changes ${problem.code}${where === '' ? '' : ` ${where}`}`,
          status: problem.creatable ? 'warn' : 'fail',
          detail: `${problem.message}; fix: ${problem.fix}${problem.creatable ? ' (or let the change source create it: create: true)' : ''}`,
        });
      }
      if (report.problems.length === 0)
        checks.push({
          ...base,
          check: `changes of ${options.contract.name}`,
          status: 'ok',
          detail: 'tables, columns, replica identity, publication and slot as declared',
        });
    }
    if (options.slot !== undefined) {
      const slot = (
        await client.query<{ plugin: string; active: boolean; lag: string | null }>(
          `SELECT plugin, active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
             FROM pg_replication_slots WHERE slot_name = $1`,
          [options.slot],
        )
      ).rows[0];
      if (slot === undefined) {
        checks.push({
          ...base,
          check: `slot ${options.slot}`,
          status: 'fail',
          detail: 'missing: the change source creates it at first start',
        });
      } else {
        const lag = slot.lag === null ? undefined : Number(slot.lag);
        checks.push({
          ...base,
          check: `slot ${options.slot}`,
          status: slot.plugin === 'pgoutput' ? 'ok' : 'fail',
          detail: `${slot.plugin}, ${slot.active ? 'active' : 'inactive'}`,
        });
        checks.push({
          ...base,
          check: `slot ${options.slot} lag`,
          status: lag === undefined || lag <= options.maxSlotLagBytes ? 'ok' : 'fail',
          detail:
            lag === undefined
              ? 'nothing confirmed yet'
              : `${lag} bytes of WAL behind${lag > options.maxSlotLagBytes ? `, over the bound of ${options.maxSlotLagBytes}: the server keeps all of it` : ''}`,
        });
      }
    }
  } catch (error) {
    checks.push({ ...base, check: 'query', status: 'fail', detail: message(error) });
  } finally {
    await client.end().catch(() => undefined);
  }
  return checks;
}

/** The engine of a URL, for the checks it gets. */
function engineOf(url: string): 'redis' | 'nats' | 'rabbitmq' | 'postgres' | 'sqlite' | 'memory' | undefined {
  if (/^rediss?:/.test(url)) return 'redis';
  if (/^nats:/.test(url)) return 'nats';
  if (/^amqps?:/.test(url)) return 'rabbitmq';
  if (/^postgres(ql)?:/.test(url)) return 'postgres';
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('memory:')) return 'memory';
  return undefined;
}

/**
 * Runs every check for the configured engines: `--broker` and `--store` URLs (or
 * `SWITCHBOARD_BROKER`), and the PostgreSQL change source (`--changes` or `SWITCHBOARD_CHANGES`).
 */
export async function diagnose(flags: DoctorFlags, env: Readonly<Record<string, string | undefined>>, cwd: string): Promise<Check[]> {
  const ms = flags.timeout === undefined ? 3000 : Number(flags.timeout);
  if (!(ms > 0)) throw CliError.usage('--timeout must be a positive number of ms');
  const maxSlotLagBytes = flags.maxSlotLag === undefined ? 64 * 1024 * 1024 : Number(flags.maxSlotLag);
  if (!(maxSlotLagBytes >= 0)) throw CliError.usage('--max-slot-lag must be a number of bytes');
  const envBroker = env.SWITCHBOARD_BROKER;
  const urls = [...(flags.broker ?? (envBroker === undefined ? [] : [envBroker])), ...(flags.store ?? [])];
  const changes = flags.changes ?? (env.SWITCHBOARD_CHANGES?.startsWith('postgres') ? env.SWITCHBOARD_CHANGES : undefined);
  if (urls.length === 0 && changes === undefined)
    throw CliError.usage('Nothing to check: pass --broker, --store or --changes (or set SWITCHBOARD_BROKER)');
  let contract: AnyContract | undefined;
  if (flags.contract !== undefined) {
    if (changes === undefined || flags.slot === undefined || flags.publication === undefined)
      throw CliError.usage('--contract checks a change source: it needs --changes, --slot and --publication');
    const loaded = await loadContracts(flags.contract, cwd, flags.export);
    if (loaded.length !== 1) throw CliError.usage(`${flags.contract} exports ${loaded.length} contracts; pick one with --export`);
    contract = (loaded[0] as (typeof loaded)[number]).contract;
  }
  const checks: Check[] = [];
  const pgOptions = (isChanges: boolean): PostgresOptions => ({
    changes: isChanges,
    ...(isChanges && contract !== undefined ? { contract } : {}),
    ...(flags.slot === undefined ? {} : { slot: flags.slot }),
    ...(flags.publication === undefined ? {} : { publication: flags.publication }),
    maxSlotLagBytes,
  });
  for (const url of urls) {
    const engine = engineOf(url);
    if (engine === 'redis') checks.push(...(await redis(url, ms)));
    else if (engine === 'nats') checks.push(...(await nats(url, ms)));
    else if (engine === 'rabbitmq') checks.push(...(await rabbitmq(url, ms)));
    else if (engine === 'postgres') checks.push(...(await postgres(url, ms, pgOptions(url === changes))));
    else if (engine === 'sqlite' || engine === 'memory')
      checks.push({ engine, target: url, check: 'embedded', status: 'ok', detail: 'nothing to reach (one host)' });
    else
      checks.push({ engine: 'unknown', target: redact(url), check: 'url', status: 'fail', detail: 'not an engine URL this command knows' });
  }
  if (changes !== undefined && !urls.includes(changes)) checks.push(...(await postgres(changes, ms, pgOptions(true))));
  return checks;
}

/** `switchboard doctor`: reaches each configured engine and checks the settings that make it safe. */
export function register(program: Command, context: CommandContext): void {
  const { io } = context;
  program
    .command('doctor')
    .description('Reach each configured engine and check the settings that make it safe')
    .option('--broker <url>', 'a broker URL (env SWITCHBOARD_BROKER)', collect)
    .option('--store <url>', 'a store URL (postgres://, redis://)', collect)
    .option('--changes <url>', 'the PostgreSQL of a change source (env SWITCHBOARD_CHANGES): wal_level, privilege, publication, slot')
    .option(
      '--contract <module>',
      'with --changes: the contract module whose changes(...) the source publishes (tables, columns, replica identity, publication)',
    )
    .option('--export <name>', 'the contract export to use, when the module exports several', collect)
    .option('--slot <name>', 'the change source replication slot to check')
    .option('--publication <name>', 'the change source publication to check')
    .option('--max-slot-lag <bytes>', 'fail when the slot is more WAL than this behind (default 64 MiB)')
    .option('--timeout <ms>', 'per engine (default 3000)')
    .option('--json', 'one JSON report on stdout: { ok, checks }')
    .option('--no-color', 'no colour (NO_COLOR is honoured too)')
    .action(async (flags: DoctorFlags) => {
      const checks = await diagnose(flags, io.env, io.cwd);
      const ok = checks.every((check) => check.status !== 'fail');
      if (flags.json) io.stdout.write(`${JSON.stringify({ ok, checks })}\n`);
      else {
        const color = useColor({ ...io, stderr: io.stdout }, flags.color);
        const paint = (status: Check['status']) =>
          !color ? status : `\u001b[${status === 'ok' ? 32 : status === 'warn' ? 33 : 31}m${status}\u001b[39m`;
        for (const check of checks)
          io.stdout.write(`${paint(check.status)}\t${check.engine}\t${check.target}\t${check.check}\t${check.detail}\n`);
      }
      if (!ok) {
        const failed = checks.filter((check) => check.status === 'fail').map((check) => `${check.engine} ${check.check}`);
        throw new CliError(
          new SwitchboardError('SB_CONFIG_INVALID', { detail: `${failed.length} check(s) failed: ${failed.join('; ')}` }).toProblem(),
          1,
        );
      }
    });
}
