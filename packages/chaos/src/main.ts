// `npm run chaos`: the whole matrix (every engine × every fault, 10 000 messages each) and a
// results table. Options: --engines a,b  --faults x,y  --total N  --out FILE (default chaos-results.md)
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ENGINES, type EngineName, type EngineServer, startEngineServer } from './engines.js';
import { type NotRun, passed, resultsTable } from './report.js';
import { type ChaosResult, FAULTS, type FaultName, libfaketime, notApplicable, runScenario } from './scenario.js';
import type { Recipe } from './workload.js';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: ENGINES.join(',') },
    faults: { type: 'string', default: FAULTS.join(',') },
    total: { type: 'string', default: '10000' },
    recipes: { type: 'string' },
    out: { type: 'string', default: 'chaos-results.md' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    `npm run chaos -- [--engines ${ENGINES.join(',')}] [--faults ${FAULTS.join(',')}] [--total 10000] [--recipes fenced,effect-first] [--out chaos-results.md]\n`,
  );
  process.exit(0);
}
const engines = values.engines.split(',').filter(Boolean) as EngineName[];
const faults = values.faults.split(',').filter(Boolean) as FaultName[];
// By default the zombie runs under both recipes (the unfenced one shows what the fence prevents).
const recipesFor = (fault: FaultName): Recipe[] =>
  values.recipes !== undefined
    ? (values.recipes.split(',').filter(Boolean) as Recipe[])
    : fault === 'zombie'
      ? ['fenced', 'effect-first']
      : ['fenced'];
const total = Number(values.total);
const results: ChaosResult[] = [];
const notRun: NotRun[] = [];
const isRoot = process.getuid?.() === 0;

const write = () => {
  const table = resultsTable(results, notRun);
  writeFileSync(values.out, `# Chaos run ${new Date().toISOString()}\n\n${total} messages per run.\n\n${table}\n`);
  return table;
};

for (const engine of engines) {
  let server: EngineServer;
  try {
    server = await startEngineServer(engine);
  } catch (error) {
    for (const fault of faults)
      notRun.push({ engine, fault, why: `private server did not start: ${(error as Error).message.split('\n')[0]}` });
    continue;
  }
  try {
    for (const fault of faults) {
      const why =
        notApplicable(engine, fault) ??
        (fault === 'disk-full' && !isRoot ? 'mounting a tmpfs needs root' : undefined) ??
        (fault === 'clock-jump' && libfaketime() === undefined ? 'libfaketime not installed' : undefined);
      if (why !== undefined) {
        notRun.push({ engine, fault, why });
        continue;
      }
      for (const recipe of recipesFor(fault)) {
        process.stdout.write(`${engine} / ${fault} / ${recipe}: `);
        try {
          const result = await runScenario({ engine, fault, server, total, recipe });
          results.push(result);
          process.stdout.write(`${passed(result) ? 'pass' : 'FAIL'} ${JSON.stringify(result)}\n`);
        } catch (error) {
          notRun.push({ engine, fault, why: `run failed: ${(error as Error).message.split('\n')[0]}` });
          process.stdout.write(`error ${(error as Error).stack}\n`);
        }
        write();
      }
    }
  } finally {
    await server.dispose();
  }
}
process.stdout.write(`\n${write()}\n`);
