import type { DeadLetterStore } from '@switchboard/core';
import { createMemoryDeadLetterStore } from '@switchboard/memory';
import { describe, expect, it } from 'vitest';
import { DeadLetterWriter, deadLetter } from '../src/middleware/dead-letter.js';
import type { Outcome } from '../src/pipeline.js';
import { inbound } from './unit-helpers.js';

const problem = (detail: string) => ({ type: 'urn:x', title: 'x', status: 500, code: 'SB_HANDLER_FAILED', detail });

describe('dead-letter middleware', () => {
  it('stores the exact bytes with the attempt history, writing one tick of entries in one addBatch', async () => {
    const memory = createMemoryDeadLetterStore();
    let batches = 0;
    const store = Object.assign(Object.create(memory) as DeadLetterStore, {
      addBatch: (entries: Parameters<DeadLetterStore['addBatch']>[0]) => {
        batches++;
        return memory.addBatch(entries);
      },
    });
    let outcome: Outcome = { kind: 'retry', delayMs: 1, error: problem('first'), counted: true };
    const step = deadLetter(new DeadLetterWriter({ store }))(async () => outcome);
    const body = new Uint8Array([1, 2, 3]);
    const first = inbound({ attempt: 1 }, { body, key: 'k1' });
    await step(first);
    outcome = { kind: 'dead-letter', reason: 'max-attempts', error: problem('second') };
    const second = inbound({ attempt: 2 }, { id: first.delivery.id, body, key: 'k1' });
    const others = [inbound(), inbound()];
    await Promise.all([step(second), ...others.map((m) => step(m))]);
    expect(batches).toBe(1);
    const [summary] = (await memory.list({ messageId: first.delivery.id })).items;
    expect(summary).toMatchObject({
      reason: 'max-attempts',
      detail: 'second',
      key: 'k1',
      type: 'service-b.name.submitted',
      group: 'service-b',
    });
    expect(summary!.attempts.map((a) => [a.attempt, a.error.detail])).toEqual([
      [1, 'first'],
      [2, 'second'],
    ]);
    expect(Buffer.from((await memory.get(summary!.id))!.body)).toEqual(Buffer.from(body));
  });

  it('forgets the history of a message that finally succeeded', async () => {
    const memory = createMemoryDeadLetterStore();
    let outcome: Outcome = { kind: 'retry', delayMs: 1, error: problem('once'), counted: true };
    const step = deadLetter(new DeadLetterWriter({ store: memory }))(async () => outcome);
    const message = inbound();
    await step(message);
    outcome = { kind: 'ack' };
    await step(inbound({ attempt: 2 }, { id: message.delivery.id }));
    outcome = { kind: 'dead-letter', reason: 'permanent', error: problem('later') };
    await step(inbound({ attempt: 3 }, { id: message.delivery.id }));
    const [entry] = (await memory.list()).items;
    expect(entry!.attempts.map((a) => a.attempt)).toEqual([3]);
  });
});
