import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { newMessageId } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { openDatabase } from '@switchboard/sqlite';
import { delay } from '@switchboard/testkit';
import { type BrokerConfig, type EngineName, type EngineServer, openBroker, withPort } from './engines.js';
import { FaultProxy } from './proxy.js';
import { CONSUMER_TIMEOUTS, type ConsumerConfig, chaosReceiver, type Recipe, SENDER } from './workload.js';

export const FAULTS = ['consumer-kill', 'zombie', 'broker-kill', 'partition', 'latency', 'disk-full', 'clock-jump'] as const;
export type FaultName = (typeof FAULTS)[number];

/** Faults that do not apply to an engine, and why. */
export function notApplicable(engine: EngineName, fault: FaultName): string | undefined {
  if (engine === 'sqlite' && (fault === 'broker-kill' || fault === 'partition' || fault === 'latency')) {
    return 'embedded: no broker process and no network between consumer and queue (the consumer SIGKILL is the broker crash)';
  }
  if (engine !== 'sqlite' && fault === 'disk-full') return 'SQLite only (the broker server owns its disk)';
  return undefined;
}

export interface ScenarioOptions {
  readonly engine: EngineName;
  readonly fault: FaultName;
  /** The private server of the engine (not used for SQLite). */
  readonly server: EngineServer;
  /** Messages attempted. */
  readonly total: number;
  readonly recipe?: Recipe;
  /** How long a partition, a SIGSTOP, a broker outage or a full disk lasts. */
  readonly faultMs?: number;
  /** Added to every chunk both ways on the consumer's connection for `latency`. Default 25 ms. */
  readonly latencyMs?: number;
  /** How long to wait after the last send for every acknowledged message to be handled. Default 60 s. */
  readonly settleMs?: number;
}

export interface ChaosResult {
  readonly engine: EngineName;
  readonly fault: FaultName;
  readonly recipe: Recipe;
  /** Messages `sendBatch` was called for. */
  readonly attempted: number;
  /** Messages whose send resolved (the broker confirmed them). */
  readonly acknowledged: number;
  /** Acknowledged, never handled, not dead-lettered, and no receipt: the engine never delivered them. */
  readonly lost: number;
  /** Side-effect rows beyond one per message. */
  readonly duplicated: number;
  /** Side effects of messages never attempted. */
  readonly unexpected: number;
  /** Dead letters by reason. */
  readonly deadLettered: Readonly<Record<string, number>>;
  /** Acknowledged, not handled, not dead-lettered, but received by the inbox (a receipt not `processed`). */
  readonly stuck: number;
  /** Sends that failed (not acknowledged) whose message was still handled: indeterminate sends that landed. */
  readonly unacknowledgedHandled: number;
  /** Late completions of a zombie the fenced recipe refused (its effect not written). */
  readonly fenced: number;
  /** After each fault ended: time until the next side effect was committed (the longest). */
  readonly recoveryMs: number | undefined;
  /** From the first send until every acknowledged message was handled (or the settle time ran out). */
  readonly durationMs: number;
  readonly notes: readonly string[];
}

// The built consumer, from src/ (tests) as from dist/.
const CONSUMER = fileURLToPath(new URL('../dist/consumer.js', import.meta.url));
/** Messages per `sendBatch`, and the pause between batches: about 1 000 messages a second, so the sending spans the faults. */
const BATCH = 50;
const PACE_MS = 50;

/** The consumer processes of one run. */
class Consumers {
  readonly #config: ConsumerConfig;
  readonly children: ChildProcess[] = [];

  constructor(config: ConsumerConfig) {
    this.#config = config;
  }

