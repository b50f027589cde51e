import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * For crash tests: runs consumer processes one after another, SIGKILLs them, and collects what
 * they handled. The script gets the log file's path as its last argument; it prints `ready` on
 * stdout once subscribed, and for every message it handles it appends `<MessageId> [<attempt>]`
 * to the log with `appendFileSync` *before* acking: that is the side effect whose count is checked.
 * (Printing to stdout would not do: a pipe write is asynchronous, so a SIGKILL can lose lines whose
 * messages were already acked.)
 */
export class ConsumerProcesses {
  readonly #script: string;
  readonly #args: readonly string[];
  readonly #dir = mkdtempSync(join(tmpdir(), 'sb-consumers-'));
  readonly #log = join(this.#dir, 'handled.log');
  readonly #handled: string[] = [];
  readonly #attempts = new Map<number, number>();
  #child: ChildProcess | undefined;
  #offset = 0;
  #partial = '';

  constructor(script: string, args: readonly string[]) {
    this.#script = script;
    this.#args = args;
  }

  /** MessageIds handled so far, in order, with repeats. */
  get handled(): readonly string[] {
    this.#read();
    return this.#handled;
  }

  distinct(): number {
    return new Set(this.handled).size;
  }

  duplicates(): number {
    return this.handled.length - this.distinct();
  }

  /** How many handled lines carried each attempt number (for scripts that log it). */
  attempts(): ReadonlyMap<number, number> {
    this.#read();
    return this.#attempts;
  }

  /** Starts a consumer and resolves once it subscribed. */
  start(): Promise<void> {
    const child = spawn(process.execPath, [this.#script, ...this.#args, this.#log], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#child = child;
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`consumer exited before it was ready (${String(code ?? signal)})`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve();
      });
    });
  }

  /** SIGKILL (default): no drain, its unsettled deliveries stay with the engine. SIGTERM: the script's own shutdown. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** Kills a consumer still running and removes the log. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Reads what the log gained since the last read. */
  #read(): void {
    let fd: number;
    try {
      fd = openSync(this.#log, 'r');
    } catch {
      return;
    }
    try {
      const chunk = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, this.#offset);
        if (n === 0) break;
        this.#offset += n;
        const lines = (this.#partial + chunk.toString('utf8', 0, n)).split('\n');
        this.#partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line === '') continue;
          const [id, attempt] = line.split(' ');
          this.#handled.push(id!);
          if (attempt !== undefined) this.#attempts.set(Number(attempt), (this.#attempts.get(Number(attempt)) ?? 0) + 1);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
