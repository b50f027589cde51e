import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ChildServer {
  readonly info: Record<string, unknown>;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a benchmark server in its own process (so server and load generator each get a core) and
 * waits for the JSON line it prints when it listens.
 */
export async function startChild(modulePath: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ChildServer> {
  const child = spawn(process.execPath, [modulePath, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${modulePath} exited with code ${String(code)} before it was ready`);
  });
  const ready = (async () => {
    for await (const line of lines) {
      if (line.startsWith('{')) return JSON.parse(line) as Record<string, unknown>;
    }
    throw new Error(`${modulePath} closed its output before it was ready`);
  })();
  const info = await Promise.race([ready, exited]);
  exited.catch(() => {});
  return {
    info,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      const done = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    },
  };
}
