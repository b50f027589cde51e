import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyContract } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { CliError } from './io.js';

/** A contract exported by a module, with the name it is exported as. */
export interface LoadedContract {
  readonly exportName: string;
  readonly contract: AnyContract;
}

function isContract(value: unknown): value is AnyContract {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'contract' &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { operations?: unknown }).operations === 'object'
  );
}

/**
 * Loads an ES module by path (relative to `cwd`) and picks its contracts: the exports named in
 * `names`, or every exported contract. Node runs the module, so it must be JavaScript (the built
 * output of a TypeScript contract, or run the CLI under a TypeScript loader).
 */
export async function loadContracts(module: string, cwd: string, names: readonly string[] | undefined): Promise<LoadedContract[]> {
  const path = isAbsolute(module) ? module : resolve(cwd, module);
  if (!existsSync(path)) {
    throw new CliError(new SwitchboardError('SB_NOT_FOUND', { detail: `No module at ${module}` }).toProblem(), 1);
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new CliError(new SwitchboardError('SB_CONFIG_INVALID', { detail: `Could not load ${module}: ${detail}` }).toProblem(), 1);
  }
  const found: LoadedContract[] = [];
  const seen = new Set<unknown>();
  for (const [exportName, value] of Object.entries(exports)) {
    if (!isContract(value) || seen.has(value)) continue;
    seen.add(value);
    found.push({ exportName, contract: value });
  }
  if (names === undefined || names.length === 0) {
    if (found.length === 0) {
      throw new CliError(new SwitchboardError('SB_NOT_FOUND', { detail: `${module} exports no contract (defineContract)` }).toProblem(), 1);
    }
    return found;
  }
  return names.map((name) => {
    const value = exports[name];
    if (!isContract(value)) {
      const known = found.map((entry) => entry.exportName).join(', ') || 'none';
      throw CliError.usage(`${module} has no contract exported as ${name} (contracts: ${known})`);
    }
    return { exportName: name, contract: value };
  });
}
