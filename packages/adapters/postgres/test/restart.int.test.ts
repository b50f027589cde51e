import type { Delivery, OutgoingMessage, SwitchboardError } from '@switchboard/core';
import { delay, PrivatePostgresServer, randomName, type StopMode, testMessage, waitFor } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/index.js';

// A server of its own (its own port, data directory and socket directory): the shared one is never touched.
const server = new PrivatePostgresServer();
const CHUNK = 20;
const PER_PHASE = 1000;
const AFTER_RESTARTS = 1000;
/** How long the server stays away: publishes are refused and claims fail meanwhile. */
const DOWNTIME_MS = 1000;
/** The publisher waits while more confirmed messages than this are not yet delivered: the test is about restarts, not backlogs. */
const MAX_BACKLOG = 1000;
/** A publish that keeps failing this long counts as failed for good. */
const PUBLISH_GIVE_UP_MS = 40_000;

beforeAll(() => server.start());
afterAll(() => server.dispose());

/** Runs a one-row query on the server until `done(row)` or the timeout; returns the last row. */
async function pollRow<T>(url: string, sql: string, values: unknown[], done: (row: T) => boolean, timeoutMs: number): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = (await client.query(sql, values)).rows[0] as T;
      if (done(row) || Date.now() > deadline) return row;
      await delay(100);
    }
  } finally {
    await client.end();
  }
}

/** Sessions whose last statement was a LISTEN and that are idle in it: the consumer's notification connection. */
const LISTENING_SQL = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle' AND query LIKE 'LISTEN %'";
const LEFT_SQL = `SELECT count(*)::int AS deliveries FROM switchboard_queue q
                  JOIN switchboard_groups g ON g.gid = q.gid WHERE g.topic = $1 AND g.group_name = $2`;

describe('postgres: server restarted mid-stream', () => {
  it('publisher and consumer recover on their own and no confirmed message is lost (clean stop, immediate stop, SIGKILL)', {
    timeout: 150_000,
  }, async () => {
    const errors = new Map<string, number>();
    const onError = (error: SwitchboardError) => errors.set(error.code, (errors.get(error.code) ?? 0) + 1);
    const publisher = createPostgresBroker({ url: server.url, onError });
    const consumer = createPostgresBroker({ url: server.url, onError });
    const topic = randomName('restart');
    const group = randomName('workers');
    const seen = new Map<string, number>();
    const attempts = new Map<number, number>();
    let ackFailures = 0;
    await consumer.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 5000 }, async (delivery: Delivery) => {
      seen.set(delivery.id, (seen.get(delivery.id) ?? 0) + 1);
      attempts.set(delivery.attempt, (attempts.get(delivery.attempt) ?? 0) + 1);
      // An ack lost in the outage leaves the delivery leased: it comes back when the lease runs out.
      await delivery.ack().catch(() => {
        ackFailures += 1;
      });
    });

    const confirmed: string[] = [];
    const failed: string[] = [];
    let rejections = 0;
    let restarted = false;
    let confirmedAfterRestarts = 0;
    let abandoned = false;
    /** The last message confirmed at its first attempt. */
    let lastFresh = '';
    // As an application would: a rejected publish is sent again (same MessageId) until it is confirmed.
    // One whose commit went through but whose answer was lost is then stored twice: a duplicate, not a loss.
    const publishUntilConfirmed = async (message: OutgoingMessage) => {
      const giveUp = Date.now() + PUBLISH_GIVE_UP_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          await publisher.publish(message);
          confirmed.push(message.id);
          if (attempt === 1) lastFresh = message.id;
          if (restarted) confirmedAfterRestarts += 1;
          return;
        } catch {
          rejections += 1;
          if (abandoned || Date.now() > giveUp) {
            failed.push(message.id);
            return;
          }
          await delay(100);
        }
      }
    };
    // Publishes without pause until the restarts are over and AFTER_RESTARTS more are confirmed,
    // so the server goes away while publishes are in flight and deliveries unacked.
    const publishing = (async () => {
      while (!abandoned && (!restarted || confirmedAfterRestarts < AFTER_RESTARTS)) {
        while (!abandoned && confirmed.length - seen.size > MAX_BACKLOG) await delay(5);
        await Promise.all(Array.from({ length: CHUNK }, () => publishUntilConfirmed(testMessage(topic))));
      }
    })();

    try {
      const phases: string[] = [];
      for (const mode of ['fast', 'immediate', 'kill'] as const satisfies readonly StopMode[]) {
        const target = confirmed.length + PER_PHASE;
        await waitFor(() => confirmed.length >= target && seen.size > 0, `${target} publishes confirmed`, 30_000);
        const before = { confirmed: confirmed.length, seen: seen.size, rejections };
        const stopping = Date.now();
        await server.stop(mode);
        await delay(DOWNTIME_MS);
        await server.start();
        const downMs = Date.now() - stopping;
        lastFresh = '';
        // The publisher came back by itself: new publishes are confirmed, fresh ones among them.
        await waitFor(
          () => confirmed.length >= before.confirmed + 100 && lastFresh !== '',
          `publishes confirmed after the ${mode} restart`,
          30_000,
        );
        // The consumer came back by itself: a message first sent (and committed) after the restart is delivered.
        const committedAfterRestart = lastFresh;
        await waitFor(() => seen.has(committedAfterRestart), `a delivery published after the ${mode} restart`, 30_000);
        // And it listens again for notifications (until then it only polls).
        const listening = await pollRow<{ n: number }>(server.url, LISTENING_SQL, [], (row) => row.n === 1, 30_000);
        expect(listening.n).toBe(1);
        phases.push(
          `${mode}@confirmed=${before.confirmed},seen=${before.seen}:down=${downMs}ms,startAttempts=${server.startAttempts},rejected=${rejections - before.rejections}`,
        );
      }
      restarted = true;
      await publishing;
      // No throw on timeout: the assertions below name what is missing.
      await waitFor(() => confirmed.every((id) => seen.has(id)), 'every confirmed message delivered', 60_000).catch(() => {});

      // In the end every delivery is settled: nothing stays leased or stuck. Acks lost in an outage
      // come back when their lease runs out and are counted below as duplicates.
      const remaining = await pollRow<{ deliveries: number }>(server.url, LEFT_SQL, [topic, group], (row) => row.deliveries === 0, 60_000);

      const lost = confirmed.filter((id) => !seen.has(id));
      expect(lost).toEqual([]);
      expect(failed).toEqual([]);
      expect(new Set(confirmed).size).toBe(confirmed.length);
      expect(remaining.deliveries).toBe(0);
      expect(confirmedAfterRestarts).toBeGreaterThanOrEqual(AFTER_RESTARTS);
      // Every delivery is of a message that was published.
      const published = new Set(confirmed);
      expect([...seen.keys()].filter((id) => !published.has(id))).toEqual([]);
      const deliveries = [...seen.values()].reduce((a, b) => a + b, 0);
      console.info(
        `[postgres restart] confirmed=${confirmed.length} rejectedAttempts=${rejections} failed=${failed.length} distinct=${seen.size} duplicates=${deliveries - seen.size} ackFailures=${ackFailures} restarts=${phases.join(' ')} attempts=${JSON.stringify(Object.fromEntries(attempts))} errors=${JSON.stringify(Object.fromEntries(errors))}`,
      );
    } finally {
      // On a failure too: stop publishing and close both brokers before the server goes away.
      abandoned = true;
      await publishing;
      await Promise.all([publisher.close(), consumer.close()]);
    }
  });
});
