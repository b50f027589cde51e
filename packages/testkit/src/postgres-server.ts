import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/** Where the server binaries are: the newest Debian/Ubuntu cluster version, else the PATH. */
function binDir(): string {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return '';
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? '' : join(root, versions[0], 'bin');
}

const BIN_DIR = binDir();
const binary = (name: string) => (BIN_DIR === '' ? name : join(BIN_DIR, name));
/** PostgreSQL refuses to run as root; as root the server runs as this account. */
const SERVICE_USER = process.env.POSTGRES_SERVICE_USER ?? 'postgres';
const START_TIMEOUT_MS = 30_000;

/**
 * How the server goes away: `fast` is a clean shutdown (SIGINT, what `pg_ctl stop -m fast` sends:
 * sessions are terminated, a checkpoint is written), `immediate` a crash-like one (SIGQUIT, as
 * `pg_ctl stop -m immediate`: no checkpoint, crash recovery at the next start), `kill` a SIGKILL of
 * the postmaster (its backends notice and exit by themselves; recovery at the next start).
 */
export type StopMode = 'fast' | 'immediate' | 'kill';

const SIGNALS: Record<StopMode, NodeJS.Signals> = { fast: 'SIGINT', immediate: 'SIGQUIT', kill: 'SIGKILL' };

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface PrivatePostgresServerOptions {
  /**
   * Server settings passed as `-c name=value`, e.g. `{ wal_level: 'logical' }` for logical
   * replication (the shared server runs with `replica`; a test that needs `logical` starts its own).
   */
  readonly settings?: Readonly<Record<string, string | number>>;
}

/**
 * A private PostgreSQL server on a free loopback port, with its data directory and socket in a
 * fresh temporary directory (trust auth, `fsync` on), so a test can stop, crash and restart it
 * without touching any other server. Restarting keeps the data directory. As root, the server runs
 * as the `postgres` account (`POSTGRES_SERVICE_USER`); the binaries are the newest cluster version
 * under `/usr/lib/postgresql` or `POSTGRES_BIN_DIR`.
 */
export class PrivatePostgresServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'sb-postgres-'));
  readonly #settings: readonly string[];
  port = 0;
  /** Attempts the last `start()` needed (more than one after a crash whose backends were still exiting). */
  startAttempts = 0;
  #child: ChildProcess | undefined;
  #output = '';
  readonly #asRoot = process.getuid?.() === 0;
  readonly #killOnExit = () => this.#signalServer(this.#child, 'SIGKILL');

  constructor(options: PrivatePostgresServerOptions = {}) {
    this.#settings = Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  }

  /** Connection URL of the `postgres` database as the `postgres` superuser (trust auth). */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Connection URL of another database or role on this server. */
  urlFor(options: { readonly database?: string; readonly user?: string }): string {
    return `postgres://${encodeURIComponent(options.user ?? 'postgres')}@127.0.0.1:${this.port}/${encodeURIComponent(options.database ?? 'postgres')}`;
  }

  get #dataDir(): string {
    return join(this.dir, 'data');
  }

  #command(name: string, args: readonly string[]): [string, string[]] {
    return this.#asRoot ? ['runuser', ['-u', SERVICE_USER, '--', binary(name), ...args]] : [binary(name), [...args]];
  }

  #initialize(): void {
    if (this.#asRoot) {
      const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }));
      chownSync(this.dir, uid, gid);
    }
    const [command, args] = this.#command('initdb', ['-D', this.#dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
    execFileSync(command, args, { cwd: this.dir, env: this.#environment(), stdio: 'pipe' });
  }

  #environment(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin', LC_ALL: 'C' };
  }

  /**
   * Starts the server (the first time: initdb on a fresh port) and waits until it answers queries.
   * After a SIGKILL the postmaster refuses to start while backends of the old one still hold its
   * shared memory (idle ones exit at once, a busy one when its statement ends): the start is
   * retried until it succeeds or START_TIMEOUT_MS runs out.
   */
  async start(): Promise<void> {
    if (this.port === 0) {
      this.port = await freePort();
      this.#initialize();
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    this.startAttempts = 0;
    process.once('exit', this.#killOnExit);
    for (;;) {
      this.startAttempts += 1;
      const failure = await this.#startOnce(deadline);
      if (failure === undefined) return;
      if (Date.now() > deadline) {
        await this.stop('kill');
        throw new Error(`PostgreSQL did not start on port ${this.port} (${this.startAttempts} attempts): ${failure}\n${this.#output}`);
      }
      await pause(250);
    }
  }

  /** One start attempt: undefined once the server answers, else why it did not. */
  async #startOnce(deadline: number): Promise<string | undefined> {
    const [command, args] = this.#command('postgres', [
      '-D',
      this.#dataDir,
      '-c',
      `port=${this.port}`,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${this.dir}`,
      '-c',
      'fsync=on',
      '-c',
      'synchronous_commit=on',
      ...this.#settings,
    ]);
    this.#output = '';
    const child = spawn(command, args, { cwd: this.dir, env: this.#environment(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited: string | undefined;
    child.once('error', (error) => {
      exited = error.message;
    });
    child.once('exit', (code, signal) => {
      exited ??= `exited (${code ?? signal}) before accepting connections`;
    });
    let lastError = '';
    while (exited === undefined && Date.now() <= deadline) {
      // `pg_isready` answers 0 once the server accepts connections (after any crash recovery).
      const probe = await this.#isReady();
      if (probe === undefined) return undefined;
      lastError = probe;
      await pause(50);
    }
    if (exited !== undefined) {
      this.#child = undefined;
      return exited;
    }
    return `not answering: ${lastError}`;
  }

  /** Undefined when the server accepts connections, else what `pg_isready` said. */
  #isReady(): Promise<string | undefined> {
    return new Promise((resolve) => {
      execFile(
        binary('pg_isready'),
        ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', 'postgres', '-t', '2'],
        { env: this.#environment() },
        (error, stdout) => resolve(error === null ? undefined : stdout.trim() || error.message),
      );
    });
  }

  /**
   * The postmaster's process id: the spawned process itself, or as root the child of `runuser`
   * (never read from a pid file, which may still name a postmaster killed before).
   */
  #postmasterPid(child: ChildProcess): number | undefined {
    const pid = child.pid;
    if (pid === undefined || !this.#asRoot) return pid;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
      return children.find((candidate) => Number.isInteger(candidate) && candidate > 0);
    } catch {
      return undefined;
    }
  }

  #signalServer(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const pid = this.#postmasterPid(child) ?? child.pid;
    try {
      if (pid !== undefined) process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Stops the server (see `StopMode`) and resolves once the postmaster has exited. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    process.removeListener('exit', this.#killOnExit);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.#signalServer(child, SIGNALS[mode]);
    // A clean shutdown that hangs (it should not) ends as a crash.
    const timer = setTimeout(() => this.#signalServer(child, 'SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    try {
      await this.stop('immediate');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