  /** Starts a consumer (optionally under libfaketime) and resolves once it subscribed. */
  start(env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
    const child = spawn(process.execPath, [CONSUMER, JSON.stringify(this.#config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.children.push(child);
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (process.env.CHAOS_DEBUG) process.stderr.write(chunk);
      errors = (errors + chunk.toString('utf8')).slice(-2000);
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`consumer exited before it was ready (${String(code ?? signal)}): ${errors}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve(child);
      });
    });
  }

  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.children.map((child) => this.kill(child)));
  }
}

/** Read side of the run's SQLite file (effects, receipts, dead letters). */
class Tally {
  readonly #db;
  constructor(path: string) {
    this.#db = openDatabase(path);
    this.#db.pragma('busy_timeout = 10000');
  }
  #has(table: string): boolean {
    return this.#db.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').get(table) !== undefined;
  }
  distinctHandled(): number {
    return this.#has('effects') ? (this.#db.prepare('SELECT count(DISTINCT message_id) AS c FROM effects').get() as { c: number }).c : 0;
  }
  effects(): Map<string, number> {
    const rows = this.#db.prepare('SELECT message_id AS id, count(*) AS c FROM effects GROUP BY message_id').all() as {
      id: string;
      c: number;
    }[];
    return new Map(rows.map((row) => [row.id, row.c]));
  }
  firstEffectAfter(at: number): number | undefined {
    const row = this.#db.prepare('SELECT min(at) AS at FROM effects WHERE at >= ?').get(at) as { at: number | null };
    return row.at ?? undefined;
  }
  deadLetters(): Map<string, string> {
    if (!this.#has('sb_dead_letters')) return new Map();
    const rows = this.#db.prepare('SELECT message_id AS id, reason FROM sb_dead_letters').all() as { id: string; reason: string }[];
    return new Map(rows.map((row) => [row.id, row.reason]));
  }
  receipts(): Map<string, string> {
    if (!this.#has('sb_receipts')) return new Map();
    const rows = this.#db.prepare('SELECT message_id AS id, state FROM sb_receipts').all() as { id: string; state: string }[];
    return new Map(rows.map((row) => [row.id, row.state]));
  }
  /** Messages in `processing` whose claim was made before `at` (leases of `leaseMs`). */
  processingClaimedBefore(at: number, leaseMs: number): string[] {
    if (!this.#has('sb_receipts')) return [];
    return this.#db
      .prepare("SELECT message_id AS id FROM sb_receipts WHERE state = 'processing' AND lease_until <= ?")
      .pluck()
      .all(at + leaseMs) as string[];
  }
  /** How many of `ids` are still not `processed`. */
  unprocessed(ids: readonly string[]): number {
    const state = this.#db.prepare('SELECT state FROM sb_receipts WHERE message_id = ?').pluck();
    return ids.filter((id) => state.get(id) !== 'processed').length;
  }
  fenced(): number {
    return this.#has('fenced') ? (this.#db.prepare('SELECT count(*) AS c FROM fenced').get() as { c: number }).c : 0;
  }
  close(): void {
    this.#db.close();
  }
}

/** A tmpfs of `size` mounted on `dir` (root only): a disk that can be filled without touching any other. */
function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

/** Writes a file until the disk under `dir` is full; returns its path. */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full, the last megabyte's remainder included.
    try {
      for (;;) writeSync(fd, chunk, 0, 4096);
    } catch {
      // Full to the page.
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Where libfaketime's preload library is, if installed. */
export function libfaketime(): string | undefined {
  for (const path of ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1']) {
    try {
      closeSync(openSync(path, 'r'));
      return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/**
 * One run: `total` messages sent through Switchboard messaging to `chaos-b` while the fault
 * happens once (the consumer SIGKILL twice), then counted from the side-effect table, the dead
 * letters and the receipts, Jepsen-style.
 */
export async function runScenario(options: ScenarioOptions): Promise<ChaosResult> {
  const { engine, fault, server, total } = options;
  const recipe = options.recipe ?? 'fenced';
  const faultMs = options.faultMs ?? (fault === 'zombie' ? 8000 : fault === 'partition' ? 10_000 : 3000);
  const settleMs = options.settleMs ?? 60_000;
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sb-chaos-'));
  let mounted = false;
  if (fault === 'disk-full') {
    mountTmpfs(dir, '96m');
    mounted = true;
  }
  const prefix = `chaos${randomBytes(4).toString('hex')}`;
  const direct: BrokerConfig = { engine, url: engine === 'sqlite' ? join(dir, 'broker.db') : server.url, prefix };
  const proxy = (fault === 'partition' || fault === 'latency') && server.port !== undefined ? new FaultProxy(server.port) : undefined;
  if (proxy) {
    await proxy.start();
    if (fault === 'latency') proxy.latency(options.latencyMs ?? 25);
  }
  const dbPath = join(dir, 'effects.db');
  const consumers = new Consumers({
    broker: proxy ? { ...direct, url: withPort(server.url, proxy.port) } : direct,
    db: dbPath,
    recipe,
    workMs: fault === 'zombie' ? 200 : 10,
    maxInFlight: 64,
  });
  const publisherBroker = await openBroker(direct);
  const publisher = createMessaging({ broker: publisherBroker, service: SENDER, deadLetters: false });
  const attempted = new Set<string>();
  const acknowledged = new Set<string>();
  const faultEnds: number[] = [];
  let sendFailures = 0;
  let tally: Tally | undefined;
  const started = Date.now();
  let settledAt = started;
  try {
    const first = await consumers.start();
    tally = new Tally(dbPath);
    const t = tally;
    const publishing = (async () => {
      for (let i = 0; i < total; i += BATCH) {
        const ids = Array.from({ length: Math.min(BATCH, total - i) }, () => newMessageId());
        for (const id of ids) attempted.add(id);
        try {
          await publisher.sendBatch(
            chaosReceiver,
            ids.map((id, k) => ({ name: 'work.submitted' as const, data: { n: i + k }, options: { id } })),
          );
          for (const id of ids) acknowledged.add(id);
        } catch {
          sendFailures += 1;
          await delay(200);
        }
        await delay(PACE_MS);
      }
    })();
    const reach = async (share: number) => {
      const threshold = Math.round(total * share);
      while (t.distinctHandled() < threshold) await delay(20);
    };

    switch (fault) {
      case 'consumer-kill': {
        let current = first;
        for (const share of [0.25, 0.6]) {
          await reach(share);
          await consumers.kill(current);
          current = await consumers.start();
          faultEnds.push(Date.now());
        }
        break;
      }
      case 'zombie': {
        // Two consumers; the first is stopped with runs in flight, and woken up only after the
        // other one took over and committed every message it held (at least `faultMs` later), so
        // that each of its late completions meets a message already processed.
        await consumers.start();
        await reach(0.3);
        // Claims still `processing` 500 ms after the stop are the stopped consumer's (the other one
        // finishes a run in 200 ms); a stop that caught none is undone and tried again.
        let stoppedAt = 0;
        let held: string[] = [];
        for (let tries = 0; held.length === 0 && tries < 20; tries++) {
          if (tries > 0) {
            first.kill('SIGCONT');
            await delay(300);
          }
          stoppedAt = Date.now();
          first.kill('SIGSTOP');
          await delay(500);
          held = t.processingClaimedBefore(stoppedAt, CONSUMER_TIMEOUTS.inboxLeaseMs);
        }
        const cap = Date.now() + 120_000;
        while (t.unprocessed(held) > 0 && Date.now() < cap) await delay(100);
        const takenOver = Date.now() - stoppedAt;
        const remaining = faultMs - takenOver;
        if (remaining > 0) await delay(remaining);
        first.kill('SIGCONT');
        faultEnds.push(Date.now());
        notes.push(
          `zombie held ${held.length} claims; ${held.length - t.unprocessed(held)} taken over and committed by the other consumer ${(takenOver / 1000).toFixed(1)} s after the SIGSTOP; woken after ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`,
        );
        break;
      }
      case 'broker-kill': {
        await reach(0.3);
        await server.kill();
        await delay(faultMs);
        await server.restart();
        faultEnds.push(Date.now());
        break;
      }
      case 'partition': {
        await reach(0.3);
        proxy?.partition();
        await delay(faultMs);
        proxy?.heal();
        faultEnds.push(Date.now());
        break;
      }
      case 'latency':
        break;
      case 'disk-full': {
        await reach(0.3);
        const filler = fillDisk(dir);
        await delay(faultMs);
        unlinkSync(filler);
        faultEnds.push(Date.now());
        break;
      }
      case 'clock-jump': {
        const library = libfaketime();
        if (library === undefined) throw new Error('libfaketime is not installed (apt-get install faketime)');
        // A second consumer whose wall clock jumps an hour ahead at 30 %: every lease it compares
        // with looks expired to it. Its monotonic clock is left alone, so its timers keep running.
        const clockFile = join(dir, 'faketime');
        writeClock(clockFile, '+0');
        await consumers.start({
          LD_PRELOAD: library,
          FAKETIME_TIMESTAMP_FILE: clockFile,
          FAKETIME_NO_CACHE: '1',
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
        });
        await reach(0.3);
        writeClock(clockFile, '+3600');
        await delay(faultMs);
        writeClock(clockFile, '+0');
        faultEnds.push(Date.now());
        notes.push('one of two consumers ran an hour ahead for the fault window, then jumped back');
        break;
      }
    }
    await publishing;
    const deadline = Date.now() + settleMs;
    while (Date.now() < deadline) {
      const effects = t.effects();
      const dead = t.deadLetters();
      if ([...acknowledged].every((id) => effects.has(id) || dead.has(id))) break;
      await delay(250);
    }
    settledAt = Date.now();
    // A little longer, for late duplicates (a zombie's or a redelivery's) to show up.
    await delay(1500);
  } finally {
    await consumers.killAll();
    await publisher.close().catch(() => {});
    await publisherBroker.close().catch(() => {});
    await proxy?.close();
  }
  try {
    const t = tally!;
    const effects = t.effects();
    const dead = t.deadLetters();
    const receipts = t.receipts();
    const deadLettered: Record<string, number> = {};
    for (const reason of dead.values()) deadLettered[reason] = (deadLettered[reason] ?? 0) + 1;
    let lost = 0;
    let stuck = 0;
    for (const id of acknowledged) {
      if (effects.has(id) || dead.has(id)) continue;
      if (receipts.has(id)) stuck += 1;
      else lost += 1;
    }
    let duplicated = 0;
    let unexpected = 0;
    let unacknowledgedHandled = 0;
    for (const [id, count] of effects) {
      duplicated += count - 1;
      if (!attempted.has(id)) unexpected += 1;
      else if (!acknowledged.has(id)) unacknowledgedHandled += 1;
    }
    const recoveries = faultEnds.map((end) => {
      const next = t.firstEffectAfter(end);
      return next === undefined ? undefined : next - end;
    });
    if (sendFailures > 0) notes.push(`${sendFailures} sendBatch calls of ${BATCH} failed`);
    const result: ChaosResult = {
      engine,
      fault,
      recipe,
      attempted: attempted.size,
      acknowledged: acknowledged.size,
      lost,
      duplicated,
      unexpected,
      deadLettered,
      stuck,
      unacknowledgedHandled,
      fenced: t.fenced(),
      recoveryMs: recoveries.some((r) => r === undefined)
        ? undefined
        : recoveries.length === 0
          ? undefined
          : Math.max(...(recoveries as number[])),
      durationMs: settledAt - started,
      notes,
    };
    t.close();
    return result;
  } finally {
    if (mounted) execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeClock(path: string, offset: string): void {
  const fd = openSync(path, 'w');
  writeSync(fd, `${offset}\n`);
  closeSync(fd);
}
