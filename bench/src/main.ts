import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchRow, Scenario } from './lib/scenario.js';
import { scenarios } from './scenarios/index.js';

const USAGE = `usage: npm run bench -- [scenario ...] [--quick] [--list] [--out file.json]
  no scenario: all of them; --list names them; --quick: short smoke run (a fifth of the load);
  --out: where the JSON goes (default .bench-results/latest.json)`;

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string', default: '.bench-results/latest.json' },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}
try {
  parsed = parse();
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

if (values.list) {
  for (const scenario of scenarios) console.log(`${scenario.name.padEnd(24)} ${scenario.description}`);
  process.exit(0);
}

const selected: Scenario[] = positionals.length === 0 ? scenarios : positionals.map(findScenario);
const rows: BenchRow[] = [];
const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
};
console.log(`# Switchboard benchmarks — ${new Date().toISOString()}`);
console.log(`# ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}\n`);

for (const scenario of selected) {
  console.log(`## ${scenario.name}: ${scenario.description}`);
  const scenarioRows: BenchRow[] = [];
  await scenario.run({
    scale: values.quick ? 0.2 : 1,
    record(row) {
      rows.push(row);
      scenarioRows.push(row);
      console.log(formatRow(row));
    },
    log(message) {
      console.log(`  ${message}`);
    },
  });
  console.log('');
}

const out = resolve(values.out ?? '.bench-results/latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), machine, rows }, null, 2)}\n`);
console.log(`JSON written to ${values.out}`);

function findScenario(name: string): Scenario {
  const scenario = scenarios.find((s) => s.name === name);
  if (!scenario) {
    console.error(`unknown scenario "${name}"; --list shows them`);
    process.exit(2);
  }
  return scenario;
}

function formatRow(row: BenchRow): string {
  const metrics = Object.entries(row.metrics)
    .map(([key, value]) => `${key}=${value}`)
    .join('  ');
  return `  ${row.subject.padEnd(34)} ${row.load.padEnd(14)} ${metrics}`;
}
