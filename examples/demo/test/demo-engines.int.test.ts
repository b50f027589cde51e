import { fileURLToPath } from 'node:url';
import { runNodeToExit, startFauxqsServer } from '@switchboard/testkit';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/**
 * The same demo, unchanged, on every real engine: only the `--broker` URL differs. Fixed
 * prefixes keep repeated runs on the same streams, queues, keys and tables instead of piling up
 * new ones.
 */
const engines: [string, string][] = [
  ['NATS JetStream', 'nats://127.0.0.1:4222/?prefix=sbdemotest'],
  ['RabbitMQ', 'amqp://guest:guest@127.0.0.1:5672/?prefix=sbdemotest'],
  ['Redis Streams', 'redis://127.0.0.1:6379/?prefix=sbdemotest:'],
  ['PostgreSQL', 'postgres://postgres@127.0.0.1:5432/test?prefix=sbdemotest_'],
];

function runDemo(broker: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeToExit(main, ['--once', '--json', '--broker', broker]);
}

function expectAllOk({ code, stdout, stderr }: { code: number | null; stdout: string; stderr: string }): void {
  expect(stderr).toBe('');
  const lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { pattern: string; ok: boolean; summary: string });
  expect(lines.map((line) => line.pattern)).toEqual([
    'sync-http',
    'async-http',
    'message',
    'request-reply',
    'event',
    'claim-check',
    'change-event',
  ]);
  for (const line of lines) expect(line.ok, `${line.pattern}: ${line.summary}`).toBe(true);
  expect(code).toBe(0);
}

describe('the demo on SNS + SQS (fauxqs on loopback)', () => {
  it('runs every pattern, the claim check through S3, with only the broker URL changed', async () => {
    const emulator = await startFauxqsServer();
    try {
      expectAllOk(await runDemo(emulator.url));
      // The picture went to the emulator's S3, not to a folder: the one URL switched both.
      const listing = await fetch(`${emulator.endpoint}/switchboard-claim-checks?list-type=2`);
      expect(await listing.text()).toMatch(/claim-checks\/sha256\/[0-9a-f]{64}/);
    } finally {
      await emulator.stop();
    }
  });
});

describe.each(engines)('the demo on %s', (_name, broker) => {
  it('runs every pattern successfully with only the broker URL changed', async () => {
    expectAllOk(await runDemo(broker));
  });
});
