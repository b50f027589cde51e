import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * For crash tests: runs consumer processes (a script that prints `ready`, then one MessageId per
 * handled message) one after another, SIGKILLs them, and collects what they handled.
 */
export class ConsumerProcesses {
  readonly handled: string[] = [];
  #child: ChildProcess | undefined;
  readonly #script: string;
  readonly #args: readonly string[];

  constructor(script: string, args: readonly string[]) {
    this.#script = script;
    this.#args = args;
  }

  distinct(): number {
    return new Set(this.handled).size;
  }

  duplicates(): number {
    return this.handled.length - this.distinct();
  }

  /** Starts a consumer and resolves once it subscribed. */
  start(): Promise<void> {
    const child = spawn(process.execPath, [this.#script, ...this.#args], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#child = child;
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve();
        else this.handled.push(line);
      });
    });
  }

  /** SIGKILLs the running consumer: no drain, its unsettled deliveries stay with the engine. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
