import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { engineGuarantee } from '@switchboard/connect';
import { createClient } from '@switchboard/http';
import { type Pattern, type PatternReport, serviceA } from './contracts.js';
import { type ServiceProcess, startService } from './processes.js';

/**
 * The demo: starts ServiceB and ServiceA as separate processes on the embedded defaults, then has
 * A reach B in each pattern and prints what happened, how long it took and what A had to know
 * about B. Without `--once` the services keep running until Ctrl-C.
 */
const { values } = parseArgs({
  options: {
    once: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    name: { type: 'string', default: 'Ada Lovelace' },
    broker: { type: 'string' },
    changes: { type: 'string' },
    'port-a': { type: 'string' },
    'port-b': { type: 'string' },
    'port-c': { type: 'string' },
    'data-dir': { type: 'string' },
  },
});

const titles: Record<Pattern, string> = {
  'sync-http': '1. Synchronous HTTP: A calls B and waits for the answer',
  'async-http': '2. Asynchronous HTTP: B answers 202 with a status URL; A follows it',
  message: '3. Message through the broker: A gets a MessageId and asks B for its receipt',
  'request-reply': "3b. Request/reply through the broker: A asks B and awaits the typed answer (or B's typed error)",
  event: '4. Event: A announces that something happened; B and C react',
  'claim-check': '4b. Claim check: A sends a picture by reference; B verifies its hash',
  'change-event': '5. Change event: B saves a row; the committed change becomes an event C reacts to',
};

/** Patterns this build of the demo runs, in order. */
const enabled: Pattern[] = ['sync-http', 'async-http', 'message', 'request-reply', 'event', 'claim-check', 'change-event'];

const json = values.json ?? false;
const once = values.once ?? false;
const dataDir = values['data-dir'] ?? (once ? mkdtempSync(join(tmpdir(), 'switchboard-demo-')) : '.switchboard');
mkdirSync(dataDir, { recursive: true });
const script = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));
const env = (port: string | undefined, fallback: number): NodeJS.ProcessEnv => ({
  PORT: port ?? String(once ? 0 : fallback),
  SWITCHBOARD_DATA_DIR: dataDir,
  ...(values.broker ? { SWITCHBOARD_BROKER: values.broker } : {}),
  ...(values.changes ? { SWITCHBOARD_CHANGES: values.changes } : {}),
});

const say = (text: string) => {
  if (!json) process.stdout.write(`${text}\n`);
};
const started: ServiceProcess[] = [];
let stopping = false;

async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(started.map((service) => service.stop()));
  if (once && values['data-dir'] === undefined) rmSync(dataDir, { recursive: true, force: true });
}

async function main(): Promise<boolean> {
  if (values.broker !== undefined && engineGuarantee(values.broker) === 'at-most-once') {
    throw new Error(
      `--broker ${values.broker} names an at-most-once engine: it keeps nothing for a service that is down and never ` +
        'redelivers, so the demo cannot send its messages through it. Use an at-least-once broker (sqlite:, nats://, ' +
        "amqp://, redis://, postgres://, sns-sqs://); MQTT carries events declared delivery: 'at-most-once' through the atMostOnce option " +
        'of createMessaging (see docs/adapters/mqtt.md).',
    );
  }
  say('Starting ServiceB, ServiceC and ServiceA as separate processes (embedded defaults: SQLite + files)...');
  const b = await startService('service-b', script('service-b'), env(values['port-b'], 4002), { echo: !json });
  started.push(b);
  const c = await startService('service-c', script('service-c'), env(values['port-c'], 4003), { echo: !json });
  started.push(c);
  const a = await startService(
    'service-a',
    script('service-a'),
    { ...env(values['port-a'], 4001), SERVICE_B_URL: b.url, SERVICE_C_URL: c.url },
    { echo: !json },
  );
  started.push(a);
  say(`ServiceA at ${a.url}, ServiceB at ${b.url}, ServiceC at ${c.url}\n`);

  const client = createClient(serviceA, { baseUrl: a.url, timeoutMs: 60_000, retry: false });
  let allOk = true;
  for (const pattern of enabled) {
    let report: PatternReport;
    try {
      report = await client.call('process', { name: values.name ?? 'Ada Lovelace', pattern });
    } catch (error) {
      report = {
        pattern,
        ok: false,
        durationMs: 0,
        summary: error instanceof Error ? error.message : String(error),
        coupling: '',
        details: {},
      };
    }
    allOk &&= report.ok;
    if (json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else {
      say(titles[pattern]);
      say(`   ${report.ok ? 'ok' : 'FAILED'} in ${report.durationMs} ms: ${report.summary}`);
      say(`   A had to know: ${report.coupling}\n`);
    }
  }
  if (!once) {
    // One message B cannot handle yet, so the dashboard's dead-letter view has something to replay.
    const flaky = await client
      .call('process', { name: `${values.name ?? 'Ada Lovelace'} (flaky)`, pattern: 'message' })
      .catch((error: unknown) => ({ summary: error instanceof Error ? error.message : String(error) }));
    say('6. Dead letter: B fails a "(flaky)" name three times, then it waits in its dead letters');
    say(`   ${flaky.summary}`);
    say('   Replay it from the dashboard: B processes it the fourth time.\n');
  }
  await client.close();

  if (!once) {
    say(`Dashboard: ${a.url}/_switchboard/   (flows across A, B and C; each service also serves its own)`);
    say('The services keep running. Try them yourself:');
    say(`  curl -s -X POST ${b.url}/ops/save -H 'content-type: application/json' -d '{"name":"Grace Hopper"}'`);
    say(`  curl -s -X POST ${a.url}/ops/process -H 'content-type: application/json' -d '{"name":"Grace","pattern":"sync-http"}'`);
    say(`  curl -s ${b.url}/openapi.json   # B's API documents, generated from its contract (also /asyncapi.json)`);
    say('Ctrl-C stops them.');
  }
  return allOk;
}

process.on('SIGINT', () => {
  void stopAll().then(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void stopAll().then(() => process.exit(0));
});

try {
  const ok = await main();
  if (once) {
    await stopAll();
    process.exit(ok ? 0 : 1);
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  await stopAll();
  process.exit(1);
}
