import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteBroker } from '@switchboard/sqlite';
import type { BrokerFeatures } from '@switchboard/testkit';
import { DURABLE_QUEUE_FEATURES, describeBrokerConformance } from '@switchboard/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-broker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const features: BrokerFeatures = {
  ...DURABLE_QUEUE_FEATURES,
  maxMessageBytes: 16 * 1024 * 1024,
  ackTimeoutMs: 200,
  nackDelayMs: 150,
  quietMs: 250,
  throughputMessages: 5000,
};

// Every broker of one suite opens the same file, as separate processes would.
describeBrokerConformance('sqlite', () => createSqliteBroker({ path: join(dir, 'broker.db'), pollIntervalMs: 20 }), features);

// Brokers that only find each other's work by polling, exactly as in separate processes.
describeBrokerConformance(
  'sqlite (polling only, no in-process wake-up)',
  () => createSqliteBroker({ path: join(dir, 'polling.db'), pollIntervalMs: 10, watchWal: false, notifyInProcess: false }),
  features,
);
