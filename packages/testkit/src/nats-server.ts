import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepting, freePort } from './ports.js';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';

/** A private JetStream server on a loopback port with its own store directory, restartable in place. */
export class PrivateNatsServer {
  readonly storeDir = mkdtempSync(join(tmpdir(), 'sb-nats-'));
  port = 0;
  #process: ChildProcess | undefined;

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(extraArgs: readonly string[] = []): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    this.#process = spawn(BINARY, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...extraArgs], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${this.port}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Kills the server process (SIGKILL: no clean shutdown). */
  stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    return new Promise((resolve) => {
      if (child === undefined || child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
