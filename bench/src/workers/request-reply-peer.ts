/**
 * Both ends of the request/reply scenario. As a process (`node request-reply-peer.js <spec>`) it is
 * the responder and prints one JSON line when it serves; `requester(spec)` is the other end, used by
 * the scenario in its own process. Engines:
 * - `raw-nats`: hand-rolled core NATS request/reply with the official client: one wildcard inbox
 *   subscription, a reply subject per request, a queue subscription that answers with `respond`;
 *   JSON bodies, no envelope, no validation.
 * - `switchboard-nats`: `messaging.request` served by `messaging.serve` on the NATS adapter
 *   (core NATS reply subjects; CloudEvents in the NATS binding, schemas checked on both ends).
 * - `switchboard-redis`: the same on Redis Streams (the generic request/reply: a reply stream per process).
 * - `moleculer-nats`: Moleculer 0.15 `broker.call` to an action, over its NATS transporter.
 */
import { createInbox, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Broker } from '@switchboard/core';
import { defineContract, operation } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { createNatsBroker } from '@switchboard/nats';
import { createRedisStreamsBroker } from '@switchboard/redis';
import moleculer from 'moleculer';
import { z } from 'zod';

export type RequestReplyEngine = 'raw-nats' | 'switchboard-nats' | 'switchboard-redis' | 'moleculer-nats';

export interface RequestReplySpec {
  readonly engine: RequestReplyEngine;
  readonly runId: string;
  readonly natsUrl: string;
  readonly redisUrl: string;
}

export interface Requester {
  /** One request; resolves with the answer's `n`. */
  call(n: number): Promise<number>;
  close(): Promise<void>;
}

function contractOf(runId: string) {
  return defineContract({
    name: `bench-rr-${runId}`,
    operations: {
      double: operation({ input: z.object({ n: z.number(), pad: z.string() }), output: z.object({ n: z.number() }) }),
    },
  });
}

const rawSubject = (runId: string) => `bench-rr-${runId}`;

async function switchboardBroker(spec: RequestReplySpec): Promise<Broker> {
  return spec.engine === 'switchboard-nats'
    ? createNatsBroker({ url: spec.natsUrl, prefix: `bench${spec.runId}` })
    : createRedisStreamsBroker({ url: spec.redisUrl, prefix: `bench-rr-${spec.runId}:` });
}

function moleculerBroker(spec: RequestReplySpec, role: string) {
  return new moleculer.ServiceBroker({
    namespace: `bench-rr-${spec.runId}`,
    nodeID: `${role}-${process.pid}`,
    transporter: spec.natsUrl as 'NATS',
    logger: false,
  });
}

/** Starts the responder; resolves with its `close`. */
export async function responder(spec: RequestReplySpec): Promise<() => Promise<void>> {
  switch (spec.engine) {
    case 'raw-nats': {
      const nc = await connect({ servers: spec.natsUrl });
      nc.subscribe(rawSubject(spec.runId), {
        queue: 'responder',
        callback: (_error, msg) => {
          const { n } = msg.json<{ n: number }>();
          msg.respond(JSON.stringify({ n: n * 2 }));
        },
      });
      await nc.flush();
      return () => nc.drain();
    }
    case 'moleculer-nats': {
      const broker = moleculerBroker(spec, 'responder');
      broker.createService({
        name: 'responder',
        actions: { double: (ctx: { params: { n: number } }) => ({ n: ctx.params.n * 2 }) },
      });
      await broker.start();
      return () => broker.stop();
    }
    default: {
      const contract = contractOf(spec.runId);
      const broker = await switchboardBroker(spec);
      const messaging = createMessaging({ broker, service: contract.name, deadLetters: false, maxInFlight: 256 });
      messaging.serve(contract, { double: async ({ n }) => ({ n: n * 2 }) });
      await messaging.start();
      return async () => {
        await messaging.close();
        await broker.close();
      };
    }
  }
}

/** The requesting end. */
export async function requester(spec: RequestReplySpec, pad: string): Promise<Requester> {
  switch (spec.engine) {
    case 'raw-nats':
      return rawNatsRequester(await connect({ servers: spec.natsUrl }), rawSubject(spec.runId), pad);
    case 'moleculer-nats': {
      const broker = moleculerBroker(spec, 'requester');
      await broker.start();
      await broker.waitForServices('responder', 30_000);
      return {
        call: async (n) => ((await broker.call('responder.double', { n, pad })) as { n: number }).n,
        close: () => broker.stop(),
      };
    }
    default: {
      const contract = contractOf(spec.runId);
      const broker = await switchboardBroker(spec);
      const messaging = createMessaging({ broker, service: 'bench-requester', deadLetters: false });
      return {
        call: async (n) => (await messaging.request(contract, 'double', { n, pad }, { timeout: 30_000 })).n,
        close: async () => {
          await messaging.close();
          await broker.close();
        },
      };
    }
  }
}

/** Request/reply by hand: one inbox subscription, a token per request, a map of waiting calls. */
function rawNatsRequester(nc: NatsConnection, subject: string, pad: string): Requester {
  const inbox = createInbox();
  const waiting = new Map<string, (n: number) => void>();
  let next = 0;
  nc.subscribe(`${inbox}.*`, {
    callback: (_error, msg: Msg) => {
      const token = msg.subject.slice(inbox.length + 1);
      const resolve = waiting.get(token);
      if (resolve === undefined) return;
      waiting.delete(token);
      resolve(msg.json<{ n: number }>().n);
    },
  });
  return {
    call: (n) =>
      new Promise<number>((resolve) => {
        const token = (next++).toString(36);
        waiting.set(token, resolve);
        nc.publish(subject, JSON.stringify({ n, pad }), { reply: `${inbox}.${token}` });
      }),
    close: () => nc.drain(),
  };
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as RequestReplySpec;
  const close = await responder(spec);
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  process.on('SIGTERM', () => {
    void close().then(() => process.exit(0));
  });
}
