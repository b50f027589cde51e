import type { Broker } from '@switchboard/core';
import { createMemoryBroker } from '@switchboard/memory';
import { ConsumeRecorder } from '../lib/consume-recorder.js';
import { type Publisher, runPublishPlan } from '../lib/publish-load.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import type { PublishPlan } from '../lib/worker-protocol.js';

const SCENARIO = 'memory-broker';
const TARGET_MSGS_PER_S = 200_000;
const BODY_BYTES = 100;
const TOPIC = 'bench.memory';

/**
 * The least an in-process queue can do: an array drained in a microtask, each message
 * handed to an async handler. No groups, acks, timeouts or copies: the baseline, not a broker.
 */
function bareQueue(onMessage: (body: Uint8Array) => Promise<void>): Publisher {
  let queue: Buffer[] = [];
  let scheduled = false;
  const drain = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    for (const body of batch) void onMessage(body);
  };
  const push = (body: Buffer) => {
    queue.push(body);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(drain);
    }
  };
  return {
    async publish(body) {
      push(body);
    },
    async publishBatch(bodies) {
      for (const body of bodies) push(body);
    },
  };
}

function brokerPublisher(broker: Broker): Publisher {
  let n = 0;
  return {
    publish: (body) => broker.publish({ id: `m${++n}`, topic: TOPIC, headers: {}, body }),
    publishBatch: (bodies) => broker.publishBatch(bodies.map((body) => ({ id: `m${++n}`, topic: TOPIC, headers: {}, body }))),
  };
}

/**
 * The in-memory broker, send→handler in one process: N × 100 B published (one `publish` per
 * message with 256 in flight, or `publishBatch` of 1 000), each delivery acked by the handler,
 * throughput from the first publish to the last handler call. Next to a bare array queue.
 */
export const brokerMemory: Scenario = {
  name: SCENARIO,
  description: 'in-memory broker send→handler msgs/s (target ≥ 200 000/s) next to a bare in-process queue',
  async run(ctx) {
    const count = Math.max(20_000, Math.round(500_000 * ctx.scale));
    const pipelined: PublishPlan = { mode: 'pipelined', inFlight: 256, count, bodyBytes: BODY_BYTES };
    const batched: PublishPlan = { mode: 'batch', batchSize: 1000, count, bodyBytes: BODY_BYTES };
    const bare = await measure(ctx, 'bare in-process queue', 'publish x256', pipelined, undefined, async (recorder) => ({
      publisher: bareQueue(async (body) => recorder.onMessage(body)),
      close: async () => {},
    }));
    for (const [load, plan] of [
      ['publish x256', pipelined],
      ['publishBatch 1000', batched],
    ] as const) {
      await measure(ctx, 'switchboard memory broker', load, plan, bare, async (recorder) => {
        const broker = createMemoryBroker();
        await broker.subscribe({ topic: TOPIC, group: 'bench', maxInFlight: 256 }, (delivery) => {
          recorder.onMessage(delivery.body);
          return delivery.ack();
        });
        return { publisher: brokerPublisher(broker), close: () => broker.close() };
      });
    }
  },
};

async function measure(
  ctx: ScenarioContext,
  subject: string,
  load: string,
  plan: PublishPlan,
  bare: number | undefined,
  open: (recorder: ConsumeRecorder) => Promise<{ publisher: Publisher; close: () => Promise<void> }>,
): Promise<number> {
  const count = plan.count ?? 0;
  const recorder = new ConsumeRecorder({ latency: true });
  const { publisher, close } = await open(recorder);
  try {
    // Warm-up: let the JIT see the whole path once.
    await runPublishPlan(publisher, { ...plan, count: Math.min(count, 20_000) });
    await recorder.wait(Math.min(count, 20_000), 5_000);
    recorder.reset();
    const published = await runPublishPlan(publisher, plan);
    const handled = await recorder.wait(count, 5_000);
    const msgsPerS = handled.received > 0 ? round(handled.received / ((handled.lastAt - published.startedAt) / 1000), 0) : 0;
    ctx.record({
      scenario: SCENARIO,
      subject,
      load,
      metrics: {
        msgsPerS,
        p50Ms: handled.p50Ms,
        p99Ms: handled.p99Ms,
        messages: handled.received,
        ...(bare === undefined
          ? {}
          : { ratioToBare: round(msgsPerS / bare, 3), meetsTarget: msgsPerS >= TARGET_MSGS_PER_S ? 'yes' : 'no' }),
      },
    });
    return msgsPerS;
  } finally {
    await close();
  }
}
