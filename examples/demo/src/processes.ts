import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts one service of the demo as its own process and waits for the line it prints once it
 * listens: `{"ready":"service-b","url":"http://127.0.0.1:4002"}`. Other lines are the service's
 * own log, passed through with its name in front when `echo` is on.
 */
export async function startService(
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  options: { echo: boolean; timeoutMs?: number },
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(prefix(name, chunk.toString())));
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${options.timeoutMs ?? 10_000} ms`)),
      options.timeoutMs ?? 10_000,
    );
    lines.on('line', (line) => {
      if (line.startsWith('{"ready"')) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      } else if (options.echo) {
        process.stdout.write(prefix(name, `${line}\n`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${String(code)} before it was ready`));
    });
  });
  const url = await ready;
  return {
    name,
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function prefix(name: string, text: string): string {
  return text
    .split('\n')
    .map((line) => (line ? `  [${name}] ${line}` : line))
    .join('\n');
}

/** Prints the line a demo service's parent waits for. */
export function announceReady(name: string, url: string): void {
  process.stdout.write(`${JSON.stringify({ ready: name, url })}\n`);
}
