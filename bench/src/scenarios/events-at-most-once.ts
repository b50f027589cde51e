import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import type { EmitResult, PeerCommand, PeerEngine, PeerSpec, ReceiveStats } from '../workers/events-peer.js';

const peerScript = fileURLToPath(new URL('../workers/events-peer.js', import.meta.url));
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Emits kept outstanding by the emitter, for every engine. */
const IN_FLIGHT = 1024;
/** Padding in the event's data: `{ seq, pad }` is about 140 bytes of JSON. */
const PAD_BYTES = 120;

const SUBJECTS: readonly { engine: PeerEngine; label: string }[] = [
  { engine: 'moleculer-nats', label: 'Moleculer 0.15.2 emit, NATS' },
  { engine: 'switchboard-nats-core', label: 'Switchboard emit, NATS core' },
  { engine: 'switchboard-redis-pubsub', label: 'Switchboard emit, Redis pub/sub' },
];

/** A peer process seen from the scenario: typed commands over IPC. */
class Peer {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (reply: { ok: boolean; result?: unknown; error?: string }) => void>();
  #next = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: { id?: number; ok: boolean; result?: unknown; error?: string }) => {
      if (message.id === undefined) return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
  }

  static async start(spec: PeerSpec): Promise<Peer> {
    const child = fork(peerScript, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [first] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => [{ failed: `exited with code ${String(code)}` }]),
    ])) as [{ ready?: true; failed?: string }];
    if (first.failed !== undefined) {
      child.kill('SIGKILL');
      throw new Error(`${spec.engine} ${spec.role} could not start: ${first.failed}`);
    }
    return new Peer(child);
  }

  call<T>(command: PeerCommand): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, (reply) => (reply.ok ? resolve(reply.result as T) : reject(new Error(reply.error))));
      this.#child.send({ id, command });
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

interface Measured {
  readonly emittedPerS: number;
  readonly receivedPerS: number;
  readonly emitted: number;
  readonly received: number;
  /** CPU time of the emitter process per emitted event, in microseconds. */
  readonly emitCpuUs: number;
  /** CPU time of the receiver process per received event, in microseconds. */
  readonly receiveCpuUs: number;
}

async function measure(engine: PeerEngine, ctx: ScenarioContext): Promise<Measured> {
  const base = { engine, runId: randomBytes(4).toString('hex'), natsUrl: NATS_URL, redisUrl: REDIS_URL };
  const receiver = await Peer.start({ ...base, role: 'receiver' });
  let emitter: Peer | undefined;
  try {
    emitter = await Peer.start({ ...base, role: 'emitter' });
    const plan = { inFlight: IN_FLIGHT, padBytes: PAD_BYTES };
    await emitter.call<EmitResult>({ op: 'emit', durationMs: Math.round(1000 * ctx.scale) + 200, ...plan });
    await settle(receiver, Number.POSITIVE_INFINITY);
    await receiver.call({ op: 'reset' });
    const run = await emitter.call<EmitResult>({ op: 'emit', durationMs: Math.round(5000 * ctx.scale) + 500, ...plan });
    const stats = await settle(receiver, run.emitted);
    const receiveSeconds = (stats.lastAt - stats.firstAt) / 1000;
    return {
      emittedPerS: run.emitted / (run.elapsedMs / 1000),
      receivedPerS: receiveSeconds > 0 ? stats.received / receiveSeconds : 0,
      emitted: run.emitted,
      received: stats.received,
      emitCpuUs: run.emitted > 0 ? run.cpuUs / run.emitted : 0,
      receiveCpuUs: stats.received > 0 ? stats.cpuUs / stats.received : 0,
    };
  } finally {
    await emitter?.close();
    await receiver.close();
  }
}

/** Waits until the receiver has `expected` events or its count stops growing (what is still missing was lost). */
async function settle(receiver: Peer, expected: number): Promise<ReceiveStats> {
  let last = await receiver.call<ReceiveStats>({ op: 'stats' });
  for (let quiet = 0; quiet < 3 && last.received < expected; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = await receiver.call<ReceiveStats>({ op: 'stats' });
    quiet = next.received === last.received ? quiet + 1 : 0;
    last = next;
  }
  return last;
}

/**
 * Fire-and-forget events: Moleculer 0.15.2 `broker.emit` over NATS next to Switchboard's
 * `messaging.emit` of an event declared `delivery: 'at-most-once'` (CloudEvents envelope, zod
 * validation on both sides) over core NATS and Redis pub/sub. Same data, same layout: one emitter
 * process, one receiver process, 1 024 emits outstanding. Besides the rates, each row gives the CPU
 * time per event of the emitter and of the receiver process (`emit_cpu_us`, `receive_cpu_us`):
 * steadier than the rates on a shared machine, where the processes compete for the same cores.
 */
export const eventsAtMostOnce: Scenario = {
  name: 'events-at-most-once',
  description: 'fire-and-forget events, emitter and receiver processes: Moleculer 0.15.2 (NATS) vs Switchboard (NATS core, Redis pub/sub)',
  async run(ctx) {
    let baseline: Measured | undefined;
    for (const { engine, label } of SUBJECTS) {
      let result: Measured;
      try {
        result = await measure(engine, ctx);
      } catch (error) {
        ctx.record({
          scenario: 'events-at-most-once',
          subject: label,
          load: `${IN_FLIGHT} in flight`,
          metrics: { error: error instanceof Error ? error.message : String(error) },
        });
        continue;
      }
      if (engine === 'moleculer-nats') baseline = result;
      const ratio = (value: number, of: number | undefined) => (of === undefined || of === 0 ? 'n/a' : round(value / of, 2));
      ctx.record({
        scenario: 'events-at-most-once',
        subject: label,
        load: `${IN_FLIGHT} in flight, ${PAD_BYTES + 20} B`,
        metrics: {
          emitted_per_s: Math.round(result.emittedPerS),
          received_per_s: Math.round(result.receivedPerS),
          lost: result.emitted - result.received,
          emit_vs_moleculer: ratio(result.emittedPerS, baseline?.emittedPerS),
          receive_vs_moleculer: ratio(result.receivedPerS, baseline?.receivedPerS),
          emit_cpu_us: round(result.emitCpuUs, 1),
          receive_cpu_us: round(result.receiveCpuUs, 1),
        },
      });
    }
  },
};
