import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A consumer child process; every line it prints is `<MessageId> <attempt>`. */
export class ConsumerProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;

  constructor(script: string, args: readonly string[], onDelivery: (id: string, attempt: number) => void) {
    this.child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let markReady!: () => void;
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (line === 'ready') return markReady();
      const [id, attempt] = line.split(' ');
      if (id) onDelivery(id, Number(attempt));
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}
