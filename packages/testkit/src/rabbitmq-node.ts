import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepting, freePort } from './ports.js';

/** The server start script of a Debian/Ubuntu package; elsewhere `rabbitmq-server` on the PATH. */
const PACKAGED_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const SERVER_SCRIPT = process.env.RABBITMQ_SERVER_BIN ?? (existsSync(PACKAGED_SCRIPT) ? PACKAGED_SCRIPT : 'rabbitmq-server');
/** Erlang refuses to run a RabbitMQ node as root; as root the node runs as this account. */
const SERVICE_USER = process.env.RABBITMQ_SERVICE_USER ?? 'rabbitmq';
const BOOT_TIMEOUT_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A private single RabbitMQ node on free loopback ports, with its own node name, data, log and
 * config in a temporary directory, so a test can stop and start it without touching any other
 * server. Restarting keeps the data directory: durable queues and persistent messages survive.
 */
export class PrivateRabbitMqNode {
  readonly dir = mkdtempSync(join(tmpdir(), 'sb-rabbitmq-'));
  readonly nodeName = `sbtest${randomBytes(4).toString('hex')}@localhost`;
  port = 0;
  #distPort = 0;
  #child: ChildProcess | undefined;
  #output = '';
  readonly #killOnExit = () => {
    const pid = this.#pid();
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  };

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  get #pidFile(): string {
    return join(this.dir, 'node.pid');
  }

  /** The Erlang VM's process id, once the node has written it. */
  #pid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.#pidFile, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  #prepare(): void {
    writeFileSync(join(this.dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${this.port}\nloopback_users.guest = true\n`);
    // No management plugin: nothing but AMQP listens.
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
    // Replaces the system-wide rabbitmq-env.conf, which names the shared node.
    writeFileSync(join(this.dir, 'rabbitmq-env.conf'), '');
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }));
      for (const name of ['', 'rabbitmq.conf', 'enabled_plugins', 'rabbitmq-env.conf']) chownSync(join(this.dir, name), uid, gid);
    }
  }

  #environment(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      // Unprivileged: the node writes its own Erlang cookie here. As root, the service account's
      // home (and its cookie) is used.
      HOME: this.dir,
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.#distPort),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: this.#pidFile,
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(this.dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_PLUGINS_EXPAND_DIR: join(this.dir, 'plugins-expand'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }

  /** Starts the node (first time: on fresh ports) and waits until it accepts AMQP connections. */
  async start(): Promise<void> {
    if (this.port === 0) {
      this.port = await freePort();
      this.#distPort = await freePort();
      this.#prepare();
    }
    const asRoot = process.getuid?.() === 0;
    const [command, args] = asRoot ? ['runuser', ['-u', SERVICE_USER, '--', SERVER_SCRIPT]] : [SERVER_SCRIPT, []];
    this.#output = '';
    const child = spawn(command, args, { cwd: this.dir, env: this.#environment(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let failure: Error | undefined;
    child.once('error', (error) => {
      failure = error;
    });
    child.once('exit', (code, signal) => {
      failure ??= new Error(`rabbitmq-server exited (${code ?? signal}) before accepting connections`);
    });
    process.once('exit', this.#killOnExit);
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    while (!(await accepting(this.port))) {
      if (failure !== undefined || Date.now() > deadline) {
        await this.stop('SIGKILL');
        throw new Error(`${failure?.message ?? `node ${this.nodeName} did not listen on ${this.port}`}\n${this.#output}`);
      }
      await pause(100);
    }
  }

  /**
   * Stops the node: `SIGTERM` shuts it down cleanly (connections closed with a reason),
   * `SIGKILL` is a crash. Resolves when the VM is gone and the port is closed.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    process.removeListener('exit', this.#killOnExit);
    const pid = this.#pid();
    if (pid !== undefined && alive(pid)) process.kill(pid, signal);
    else if (child !== undefined && child.exitCode === null) child.kill(signal);
    const deadline = Date.now() + 30_000;
    while ((pid !== undefined && alive(pid)) || (this.port !== 0 && (await accepting(this.port)))) {
      if (Date.now() > deadline) throw new Error(`node ${this.nodeName} did not stop`);
      await pause(50);
    }
    rmSync(this.#pidFile, { force: true });
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
