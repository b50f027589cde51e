import { isSwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import pg from 'pg';
import { expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';
import { testSchema, url } from './schema.js';

const schema = testSchema('sbtest');

it('creates its tables once when several brokers start at the same time', async () => {
  const brokers = Array.from({ length: 6 }, () => createPostgresBroker({ url, schema, prefix: 'race_' }));
  try {
    const topic = randomName('t');
    await Promise.all(brokers.map((broker, i) => broker.declareGroup(topic, `g${i}`)));
    const recorder = new DeliveryRecorder();
    await brokers[0]!.subscribe({ topic, group: 'g0' }, recorder.handler);
    await brokers[1]!.publish(testMessage(topic));
    await recorder.waitForCount(1, 10_000);
    expect(recorder.count).toBe(1);
  } finally {
    await Promise.all(brokers.map((broker) => broker.close()));
  }
});

it('refuses a body over the declared limit with SB_MESSAGE_TOO_LARGE; nothing of a refused batch is written', async () => {
  const broker = createPostgresBroker({ url, schema, maxMessageBytes: 1000 });
  try {
    const topic = randomName('t');
    const group = randomName('g');
    await broker.declareGroup(topic, group);
    const tooLarge = await broker.publish(testMessage(topic, { body: new Uint8Array(1001) })).catch((e: unknown) => e);
    expect(isSwitchboardError(tooLarge, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const first = testMessage(topic);
    const inBatch = await broker.publishBatch([first, testMessage(topic, { body: new Uint8Array(5000) })]).catch((e: unknown) => e);
    expect(isSwitchboardError(inBatch, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const atLimit = testMessage(topic, { body: new Uint8Array(1000) });
    await broker.publish(atLimit);
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group }, recorder.handler);
    await recorder.waitForCount(1, 10_000);
    expect(recorder.ids()).toEqual([atLimit.id]);
  } finally {
    await broker.close();
  }
});

it('deletes acknowledged rows: nothing is left in the queue once every group acked', async () => {
  const broker = createPostgresBroker({ url, schema, prefix: 'clean_' });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const topic = randomName('t');
    await broker.declareGroup(topic, 'a');
    await broker.declareGroup(topic, 'b');
    const messages = Array.from({ length: 20 }, () => testMessage(topic));
    await broker.publishBatch(messages);
    const count = async () =>
      Number(
        (
          await client.query(
            `SELECT count(*) FROM "${schema}".clean_queue q JOIN "${schema}".clean_groups g ON g.gid = q.gid WHERE g.topic = $1`,
            [topic],
          )
        ).rows[0].count,
      );
    // A row per message and group.
    expect(await count()).toBe(40);
    const a = new DeliveryRecorder();
    const b = new DeliveryRecorder();
    await broker.subscribe({ topic, group: 'a' }, a.handler);
    await a.waitForUnique(20, 10_000);
    await broker.subscribe({ topic, group: 'b' }, b.handler);
    await b.waitForUnique(20, 10_000);
    const deadline = Date.now() + 10_000;
    while ((await count()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await count()).toBe(0);
  } finally {
    await broker.close();
    await client.end();
  }
});
