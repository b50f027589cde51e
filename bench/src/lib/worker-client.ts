import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { DriverSpec } from './queue-driver.js';
import type { ConsumeStats, MemoryStats, PublishPlan, PublishResult, WorkerCommand, WorkerReply } from './worker-protocol.js';

const workerScript = fileURLToPath(new URL('../workers/queue-worker.js', import.meta.url));

/** A queue worker process seen from the scenario: typed commands over IPC. */
export class QueueWorker {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #next = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: WorkerReply) => {
      if (!('id' in message)) return;
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new Error(message.error));
    });
    child.on('exit', (code) => {
      for (const pending of this.#pending.values()) pending.reject(new Error(`queue worker exited with code ${String(code)}`));
      this.#pending.clear();
    });
  }

  /** Forks a worker for `spec` and waits until its driver is connected. */
  static async start(spec: DriverSpec): Promise<QueueWorker> {
    const child = fork(workerScript, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [first] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => [{ failed: `exited with code ${String(code)}` }]),
    ])) as [WorkerReply];
    if ('failed' in first) {
      child.kill('SIGKILL');
      throw new Error(`${spec.kind} ${spec.engine} worker could not start: ${first.failed}`);
    }
    return new QueueWorker(child);
  }

  #call<T>(command: WorkerCommand): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#child.send({ id, command });
    });
  }

  setup(topic: string): Promise<void> {
    return this.#call({ op: 'setup', topic });
  }

  cleanup(topic: string): Promise<void> {
    return this.#call({ op: 'cleanup', topic });
  }

  dropScope(): Promise<void> {
    return this.#call({ op: 'drop-scope' });
  }

  publish(topic: string, plan: PublishPlan): Promise<PublishResult> {
    return this.#call({ op: 'publish', topic, plan });
  }

  consume(topic: string, options: { maxInFlight: number; latency?: boolean }): Promise<void> {
    return this.#call({ op: 'consume', topic, maxInFlight: options.maxInFlight, latency: options.latency ?? true });
  }

  reset(): Promise<void> {
    return this.#call({ op: 'reset' });
  }

  /** Waits for `count` messages since the last reset; gives up (with what arrived) after `idleMs` without any. */
  wait(count: number, idleMs: number): Promise<ConsumeStats> {
    return this.#call({ op: 'wait', count, idleMs });
  }

  stopConsuming(): Promise<ConsumeStats> {
    return this.#call({ op: 'stop-consume' });
  }

  memory(): Promise<MemoryStats> {
    return this.#call({ op: 'memory' });
  }

  /** Asks the worker to stop consuming, close its driver and exit; kills it after `graceMs`. */
  async close(graceMs = 15_000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
