import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createMetrics } from '@switchboard/metrics';
import { createNatsBroker } from '@switchboard/nats';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, describe, expect, it } from 'vitest';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbm${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  }
  await nc.close();
});

describe('queue depth from NATS JetStream', () => {
  it('reports the durable consumer pending count, and nothing for a group that does not exist', async () => {
    const broker = await createNatsBroker({ url, prefix });
    const metrics = createMetrics();
    try {
      await broker.declareGroup('orders', 'billing');
      for (let i = 0; i < 5; i++) await broker.publish({ id: `m${i}`, topic: 'orders', headers: {}, body: new Uint8Array([i]) });
      expect(await broker.pending('orders', 'billing')).toBe(5);
      expect(await broker.pending('orders', 'nobody')).toBeUndefined();
      metrics.watchQueue(broker, 'orders', 'billing');
      const parsed = parsePrometheusTextFormat(await metrics.text());
      const depth = parsed.find((family) => family.name === 'switchboard_queue_depth');
      expect(depth?.metrics).toEqual([
        {
          value: '5',
          labels: { messaging_system: 'nats', messaging_destination_name: 'orders', messaging_consumer_group_name: 'billing' },
        },
      ]);
    } finally {
      metrics.close();
      await broker.close();
    }
  });
});
