import { writeFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { DocumentWarning, GeneratedDocument } from '@switchboard/apidocs';
import { SwitchboardError } from '@switchboard/core';
import type { CliIo } from './io.js';
import { CliError, useColor, yellow } from './io.js';

/** What every document command takes besides its own options. */
export interface OutputOptions {
  readonly out?: string;
  readonly json?: boolean;
  readonly color?: boolean;
  readonly failOnWarnings?: boolean;
}

/**
 * Writes a generated document: to `--out` or stdout. Warnings go to stderr, one line each
 * (`warning: <where>: <what>`), or, with `--json`, into the one JSON document on stdout:
 * `{ document, warnings }` (or `{ out, warnings }` with `--out`).
 */
export async function emitDocument(io: CliIo, kind: string, generated: GeneratedDocument, options: OutputOptions): Promise<void> {
  const text = `${JSON.stringify(generated.document, null, 2)}\n`;
  const out = options.out === undefined ? undefined : isAbsolute(options.out) ? options.out : resolve(io.cwd, options.out);
  if (out !== undefined) {
    try {
      await writeFile(out, text);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new CliError(new SwitchboardError('SB_INTERNAL', { detail: `Could not write ${options.out}: ${detail}` }).toProblem(), 1);
    }
  }
  if (options.json) {
    const report =
      out === undefined ? { document: generated.document, warnings: generated.warnings } : { out, warnings: generated.warnings };
    io.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    if (out === undefined) io.stdout.write(text);
    const color = useColor(io, options.color);
    for (const warning of generated.warnings) io.stderr.write(`${yellow('warning', color)}: ${describe(warning)}\n`);
    if (out !== undefined) {
      const count = generated.warnings.length;
      io.stderr.write(`wrote ${kind} to ${options.out} (${count} warning${count === 1 ? '' : 's'})\n`);
    }
  }
  if (options.failOnWarnings && generated.warnings.length > 0) {
    throw new CliError(
      new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `${generated.warnings.length} schema(s) could not be expressed exactly (--fail-on-warnings)`,
      }).toProblem(),
      1,
    );
  }
}

function describe(warning: DocumentWarning): string {
  return `${warning.subject} (${warning.pointer}): ${warning.message}; documented as any value`;
}
