import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Broker, DeadLetterStore, ReceiptStore } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import {
  benchConsumerSigning,
  benchProducerSigning,
  type ConsumerDone,
  type MessagingPath,
  messagingBenchContract,
  PAD,
  type ProducerDone,
  type ProducerStart,
  type WorkerMessage,
} from '../lib/messaging-bench.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { bodyTemplate, clockMs } from '../lib/stamp.js';
import { round } from '../lib/stats.js';

const SCENARIO = 'messaging';
const MAX_IN_FLIGHT = 256;
const BATCH = 64;
const BATCHES_IN_FLIGHT = 4;

const worker = (name: string) => fileURLToPath(new URL(`../workers/messaging-${name}.js`, import.meta.url));

/** A worker process: sends its start message, then yields what it reports. */
class Worker {
  readonly #child: ChildProcess;
  readonly #messages: WorkerMessage[] = [];
  #wake: (() => void) | undefined;
  #exit: string | undefined;

  constructor(name: string, start: unknown) {
    this.#child = fork(worker(name), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (message: WorkerMessage) => {
      this.#messages.push(message);
      this.#wake?.();
    });
    this.#child.on('exit', (code) => {
      this.#exit = `messaging-${name} exited with code ${String(code)}`;
      this.#wake?.();
    });
    this.#child.send(start as object);
  }

  /** The next report of type `type`; an `error` report or an early exit throws. */
  async next<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#messages.shift();
      if (message?.type === 'error') throw new Error(message.error);
      if (message?.type === type) return message as Extract<WorkerMessage, { type: T }>;
      if (message !== undefined) continue;
      if (this.#exit !== undefined) throw new Error(this.#exit);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} from the worker within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    this.#child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}

interface TwoProcessResult {
  readonly consumer: ConsumerDone;
  readonly producer: ProducerDone;
  /** Messages per second from the first send to the last handled message. */
  readonly msgsPerS: number;
}

/** One producer process and one consumer process on a fresh SQLite file. */
async function twoProcesses(
  mode: MessagingPath,
  count: number,
  producer: Omit<ProducerStart, 'path' | 'mode' | 'count' | 'signing'>,
  signing = false,
): Promise<TwoProcessResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-messaging-'));
  const path = join(dir, 'bench.db');
  const consumer = new Worker('consumer', { path, mode, count, maxInFlight: MAX_IN_FLIGHT, signing });
  let sender: Worker | undefined;
  try {
    await consumer.next('ready', 30_000);
    sender = new Worker('producer', { path, mode, count, signing, ...producer } satisfies ProducerStart);
    const timeoutMs = 120_000 + (producer.intervalMs ?? 0) * count;
    const [consumed, produced] = await Promise.all([consumer.next('consumed', timeoutMs), sender.next('produced', timeoutMs)]);
    return { consumer: consumed, producer: produced, msgsPerS: Math.round(count / ((consumed.lastAt - produced.startedAt) / 1000)) };
  } finally {
    await Promise.all([consumer.stop(), sender?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface InMemoryStores {
  readonly receipts?: ReceiptStore;
  readonly deadLetters: DeadLetterStore;
}

/** In one process: `count` messages sent in batches and handled, on the memory broker. Messages per second. */
export async function inMemory(
  count: number,
  path: 'broker' | 'transport' | 'full',
  signing = false,
  broker: Broker = createMemoryBroker(),
): Promise<number> {
  let handled = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const onHandled = (): void => {
    handled += 1;
    if (handled === count) finish();
  };
  const started = clockMs();
  if (path === 'broker') {
    // The broker alone: the same 1 KiB bodies, no envelope, no validation, no middleware.
    const topic = 'bench-memory';
    await broker.subscribe({ topic, group: 'bench', maxInFlight: MAX_IN_FLIGHT }, (delivery) => {
      onHandled();
      return delivery.ack();
    });
    const body = bodyTemplate(1024);
    for (let n = 0; n < count; n += MAX_IN_FLIGHT) {
      const messages = [];
      for (let i = n; i < Math.min(count, n + MAX_IN_FLIGHT); i++) messages.push({ id: `m-${i}`, topic, headers: {}, body });
      await broker.publishBatch(messages);
    }
  } else {
    const stores: InMemoryStores = {
      deadLetters: createMemoryDeadLetterStore(),
      ...(path === 'full' ? { receipts: createMemoryReceiptStore() } : {}),
    };
    const consumer = createMessaging({
      broker,
      service: messagingBenchContract.name,
      maxInFlight: MAX_IN_FLIGHT,
      ...stores,
      ...(signing ? { signing: benchConsumerSigning } : {}),
    });
    consumer.handle(messagingBenchContract, 'work.submitted', onHandled);
    await consumer.start();
    const producer = createMessaging({
      broker,
      service: 'bench-producer',
      deadLetters: false,
      ...(signing ? { signing: benchProducerSigning } : {}),
    });
    for (let n = 0; n < count; n += MAX_IN_FLIGHT) {
      const items = [];
      for (let i = n; i < Math.min(count, n + MAX_IN_FLIGHT); i++) {
        items.push({ name: 'work.submitted' as const, data: { n: i, sentAt: 0, pad: PAD } });
      }
      await producer.sendBatch(messagingBenchContract, items);
    }
    await finished;
    await consumer.close();
  }
  await finished;
  const elapsed = clockMs() - started;
  await broker.close();
  return Math.round(count / (elapsed / 1000));
}

async function sqlitePaths(ctx: ScenarioContext): Promise<void> {
  const count = Math.max(2000, Math.round(40_000 * ctx.scale));
  const rates: Partial<Record<MessagingPath, number>> = {};
  const labels: Record<MessagingPath, string> = {
    bare: 'bare SQLite queue',
    transport: 'messaging transport path',
    full: 'messaging full path',
  };
  for (const mode of ['bare', 'transport', 'full'] as const) {
    const result = await twoProcesses(mode, count, { batch: BATCH, inFlight: BATCHES_IN_FLIGHT });
    rates[mode] = result.msgsPerS;
    const bare = rates.bare;
    ctx.record({
      scenario: SCENARIO,
      subject: `sqlite: ${labels[mode]}`,
      load: `${count} x 1 KiB`,
      metrics: {
        msgsPerS: result.msgsPerS,
        consumerOnlyMsgsPerS: Math.round(count / ((result.consumer.lastAt - result.consumer.firstAt) / 1000)),
        consumerCpuUsPerMsg: round((result.consumer.cpuMs * 1000) / count, 1),
        producerCpuUsPerMsg: round((result.producer.cpuMs * 1000) / count, 1),
        p50Ms: result.consumer.p50Ms,
        ...(bare !== undefined && mode !== 'bare' ? { ratioToBare: round(result.msgsPerS / bare, 3) } : {}),
      },
    });
  }
}

async function sqliteIdleLatency(ctx: ScenarioContext): Promise<void> {
  const count = Math.max(50, Math.round(300 * ctx.scale));
  const result = await twoProcesses('full', count, { batch: 1, inFlight: 1, intervalMs: 20 });
  ctx.record({
    scenario: SCENARIO,
    subject: 'sqlite: messaging full path, idle',
    load: `1 msg / 20 ms x ${count}`,
    metrics: { p50Ms: result.consumer.p50Ms, p99Ms: result.consumer.p99Ms },
  });
}

async function memoryPaths(ctx: ScenarioContext): Promise<void> {
  const count = Math.max(20_000, Math.round(200_000 * ctx.scale));
  // Warm the code paths up once, so the first measured subject is not the one that pays for JIT.
  await inMemory(Math.min(count, 20_000), 'full');
  const rates: Record<string, number> = {};
  const subjects: [string, 'broker' | 'transport' | 'full'][] = [
    ['memory: broker alone (publishBatch + ack)', 'broker'],
    ['memory: messaging transport path', 'transport'],
    ['memory: messaging full path', 'full'],
  ];
  for (const [subject, path] of subjects) {
    const msgsPerS = await inMemory(count, path);
    rates[path] = msgsPerS;
    const broker = rates.broker;
    ctx.record({
      scenario: SCENARIO,
      subject,
      load: `${count} x 1 KiB, 1 process`,
      metrics: {
        msgsPerS,
        usPerMsg: round(1e6 / msgsPerS, 2),
        ...(broker !== undefined && path !== 'broker' ? { addedUsPerMsg: round(1e6 / msgsPerS - 1e6 / broker, 2) } : {}),
      },
    });
  }
}

/**
 * The messaging layer on SQLite (separate producer and consumer processes, 1 KiB messages, acked):
 * the bare SQLite queue, the transport path (envelope + validation + ack; no inbox, no receipts)
 * and the full path (SQLite inbox + receipts), then the idle publish→handler latency of the full
 * path; and in memory, in one process, send→handler through the broker alone, the transport path
 * and the full path, which shows what the framework's middleware costs per message.
 */
export const messaging: Scenario = {
  name: SCENARIO,
  description: 'messaging: SQLite bare queue vs transport vs full path (2 processes, 1 KiB), idle latency; in-memory overhead',
  async run(ctx) {
    await sqlitePaths(ctx);
    await sqliteIdleLatency(ctx);
    await memoryPaths(ctx);
  },
};

/**
 * Signed messages on the messaging transport path, signing off and on in the same run, alternated
 * (off, on, off, on) so that a change of machine load hits both: SQLite with separate producer and
 * consumer processes (HMAC-SHA256 signing in the producer, verification before the pipeline in the
 * consumer), and in memory in one process (both sides on one core: the worst case for the ratio).
 */
export const messagingSigning: Scenario = {
  name: 'messaging-signing',
  description: 'messaging transport path with signed messages (HMAC-SHA256) vs unsigned, same run: SQLite 2 processes and in memory',
  async run(ctx) {
    const count = Math.max(2000, Math.round(40_000 * ctx.scale));
    const sqlite: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (const signing of [false, true, false, true]) {
      const result = await twoProcesses('transport', count, { batch: BATCH, inFlight: BATCHES_IN_FLIGHT }, signing);
      sqlite[signing ? 'on' : 'off'].push(result.msgsPerS);
      ctx.record({
        scenario: 'messaging-signing',
        subject: `sqlite: messaging transport path, signing ${signing ? 'on' : 'off'}`,
        load: `${count} x 1 KiB`,
        metrics: {
          msgsPerS: result.msgsPerS,
          consumerCpuUsPerMsg: round((result.consumer.cpuMs * 1000) / count, 1),
          producerCpuUsPerMsg: round((result.producer.cpuMs * 1000) / count, 1),
        },
      });
    }
    const memoryCount = Math.max(20_000, Math.round(100_000 * ctx.scale));
    await inMemory(Math.min(memoryCount, 20_000), 'transport', true);
    const memory: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (const signing of [false, true, false, true]) {
      const msgsPerS = await inMemory(memoryCount, 'transport', signing);
      memory[signing ? 'on' : 'off'].push(msgsPerS);
      ctx.record({
        scenario: 'messaging-signing',
        subject: `memory: messaging transport path, signing ${signing ? 'on' : 'off'}`,
        load: `${memoryCount} x 1 KiB, 1 process`,
        metrics: { msgsPerS, usPerMsg: round(1e6 / msgsPerS, 2) },
      });
    }
    const best = (rates: number[]) => Math.max(...rates);
    for (const [subject, rates] of [
      ['sqlite', sqlite],
      ['memory', memory],
    ] as const) {
      ctx.record({
        scenario: 'messaging-signing',
        subject: `${subject}: signed / unsigned (best of two each)`,
        load: '',
        metrics: {
          ratio: round(best(rates.on) / best(rates.off), 3),
          usPerMsgAdded: round(1e6 / best(rates.on) - 1e6 / best(rates.off), 2),
        },
      });
    }
  },
};
