#!/usr/bin/env node
/**
 * `npm run fuzz [-- <vitest arguments>]`: the fuzz properties (`packages/*\/test/fuzz-*.test.ts`)
 * with FUZZ_SCALE times the runs of the fast tier (default 25) and a random seed, printed before
 * and after the run. Replay a failure with the seed it printed: `FUZZ_SEED=<seed> npm run fuzz`
 * (fast-check's report also names the seed and the path of the counterexample).
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const args = process.argv.slice(2);
const seed = process.env.FUZZ_SEED || String(randomInt(-(2 ** 31), 2 ** 31));
const scale = process.env.FUZZ_SCALE || '25';
const replay = `FUZZ_SEED=${seed} FUZZ_SCALE=${scale} npm run fuzz${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
console.log(`fuzz: seed ${seed}, ${scale}x the fast tier's runs; replay with: ${replay}`);

const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const child = spawn(process.execPath, [vitest, 'run', '--project', 'fuzz', ...args], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_SCALE: scale },
});
child.on('exit', (code, signal) => {
  console.log(`fuzz: seed ${seed} ${code === 0 ? 'passed' : 'FAILED'}; replay with: ${replay}`);
  process.exit(code ?? (signal === null ? 1 : 128));
});
