import { fileURLToPath } from 'node:url';
import { newMessageId, type OutgoingMessage } from '@switchboard/core';
import { ConsumerProcesses, randomName, waitFor } from '@switchboard/testkit';
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
  const total = 10_000;
  const topic = randomName('orders');
  const group = randomName('billing');
  const broker = createPostgresBroker({ url, schema });
  await broker.declareGroup(topic, group);
  const consumers = new ConsumerProcesses(script, [url, schema, topic, group]);
  await consumers.start();

  const sent = new Set<string>();
  const publishing = (async () => {
    for (let i = 0; i < total; i += 250) {
      const batch: OutgoingMessage[] = Array.from({ length: 250 }, () => ({
        id: newMessageId(),
        topic,
        headers: {},
        body: Buffer.from('x'),
      }));
      await broker.publishBatch(batch);
      for (const message of batch) sent.add(message.id);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  for (const killAt of [2_500, 6_000]) {
    await waitFor(() => consumers.distinct() >= killAt, `${killAt} handled messages`, 60_000);
    await consumers.kill();
    await consumers.start();
  }
  await publishing;
  await waitFor(() => consumers.distinct() >= total, `all ${total} messages (have ${consumers.distinct()})`, 90_000);
  await consumers.kill();
  await broker.close();

  const handled = new Set(consumers.handled);
  const duplicates = consumers.duplicates();
  await consumers.dispose();
  const lost = [...sent].filter((id) => !handled.has(id));
  console.log(`postgres crash test: sent ${sent.size}, handled ${handled.size} distinct, lost ${lost.length}, duplicates ${duplicates}`);
  expect(sent.size).toBe(total);
  expect(lost).toEqual([]);
  expect([...handled].every((id) => sent.has(id))).toBe(true);
});
