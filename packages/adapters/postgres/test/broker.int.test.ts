import { isSwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';

const connectionString = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = randomName('sbtest').replaceAll('-', '_');

afterAll(async () => {
  const client = new pg.Client({ connectionString });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

it('creates its tables once when several brokers start at the same time', async () => {
  const brokers = Array.from({ length: 6 }, () => createPostgresBroker({ connectionString, schema, tablePrefix: 'race_' }));
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
  const broker = createPostgresBroker({ connectionString, schema, maxMessageBytes: 1000 });
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

it('deletes acknowledged rows: no message or delivery is left once every group acked', async () => {
  // Two groups acking one message at the same moment leave it to the periodic sweep; a short
  // sweep interval keeps the test quick when that race happens.
  const broker = createPostgresBroker({ connectionString, schema, tablePrefix: 'clean_', sweepIntervalMs: 200 });
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const topic = randomName('t');
    await broker.declareGroup(topic, 'a');
    await broker.declareGroup(topic, 'b');
    const messages = Array.from({ length: 20 }, () => testMessage(topic));
    await broker.publishBatch(messages);
    const a = new DeliveryRecorder();
    const b = new DeliveryRecorder();
    await broker.subscribe({ topic, group: 'a' }, a.handler);
    await a.waitForUnique(20, 10_000);
    const count = async (table: string) =>
      Number((await client.query(`SELECT count(*) FROM "${schema}".clean_${table} WHERE topic = $1`, [topic])).rows[0].count);
    expect(await count('messages')).toBe(20);
    await broker.subscribe({ topic, group: 'b' }, b.handler);
    await b.waitForUnique(20, 10_000);
    const deadline = Date.now() + 20_000;
    while ((await count('messages')) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await count('messages')).toBe(0);
    expect(await count('deliveries')).toBe(0);
  } finally {
    await broker.close();
    await client.end();
  }
});
