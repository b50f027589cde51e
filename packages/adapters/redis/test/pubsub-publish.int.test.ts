import { randomBytes } from 'node:crypto';
import type { Delivery, OutgoingMessage } from '@switchboard/core';
import { waitFor } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisPubSubBroker, type RedisPubSubBroker } from '../src/index.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function messages(topic: string, count: number): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `m-${i}-${randomBytes(4).toString('hex')}`,
    topic,
    headers: Object.freeze({ 'content-type': 'application/json' }),
    body: new TextEncoder().encode(JSON.stringify({ i })),
  }));
}

/** Publishes `count` messages in one event-loop turn and checks that the subscriber got each once, in order. */
async function publishTogether(broker: RedisPubSubBroker, count: number): Promise<void> {
  const topic = `t-${randomBytes(4).toString('hex')}`;
  const received: Delivery[] = [];
  const subscription = await broker.subscribe({ topic, group: 'g' }, async (delivery) => {
    received.push(delivery);
  });
  try {
    const sent = messages(topic, count);
    await Promise.all(sent.map((message) => broker.publish(message)));
    await waitFor(() => received.length >= count, `${count} deliveries (have ${received.length})`);
    expect(received.map((delivery) => delivery.id)).toEqual(sent.map((message) => message.id));
    expect(received.map((delivery) => delivery.headers)).toEqual(sent.map((message) => message.headers));
  } finally {
    await subscription.close();
  }
}

describe('Redis pub/sub publishing', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('sends the publishes of one turn together (one script call per 256), in order', async () => {
    const broker = createRedisPubSubBroker({ url, prefix: `sbt-psp-${randomBytes(3).toString('hex')}:` });
    closers.push(() => broker.close());
    await publishTogether(broker, 600);
    await publishTogether(broker, 1);
  });

  it('falls back to pipelined PUBLISHes on a server that refuses this client scripts', async () => {
    const admin = new Redis(url);
    closers.push(() => admin.quit());
    const user = `sbt-noscript-${randomBytes(4).toString('hex')}`;
    await admin.acl('SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all', '-@scripting');
    closers.push(() => admin.acl('DELUSER', user));
    const broker = createRedisPubSubBroker({
      url,
      prefix: `sbt-psp-${randomBytes(3).toString('hex')}:`,
      redisOptions: { username: user, password: 'unused' },
    });
    closers.push(() => broker.close());
    // The first batch meets the refusal and goes out as PUBLISHes; later ones skip the script.
    await publishTogether(broker, 40);
    await publishTogether(broker, 40);
  });
});
