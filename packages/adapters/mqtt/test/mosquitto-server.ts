import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepting, freePort } from '@switchboard/testkit';

const BINARY = process.env.MOSQUITTO_BIN ?? 'mosquitto';

/** A private Mosquitto on a loopback port, with extra configuration lines (no persistence), restartable in place. */
export class PrivateMosquitto {
  readonly #dir = mkdtempSync(join(tmpdir(), 'sb-mosquitto-'));
  port = 0;
  #process: ChildProcess | undefined;

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Starts the server; a restart keeps the port. */
  async start(config: readonly string[] = []): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const file = join(this.#dir, 'mosquitto.conf');
    writeFileSync(file, [`listener ${this.port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ...config, ''].join('\n'));
    this.#process = spawn(BINARY, ['-c', file], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (this.#process.exitCode !== null) throw new Error(`mosquitto exited with ${this.#process.exitCode}`);
      if (Date.now() > deadline) throw new Error(`mosquitto did not start on port ${this.port}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    return new Promise((resolve) => {
      if (child === undefined || child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
