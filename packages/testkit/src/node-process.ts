import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface NodeProcessOptions {
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** A Node script running in a child process, its output collected as it comes. */
export interface NodeProcess {
  /** Resolves with the exit code (null when killed by a signal); rejects if the process could not start. */
  readonly exited: Promise<number | null>;
  out(): string;
  err(): string;
  /** For the caller's cleanup: a no-op once it exited. */
  kill(): void;
}

/** Runs `node script ...args` as a user would, stdin closed, stdout and stderr collected. */
export function runNode(script: string, args: readonly string[], options: NodeProcessOptions = {}): NodeProcess {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    exited,
    out: () => stdout,
    err: () => stderr,
    kill: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}

/** {@link runNode} until the process exits: its code and everything it printed. */
export async function runNodeToExit(
  script: string,
  args: readonly string[],
  options?: NodeProcessOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runNode(script, args, options);
  const code = await run.exited;
  return { code, stdout: run.out(), stderr: run.err() };
}
