import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connectBlobStore, connectBroker, hasBlobStore } from '@switchboard/connect';
import type { Broker, DeadLetterStore } from '@switchboard/core';
import { createFsBlobStore, createMessaging, type Messaging, type RetryOptions, startHousekeeping } from '@switchboard/messaging';
import { createSqliteDeadLetterStore, createSqliteReceiptStore } from '@switchboard/sqlite';
import type { ServiceConfig } from './config.js';

/**
 * Messaging for one demo service: the broker named by configuration (embedded SQLite unless
 * `--broker` says otherwise), and the service's own receipts and dead letters in SQLite files of
 * its own. Claim-checked blobs live in a folder every service on this host shares, or in the
 * engine's own blob store when it has one (`sns-sqs://`: S3 at the same endpoint).
 */
export async function openMessaging(
  service: string,
  config: ServiceConfig,
  options: { readonly retry?: RetryOptions } = {},
): Promise<{ messaging: Messaging; broker: Broker; deadLetters: DeadLetterStore; close(): Promise<void> }> {
  mkdirSync(config.dataDir, { recursive: true });
  const broker = await connectBroker(config.broker);
  const receipts = createSqliteReceiptStore({ path: join(config.dataDir, `${service}-receipts.db`) });
  const deadLetters = createSqliteDeadLetterStore({ path: join(config.dataDir, `${service}-dead-letters.db`) });
  const blobs = hasBlobStore(config.broker)
    ? await connectBlobStore(config.broker, { name: 'demo' })
    : createFsBlobStore({ root: join(config.dataDir, 'blobs'), name: 'demo' });
  // Data over the threshold goes by claim check; it stays under what the broker takes (SNS: 256 KiB with attributes).
  const thresholdBytes = Math.min(256 * 1024, broker.capabilities.maxMessageBytes - 16 * 1024);
  const messaging = createMessaging({
    broker,
    service,
    receipts,
    deadLetters,
    blobs,
    claimCheck: { thresholdBytes },
    ...(options.retry === undefined ? {} : { retry: options.retry }),
  });
  // Retention: receipts for a week, replayed dead letters for a month, expired blobs deleted.
  const housekeeping = startHousekeeping({ receipts, deadLetters, blobs, onError: (error) => console.error('housekeeping:', error) });
  return {
    messaging,
    broker,
    deadLetters,
    async close() {
      await housekeeping.stop();
      await messaging.close();
      await broker.close();
      await Promise.all([receipts.close(), deadLetters.close(), blobs.close()]);
    },
  };
}
