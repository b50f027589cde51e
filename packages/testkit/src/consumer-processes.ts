import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Broker } from '@switchboard/core';
import { delay, testMessage, waitFor } from './broker-helpers.js';

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

export interface ConsumerCrashOptions {
  /** Publishes the messages (and declared the group before the consumers start). */
  readonly broker: Broker;
  readonly topic: string;
  readonly group: string;
  /** The consumer script and its arguments (see {@link ConsumerProcesses}). */
  readonly script: string;
  readonly args: readonly string[];
  /** Messages published. Default 10 000. */
  readonly total?: number;
  /** Messages per `publishBatch`. Default 250. */
  readonly batchSize?: number;
  /** Distinct messages handled at which the running consumer is SIGKILLed and a new one started. Default 25 % and 60 % of `total`. */
  readonly killAt?: readonly number[];
  readonly timeoutMs?: number;
}

export interface ConsumerCrashResult {
  readonly sent: ReadonlySet<string>;
  /** Distinct MessageIds handled. */
  readonly handled: ReadonlySet<string>;
  /** Sent and never handled. */
  readonly lost: readonly string[];
  /** Handled and never sent. */
  readonly strays: readonly string[];
  readonly duplicates: number;
  /** Distinct messages handled when each consumer was killed. */
  readonly killedAt: readonly number[];
}

/**
 * The crash test every engine runs: publishes `total` messages in batches while consumer processes
 * are SIGKILLed at the `killAt` counts and replaced, then waits until every message was handled (or
 * the time is up) and says what was lost, what was handled twice and what came from nowhere.
 */
export async function crashConsumers(options: ConsumerCrashOptions): Promise<ConsumerCrashResult> {
  const { broker, topic, total = 10_000, batchSize = 250, timeoutMs = 90_000 } = options;
  const killAt = options.killAt ?? [Math.round(total * 0.25), Math.round(total * 0.6)];
  await broker.declareGroup(topic, options.group);
  const consumers = new ConsumerProcesses(options.script, options.args);
  const sent = new Set<string>();
  const killedAt: number[] = [];
  try {
    await consumers.start();
    const publishing = (async () => {
      for (let i = 0; i < total; i += batchSize) {
        const batch = Array.from({ length: Math.min(batchSize, total - i) }, () => testMessage(topic, { body: Buffer.from('x') }));
        await broker.publishBatch(batch);
        for (const message of batch) sent.add(message.id);
        await delay(5);
      }
    })();
    for (const threshold of killAt) {
      await waitFor(() => consumers.distinct() >= threshold, `${threshold} handled messages`, timeoutMs);
      killedAt.push(consumers.distinct());
      await consumers.kill();
      await consumers.start();
    }
    await publishing;
    await waitFor(() => consumers.distinct() >= total, `all ${total} messages (have ${consumers.distinct()})`, timeoutMs).catch(() => {});
    await consumers.kill();
    const handled = new Set(consumers.handled);
    return {
      sent,
      handled,
      lost: [...sent].filter((id) => !handled.has(id)),
      strays: [...handled].filter((id) => !sent.has(id)),
      duplicates: consumers.duplicates(),
      killedAt,
    };
  } finally {
    await consumers.dispose();
  }
}
