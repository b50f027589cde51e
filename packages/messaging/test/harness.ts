import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore, Broker, DeadLetterStore, ReceiptStore } from '@switchboard/core';
import { defineContract, event, message, operation } from '@switchboard/core';
import { createMemoryBlobStore, createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging, type MessagingOptions } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteDeadLetterStore, createSqliteReceiptStore } from '@switchboard/sqlite';
import { z } from 'zod';

export const serviceB = defineContract({
  name: 'service-b',
  operations: {
    save: operation({
      input: z.object({ name: z.string().min(1) }),
      output: z.object({ id: z.string() }),
      errors: { NameTaken: { status: 409 } },
    }),
  },
  messages: {
    'name.submitted': message({ schema: z.object({ name: z.string().min(1), count: z.number().int().optional() }) }),
    'picture.submitted': message({ schema: z.object({ title: z.string() }) }),
  },
});

export const serviceA = defineContract({
  name: 'service-a',
  events: {
    'name.processed': event(),
    'picture.processed': event({ attachment: true }),
    'picture.resized': event({ data: z.object({ width: z.number() }) }),
  },
});

export interface Engine {
  readonly name: string;
  readonly broker: Broker;
  readonly receipts: ReceiptStore;
  readonly deadLetters: DeadLetterStore;
  readonly blobs: BlobStore;
  /** A messaging instance on this engine, closed by `close`. */
  messaging(options: Partial<MessagingOptions> & { service: string }): Messaging;
  close(): Promise<void>;
}

export type EngineFactory = () => Engine;

function wrap(name: string, broker: Broker, receipts: ReceiptStore, deadLetters: DeadLetterStore, cleanup: () => void): Engine {
  const blobs = createMemoryBlobStore({ name: 'test-blobs' });
  const instances: Messaging[] = [];
  return {
    name,
    broker,
    receipts,
    deadLetters,
    blobs,
    messaging(options) {
      const instance = createMessaging({
        broker,
        receipts,
        deadLetters,
        blobs,
        retry: { maxAttempts: 3, backoff: { baseMs: 5, maxMs: 20 } },
        handlerTimeoutMs: 2000,
        ...options,
      });
      instances.push(instance);
      return instance;
    },
    async close() {
      await Promise.all(instances.map((i) => i.close()));
      await broker.close();
      await receipts.close();
      await deadLetters.close();
      await blobs.close();
      cleanup();
    },
  };
}

export const engines: readonly [string, EngineFactory][] = [
  [
    'memory',
    () => wrap('memory', createMemoryBroker({ drainTimeoutMs: 200 }), createMemoryReceiptStore(), createMemoryDeadLetterStore(), () => {}),
  ],
  [
    'sqlite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'sb-messaging-'));
      const path = join(dir, 'sb.db');
      return wrap(
        'sqlite',
        createSqliteBroker({ path, pollIntervalMs: 5, drainTimeoutMs: 200 }),
        createSqliteReceiptStore({ path }),
        createSqliteDeadLetterStore({ path }),
        () => rmSync(dir, { recursive: true, force: true }),
      );
    },
  ],
];

/** Resolves once `predicate` holds (checked every few ms); rejects after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
