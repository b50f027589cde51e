import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { HOP_KINDS, type HopKind, startTraceHarnessService } from './service.js';

/**
 * `npm run trace-harness -- [--hop sync] [--port 5000] [--broker nats://127.0.0.1:4222]`
 *   serves the endpoint for one hop kind until Ctrl-C; point the harness at the URL it prints.
 * `npm run trace-harness -- --harness <trace-context checkout>/test [--hop a,b] [--python python3]`
 *   runs the harness (Level 2, strict level 2) against each hop kind in turn and prints the counts.
 */
const { values } = parseArgs({
  options: {
    hop: { type: 'string', default: 'sync' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    broker: { type: 'string' },
    harness: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    'harness-port': { type: 'string', default: '7777' },
  },
});

const hops = (values.hop ?? 'sync').split(',').map((hop) => hop.trim()) as HopKind[];
for (const hop of hops) {
  if (!HOP_KINDS.includes(hop)) throw new Error(`--hop ${hop}: one of ${HOP_KINDS.join(', ')}`);
}
const brokerFor = (hop: HopKind) => (hop === 'message' ? (values.broker ?? 'memory:') : undefined);

interface Counts {
  readonly hop: HopKind;
  readonly ran: number;
  readonly failures: number;
  readonly errors: number;
  readonly skipped: number;
}

/** Runs `test.py` against one endpoint; the counts come from unittest's summary lines. */
function runHarness(dir: string, endpoint: string, hop: HopKind): Promise<Counts> {
  return new Promise((resolve, reject) => {
    const child = spawn(values.python ?? 'python3', ['test.py', endpoint], {
      cwd: dir,
      env: { ...process.env, STRICT_LEVEL: '2', SPEC_LEVEL: '2', HARNESS_PORT: values['harness-port'] ?? '7777' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', () => {
      if (process.env.HARNESS_VERBOSE !== undefined || !/\nOK/.test(output)) process.stderr.write(output);
      const ran = /Ran (\d+) tests?/.exec(output);
      if (ran === null) return reject(new Error(`the harness printed no summary:\n${output}`));
      const count = (name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(output)?.[1] ?? 0);
      resolve({ hop, ran: Number(ran[1]), failures: count('failures'), errors: count('errors'), skipped: count('skipped') });
    });
  });
}

if (values.harness === undefined) {
  const [hop] = hops as [HopKind];
  const broker = brokerFor(hop);
  const service = await startTraceHarnessService({
    hop,
    host: values.host ?? '127.0.0.1',
    ...(values.port === undefined ? {} : { port: Number(values.port) }),
    ...(broker === undefined ? {} : { broker }),
  });
  process.stdout.write(`trace harness endpoint (${hop} hop): ${service.endpoint}\n`);
  const stop = async () => {
    await service.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else {
  const results: Counts[] = [];
  for (const hop of hops) {
    const broker = brokerFor(hop);
    const service = await startTraceHarnessService({ hop, ...(broker === undefined ? {} : { broker }) });
    try {
      process.stdout.write(`--- ${hop} hop: ${service.endpoint}${broker === undefined ? '' : ` (broker ${broker})`}\n`);
      results.push(await runHarness(values.harness, service.endpoint, hop));
    } finally {
      await service.close();
    }
  }
  process.stdout.write('\nhop      ran  passed  failed  errors  skipped\n');
  for (const r of results) {
    const passed = r.ran - r.failures - r.errors - r.skipped;
    process.stdout.write(
      `${r.hop.padEnd(8)} ${String(r.ran).padStart(3)}  ${String(passed).padStart(6)}  ${String(r.failures).padStart(6)}  ${String(r.errors).padStart(6)}  ${String(r.skipped).padStart(7)}\n`,
    );
  }
  process.exitCode = results.every((r) => r.failures === 0 && r.errors === 0) ? 0 : 1;
}
