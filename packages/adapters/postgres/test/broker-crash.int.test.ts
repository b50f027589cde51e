import { fileURLToPath } from 'node:url';
import { crashConsumers, randomName } from '@switchboard/testkit';
import { expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';
import { testSchema, url } from './schema.js';

// The consumers run the built package (dist): build it first with `tsc -b packages/adapters/postgres`.
const schema = testSchema('sbcrash');
const script = fileURLToPath(new URL('./broker-crash-consumer.mjs', import.meta.url));

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
