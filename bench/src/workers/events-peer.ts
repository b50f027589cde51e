/**
 * One side (emitter or receiver) of the `events-at-most-once` scenario, in its own process:
 * Moleculer 0.15 over NATS, or Switchboard's at-most-once event emit (createMessaging with an
 * at-most-once broker: core NATS or Redis pub/sub). The spec comes as JSON in argv[2]; the
 * scenario drives it over the IPC channel of `fork`.
 */
import type { Broker } from '@switchboard/core';
import { defineContract, event } from '@switchboard/core';
import { createMemoryBroker } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createNatsCoreBroker } from '@switchboard/nats';
import { createRedisPubSubBroker } from '@switchboard/redis';
import moleculer from 'moleculer';
import { z } from 'zod';

export type PeerEngine = 'moleculer-nats' | 'switchboard-nats-core' | 'switchboard-redis-pubsub';

export interface PeerSpec {
  readonly engine: PeerEngine;
  readonly role: 'emitter' | 'receiver';
  /** Unique per run: Moleculer namespace, contract name suffix. */
  readonly runId: string;
  readonly natsUrl: string;
  readonly redisUrl: string;
}

export type PeerCommand =
  | { readonly op: 'emit'; readonly durationMs: number; readonly inFlight: number; readonly padBytes: number }
  | { readonly op: 'reset' }
  | { readonly op: 'stats' };

export interface EmitResult {
  readonly emitted: number;
  readonly failed: number;
  readonly elapsedMs: number;
  /** CPU time (user + system) this process spent while emitting, in microseconds. */
  readonly cpuUs: number;
}

export interface ReceiveStats {
  readonly received: number;
  readonly firstAt: number;
  readonly lastAt: number;
  /** CPU time (user + system) this process spent since the last reset, in microseconds. */
  readonly cpuUs: number;
}

/** What the event carries, the same for every engine. */
interface TickData {
  readonly seq: number;
  readonly pad: string;
}

interface Peer {
  emit(data: TickData): Promise<unknown>;
  close(): Promise<void>;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as PeerSpec;
let received = 0;
let firstAt = 0;
let lastAt = 0;
let cpuSince = process.cpuUsage();

function cpuUsedSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function onTick(): void {
  const now = performance.now();
  if (received === 0) firstAt = now;
  received++;
  lastAt = now;
}

async function moleculerPeer(): Promise<Peer> {
  const broker = new moleculer.ServiceBroker({
    namespace: `bench-${spec.runId}`,
    nodeID: `${spec.role}-${process.pid}`,
    // Moleculer takes a URL string at run time; its typings list only the names of transporters.
    transporter: spec.natsUrl as 'NATS',
    logger: false,
  });
  if (spec.role === 'receiver') {
    broker.createService({ name: 'receiver', events: { 'bench.tick': { handler: onTick } } });
  }
  await broker.start();
  if (spec.role === 'emitter') await broker.waitForServices('receiver', 30_000);
  return {
    emit: (data) => broker.emit('bench.tick', data),
    close: () => broker.stop(),
  };
}

async function switchboardPeer(): Promise<Peer> {
  const contract = defineContract({
    name: `bench-ticker-${spec.runId}`,
    events: { tick: event({ data: z.object({ seq: z.number(), pad: z.string() }), delivery: 'at-most-once' }) },
  });
  const fast: Broker =
    spec.engine === 'switchboard-nats-core'
      ? await createNatsCoreBroker({ url: spec.natsUrl })
      : createRedisPubSubBroker({ url: spec.redisUrl });
  const reliable = createMemoryBroker();
  const messaging = createMessaging({
    broker: reliable,
    atMostOnce: { broker: fast },
    service: spec.role === 'emitter' ? contract.name : 'receiver',
    deadLetters: false,
    maxInFlight: 1024,
  });
  if (spec.role === 'receiver') {
    messaging.on(contract, 'tick', onTick);
    await messaging.start();
  }
  return {
    emit: (data) => messaging.emit(contract, 'tick', data),
    async close() {
      await messaging.close();
      await fast.close();
      await reliable.close();
    },
  };
}

/** Keeps `inFlight` emits outstanding for `durationMs`, then waits for the last ones. */
function emitFor(peer: Peer, durationMs: number, inFlight: number, padBytes: number): Promise<EmitResult> {
  const pad = 'x'.repeat(padBytes);
  let seq = 0;
  let emitted = 0;
  let failed = 0;
  let outstanding = 0;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const end = started + durationMs;
  return new Promise((resolve) => {
    const settle = (ok: boolean) => {
      outstanding--;
      if (ok) emitted++;
      else failed++;
      pump();
    };
    const ok = () => settle(true);
    const ko = () => settle(false);
    function pump(): void {
      while (outstanding < inFlight) {
        if (performance.now() >= end) {
          if (outstanding === 0) resolve({ emitted, failed, elapsedMs: performance.now() - started, cpuUs: cpuUsedSince(cpuStart) });
          return;
        }
        outstanding++;
        peer.emit({ seq: seq++, pad }).then(ok, ko);
      }
    }
    pump();
  });
}

async function main(): Promise<void> {
  let peer: Peer;
  try {
    peer = spec.engine === 'moleculer-nats' ? await moleculerPeer() : await switchboardPeer();
  } catch (error) {
    process.send?.({ failed: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    process.exit(1);
  }
  process.on('message', (request: { id: number; command: PeerCommand }) => {
    const { id, command } = request;
    const run = async (): Promise<unknown> => {
      switch (command.op) {
        case 'emit':
          return emitFor(peer, command.durationMs, command.inFlight, command.padBytes);
        case 'reset':
          received = 0;
          firstAt = 0;
          lastAt = 0;
          cpuSince = process.cpuUsage();
          return null;
        case 'stats':
          return { received, firstAt, lastAt, cpuUs: cpuUsedSince(cpuSince) } satisfies ReceiveStats;
      }
    };
    run().then(
      (result) => process.send?.({ id, ok: true, result }),
      (error: unknown) => process.send?.({ id, ok: false, error: String(error) }),
    );
  });
  process.on('disconnect', () => {
    void peer
      .close()
      .catch(() => {})
      .finally(() => process.exit(0));
  });
  process.send?.({ ready: true });
}

await main();
