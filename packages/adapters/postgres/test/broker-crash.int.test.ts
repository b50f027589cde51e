import { fileURLToPath } from 'node:url';
import { crashConsumers, randomName } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';

// The consumers run the built package (dist): build it first with `tsc -b packages/adapters/postgres`.
const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = randomName('sbcrash').replaceAll('-', '_');
const script = fileURLToPath(new URL('./broker-crash-consumer.mjs', import.meta.url));

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

it('loses none of 10 000 messages while the consumer process is SIGKILLed twice', { timeout: 180_000 }, async () => {
  const broker = createPostgresBroker({ url, schema });
  const topic = randomName('orders');
  const group = randomName('billing');
  try {
    const run = await crashConsumers({ broker, topic, group, script, args: [url, schema, topic, group] });
    console.log(
      `postgres crash test: sent ${run.sent.size}, handled ${run.handled.size} distinct, lost ${run.lost.length}, duplicates ${run.duplicates}`,
    );
    expect(run.sent.size).toBe(10_000);
    expect(run.lost).toEqual([]);
    expect(run.strays).toEqual([]);
  } finally {
    await broker.close();
  }
});
