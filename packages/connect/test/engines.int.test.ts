import { randomBytes } from 'node:crypto';
import { connectBroker } from '@switchboard/connect';
import { describe, expect, it } from 'vitest';

const suffix = randomBytes(4).toString('hex');

/** One URL per real engine on this machine; each must move a message end to end. */
const engines: [string, string][] = [
  ['nats', `nats://127.0.0.1:4222?prefix=sbconnect${suffix}`],
  ['rabbitmq', `amqp://guest:guest@127.0.0.1:5672?prefix=sbconnect-${suffix}.`],
  ['redis', `redis://127.0.0.1:6379/?prefix=sbconnect-${suffix}:`],
  ['postgres', `postgres://postgres@127.0.0.1:5432/test?prefix=sbconnect_${suffix}_`],
];

describe.each(engines)('connectBroker(%s)', (name, url) => {
  it('opens the engine by URL and moves a message', async () => {
    const broker = await connectBroker(url);
    expect(broker.name).toContain(name === 'redis' ? 'redis' : name);
    const topic = `connect-${suffix}-${name}`;
    try {
      await broker.declareGroup(topic, 'g');
      const received = new Promise<string>((resolve) => {
        void broker.subscribe({ topic, group: 'g' }, async (delivery) => {
          await delivery.ack();
          resolve(Buffer.from(delivery.body).toString());
        });
      });
      await broker.publish({ id: `m-${suffix}`, topic, headers: { 'ce-type': 'x' }, body: Buffer.from(`hello ${name}`) });
      expect(await received).toBe(`hello ${name}`);
    } finally {
      await broker.close();
    }
  });
});
