import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchboardError } from '@switchboard/core';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { CliError } from '../io.js';

/** The built demo of a Switchboard checkout: the `@switchboard/demo` workspace, or next to this package. */
function demoMain(): string | undefined {
  const candidates: string[] = [];
  try {
    candidates.push(join(dirname(fileURLToPath(import.meta.resolve('@switchboard/demo/package.json'))), 'dist', 'main.js'));
  } catch {
    // Not installed as a package: look next to this one.
  }
  candidates.push(fileURLToPath(new URL('../../../../examples/demo/dist/main.js', import.meta.url)));
  return candidates.find((candidate) => existsSync(candidate));
}

/** `switchboard demo [options]`: runs the demo (ServiceA, B and C as processes); options go to it unchanged. */
export function register(program: Command, context: CommandContext): void {
  program
    .command('demo')
    .description('Run the demo: ServiceA, ServiceB and ServiceC as separate processes (options as for npm start, e.g. --once --json)')
    .argument('[options...]', 'passed to the demo: --once, --json, --broker <url>, --changes <where>, --name <text>, …')
    .allowUnknownOption()
    .helpOption('--demo-help', 'this help (the demo takes its own options)')
    .action(async (args: string[]) => {
      const main = demoMain();
      if (main === undefined) {
        throw new CliError(
          new SwitchboardError('SB_NOT_FOUND', {
            detail: 'No built demo here: run it from a Switchboard checkout after npm ci (npm start)',
          }).toProblem(),
          1,
        );
      }
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [main, ...args], {
          cwd: context.io.cwd,
          stdio: 'inherit',
          env: { ...process.env, ...context.io.env },
        });
        child.on('error', reject);
        child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal === null ? 1 : 128 + 2)));
      });
      if (code !== 0) {
        throw new CliError(new SwitchboardError('SB_HANDLER_FAILED', { detail: `the demo exited with code ${code}` }).toProblem(), 1);
      }
    });
}
