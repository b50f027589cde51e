import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ConsumerProcesses, randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createNatsBroker } from '../src/index.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbc${Date.now().toString(36)}`;
// The child runs the built package (`tsc -b packages/adapters/nats`).
const script = fileURLToPath(new URL('./fixtures/consumer.mjs', import.meta.url));
const TOTAL = 10_000;

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  await nc.close();
});

describe('nats: consumer process killed mid-stream', () => {
  it(`loses none of ${TOTAL} messages while the consumer is SIGKILLed twice`, { timeout: 180_000 }, async () => {
    const broker = await createNatsBroker({ url, prefix });
    const topic = randomName('crash');
    const group = randomName('workers');
    await broker.declareGroup(topic, group);

    const consumers = new ConsumerProcesses(script, [url, prefix, topic, group]);
    const messages = Array.from({ length: TOTAL }, () => testMessage(topic));
    await consumers.start();
    const publishing = (async () => {
      for (let i = 0; i < messages.length; i += 500) await broker.publishBatch(messages.slice(i, i + 500));
    })();
    const seenAtKill: number[] = [];
    for (const threshold of [TOTAL * 0.25, TOTAL * 0.6]) {
      await waitFor(() => consumers.distinct() >= threshold, `${threshold} distinct messages`, 60_000);
      seenAtKill.push(consumers.distinct());
      await consumers.kill('SIGKILL');
      await consumers.start();
    }
    await publishing;
    await waitFor(() => consumers.distinct() >= TOTAL, `all ${TOTAL} distinct messages`, 90_000);
    await consumers.kill('SIGTERM');
    await broker.close();

    const seen = new Set(consumers.handled);
    const deliveries = consumers.handled.length;
    await consumers.dispose();
    const missing = messages.filter((message) => !seen.has(message.id));
    expect(missing).toEqual([]);
    expect(seen.size).toBe(TOTAL);
    expect(seenAtKill.every((count) => count < TOTAL)).toBe(true);
    console.info(
      `[nats crash] published=${TOTAL} distinct=${seen.size} deliveries=${deliveries} duplicates=${deliveries - seen.size} killedAt=${seenAtKill.join(',')}`,
    );
  });
});
