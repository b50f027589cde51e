import { isSwitchboardError, type OutgoingMessage } from '@switchboard/core';
import { deferred, waitFor } from '@switchboard/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqsDelivery } from '../src/delivery.js';
import { createSnsSqsBroker, type SnsSqsBroker } from '../src/index.js';
import { QueueSettler } from '../src/settle.js';
import { decodeMessage, MAX_ATTRIBUTES, SNS_MAX_BYTES } from '../src/wire.js';
import { FakeSns, FakeSqs, sqsMessage } from './fake-aws.js';

// What the emulator cannot show, against stubbed SNS and SQS clients. fauxqs answers every batch
// entry with success (AWS: `DeleteMessageBatch` answers HTTP 200 with per-entry `Failed`,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html),
// returns at most one message per FIFO group in a receive (AWS returns several,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html),
// never duplicates a standard-queue message (AWS may: at-least-once delivery,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues-at-least-once-delivery.html),
// and enforces neither the attribute count nor SNS's 256 KiB.

const opened: SnsSqsBroker[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((broker) => broker.close()));
});

async function brokerOn(sqs: FakeSqs, sns = new FakeSns(), options: Parameters<typeof createSnsSqsBroker>[0] = {}) {
  const broker = await createSnsSqsBroker({
    clients: { sqs: sqs.client, sns: sns.client },
    waitTimeSeconds: 1,
    receiveLoops: 1,
    ...options,
  });
  opened.push(broker);
  return broker;
}

function handles(calls: readonly { input: { Entries: { ReceiptHandle: string }[] } }[]): string[] {
  return calls.flatMap((call) => call.input.Entries.map((entry) => entry.ReceiptHandle));
}

describe('QueueSettler: batched deletes and visibility changes read the Failed list', () => {
  it('retries entries SQS failed on its side, reports lost handles, fails the rest alone, with positional ids', async () => {
    const sqs = new FakeSqs();
    sqs.deleteAnswer = (entries, call) =>
      call === 0
        ? {
            Successful: [{ Id: entries[0]!.Id }],
            Failed: [
              { Id: entries[1]!.Id, Code: 'InternalError', SenderFault: false },
              { Id: entries[2]!.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true },
              { Id: entries[3]!.Id, Code: 'UnsupportedOperation', SenderFault: true, Message: 'no' },
            ],
          }
        : { Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
    const settler = new QueueSettler(sqs.client, () => 'https://sqs.example/q');
    const results = await Promise.allSettled(['h0', 'h1', 'h2', 'h3'].map((handle) => settler.delete(handle)));
    expect(results.slice(0, 3)).toEqual([
      { status: 'fulfilled', value: 'done' },
      { status: 'fulfilled', value: 'done' },
      { status: 'fulfilled', value: 'lost' },
    ]);
    expect(results[3]!.status).toBe('rejected');
    expect(isSwitchboardError((results[3] as PromiseRejectedResult).reason, 'SB_BROKER_UNAVAILABLE')).toBe(true);
    const calls = sqs.called('DeleteMessageBatch');
    expect(calls.map((call) => call.input.Entries.map((entry: { Id: string }) => entry.Id))).toEqual([['0', '1', '2', '3'], ['0']]);
    expect(calls[1]!.input.Entries[0].ReceiptHandle).toBe('h1');
  });

  it('sends more than 10 entries in several calls, and retries a call that failed in transit', async () => {
    const sqs = new FakeSqs();
    let failedOnce = false;
    sqs.visibilityAnswer = (entries) => {
      if (!failedOnce) {
        failedOnce = true;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return { Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
    };
    const settler = new QueueSettler(sqs.client, () => 'https://sqs.example/q');
    const results = await Promise.all(Array.from({ length: 23 }, (_, i) => settler.visibility(`h${i}`, 0)));
    expect(results.every((result) => result === 'done')).toBe(true);
    const calls = sqs.called('ChangeMessageVisibilityBatch');
    expect(calls.every((call) => call.input.Entries.length <= 10)).toBe(true);
    // Every handle was changed once successfully (the failed call's entries went again).
    const succeeded = calls.slice(1).flatMap((call) => call.input.Entries.map((entry: { ReceiptHandle: string }) => entry.ReceiptHandle));
    expect(new Set(succeeded)).toEqual(new Set(Array.from({ length: 23 }, (_, i) => `h${i}`)));
  });
});

describe('consuming', () => {
  it('hands out both copies of a duplicated message and acks them in one batch with distinct entry ids', async () => {
    const sqs = new FakeSqs();
    const body = '{"hello":"twice"}';
    const first = sqsMessage({ body, id: 'm-1' });
    const second = { ...sqsMessage({ body, id: 'm-1' }), MessageId: first.MessageId };
    sqs.receives.push([first, second]);
    const broker = await brokerOn(sqs);
    const seen: string[] = [];
    const both = deferred();
    await broker.subscribe({ topic: 'orders', group: 'billing' }, async (delivery) => {
      seen.push(delivery.id);
      if (seen.length === 2) both.resolve();
      await both.promise;
      await delivery.ack();
    });
    await both.promise;
    await waitFor(() => handles(sqs.called('DeleteMessageBatch')).length === 2, 'both deletes');
    expect(seen).toEqual(['m-1', 'm-1']);
    const deletes = sqs.called('DeleteMessageBatch');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.input.Entries.map((entry: { Id: string }) => entry.Id)).toEqual(['0', '1']);
    expect(new Set(handles(deletes))).toEqual(new Set([first.ReceiptHandle, second.ReceiptHandle]));
  });

  it('a heartbeat that finds the receipt handle invalid aborts the signal and expires the delivery; its late ack deletes nothing', async () => {
    const sqs = new FakeSqs();
    sqs.visibilityAnswer = (entries) => ({
      Successful: entries.filter((entry) => entry.VisibilityTimeout === 0).map((entry) => ({ Id: entry.Id })),
      Failed: entries
        .filter((entry) => entry.VisibilityTimeout !== 0)
        .map((entry) => ({ Id: entry.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true })),
    });
    const message = sqsMessage({ body: 'slow work', id: 'm-slow' });
    sqs.receives.push([message]);
    const broker = await brokerOn(sqs, new FakeSns(), { visibilityTimeoutSeconds: 1 });
    const aborted = deferred();
    let late: Promise<void> | undefined;
    await broker.subscribe({ topic: 'orders', group: 'billing', ackTimeoutMs: 30_000 }, async (delivery) => {
      const sqsDelivery = delivery as SqsDelivery;
      sqsDelivery.signal.addEventListener('abort', () => aborted.resolve());
      await aborted.promise;
      expect(sqsDelivery.expired).toBe(true);
      late = delivery.ack();
    });
    await aborted.promise;
    await waitFor(() => late !== undefined, 'the handler to ack late');
    await late;
    // The heartbeat asked for more visibility, SQS said the handle is gone, and no delete followed.
    expect(sqs.called('ChangeMessageVisibilityBatch').some((call) => call.input.Entries[0].ReceiptHandle === message.ReceiptHandle)).toBe(
      true,
    );
    expect(sqs.called('DeleteMessageBatch')).toEqual([]);
  });

  it('FIFO: messages of one group in one receive run in order; after a nack the later ones are neither processed nor acked', async () => {
    const sqs = new FakeSqs();
    const a = [1, 2, 3].map((n) =>
      sqsMessage({ body: `a${n}`, id: `a${n}`, groupId: 'customer-a', attributes: { 'sb-key': 'customer-a' } }),
    );
    const b = [1, 2].map((n) => sqsMessage({ body: `b${n}`, id: `b${n}`, groupId: 'customer-b', attributes: { 'sb-key': 'customer-b' } }));
    sqs.receives.push([a[0]!, b[0]!, a[1]!, a[2]!, b[1]!]);
    const broker = await brokerOn(sqs, new FakeSns(), { fifo: true });
    const started: string[] = [];
    const running = new Set<string>();
    const overlaps: string[] = [];
    await broker.subscribe({ topic: 'orders', group: 'billing', maxInFlight: 10 }, async (delivery) => {
      const key = delivery.key ?? '';
      if (running.has(key)) overlaps.push(delivery.id);
      running.add(key);
      started.push(delivery.id);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running.delete(key);
      if (delivery.id === 'a2') await delivery.nack();
      else await delivery.ack();
    });
    await waitFor(() => handles(sqs.called('DeleteMessageBatch')).length === 3, 'a1, b1 and b2 acked');
    await waitFor(() => handles(sqs.called('ChangeMessageVisibilityBatch')).length === 2, 'a2 nacked and a3 released');
    expect(overlaps).toEqual([]);
    expect(started.filter((id) => id.startsWith('a'))).toEqual(['a1', 'a2']);
    expect(started.filter((id) => id.startsWith('b'))).toEqual(['b1', 'b2']);
    expect(new Set(handles(sqs.called('DeleteMessageBatch')))).toEqual(new Set([a[0]!, b[0]!, b[1]!].map((m) => m.ReceiptHandle)));
    const changes = sqs.called('ChangeMessageVisibilityBatch').flatMap((call) => call.input.Entries);
    expect(new Set(changes.map((entry: { ReceiptHandle: string }) => entry.ReceiptHandle))).toEqual(
      new Set([a[1]!.ReceiptHandle, a[2]!.ReceiptHandle]),
    );
    expect(changes.every((entry: { VisibilityTimeout: number }) => entry.VisibilityTimeout === 0)).toBe(true);
  });
});

describe('publishing within what AWS allows', () => {
  function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
    return { id: `m-${Math.random().toString(36).slice(2)}`, topic: 'orders', headers: {}, body: Buffer.from('x'), ...overrides };
  }

  it('never sends more than 10 attributes; what does not fit travels in sb-meta and comes back whole', async () => {
    const sns = new FakeSns();
    const broker = await brokerOn(new FakeSqs(), sns);
    const headers: Record<string, string> = { 'content-type': 'text/plain', 'x-empty': '', 'bad name!': 'v', 'AWS.reserved': 'v' };
    for (let i = 0; i < 30; i++) headers[`x-h${i}`] = `value ${i}`;
    const sent = message({ headers, key: 'k-1' });
    await broker.publish(sent);
    const entry = sns.called('PublishBatch')[0]!.input.PublishBatchRequestEntries[0];
    expect(Object.keys(entry.MessageAttributes).length).toBeLessThanOrEqual(MAX_ATTRIBUTES);
    for (const [name, value] of Object.entries(entry.MessageAttributes as Record<string, { StringValue: string }>)) {
      expect(name).toMatch(/^[A-Za-z0-9_.-]+$/);
      expect(value.StringValue.length).toBeGreaterThan(0);
    }
    // What a raw-delivery subscription hands to SQS is what the consumer reads back.
    const decoded = decodeMessage({ MessageId: 'sqs-1', Body: entry.Message, MessageAttributes: entry.MessageAttributes });
    expect(decoded.headers).toEqual(headers);
    expect(decoded.key).toBe('k-1');
    expect(decoded.id).toBe(sent.id);
  });

  it('refuses a message over 256 KiB with its attributes before SNS sees it (no claim check, no offloading)', async () => {
    const sns = new FakeSns();
    const broker = await brokerOn(new FakeSqs(), sns);
    // A body under the broker's body limit, pushed over SNS's 256 KiB by its attributes.
    const body = Buffer.alloc(240 * 1024, 0x61);
    const headers: Record<string, string> = {};
    for (let i = 0; i < 20; i++) headers[`x-h${i}`] = 'v'.repeat(1024);
    const error = await broker.publish(message({ body, headers })).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect(String((error as Error).message)).toMatch(/262144/);
    const over = await broker.publish(message({ body: Buffer.alloc(300 * 1024, 0x61) })).catch((e: unknown) => e);
    expect(isSwitchboardError(over, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect(sns.called('PublishBatch')).toEqual([]);
  });

  it('splits a batch at 10 entries and at 256 KiB in all, with positional ids', async () => {
    const sns = new FakeSns();
    const broker = await brokerOn(new FakeSqs(), sns);
    const messages = Array.from({ length: 25 }, () => message({ body: Buffer.alloc(30 * 1024, 0x62) }));
    await broker.publishBatch(messages);
    const calls = sns.called('PublishBatch');
    const sent = calls.flatMap((call) => call.input.PublishBatchRequestEntries);
    expect(sent).toHaveLength(25);
    for (const call of calls) {
      const entries = call.input.PublishBatchRequestEntries as { Id: string; Message: string }[];
      expect(entries.length).toBeLessThanOrEqual(10);
      expect(entries.map((entry) => entry.Id)).toEqual(entries.map((_, i) => String(i)));
      expect(entries.reduce((sum, entry) => sum + Buffer.byteLength(entry.Message), 0)).toBeLessThanOrEqual(SNS_MAX_BYTES);
    }
  });

  it('retries entries SNS failed on its side; an entry SNS refused fails alone; FIFO entries carry group and dedup ids', async () => {
    const sns = new FakeSns();
    sns.publishAnswer = (entries, call) =>
      call === 0
        ? {
            Successful: [{ Id: entries[0]!.Id }],
            Failed: [
              { Id: entries[1]!.Id, Code: 'InternalError', SenderFault: false },
              { Id: entries[2]!.Id, Code: 'InvalidParameter', SenderFault: true, Message: 'Invalid parameter: Message' },
            ],
          }
        : { Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
    const broker = await brokerOn(new FakeSqs(), sns, { fifo: true });
    const messages = [message({ key: 'k' }), message({ key: 'k' }), message({ id: 'id with spaces' })];
    const results = await Promise.allSettled(messages.map((m) => broker.publishDetailed(m)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(isSwitchboardError((results[2] as PromiseRejectedResult).reason, 'SB_BROKER_UNAVAILABLE')).toBe(true);
    const [first, retry] = sns.called('PublishBatch');
    expect(first!.input.PublishBatchRequestEntries).toHaveLength(3);
    expect(
      retry!.input.PublishBatchRequestEntries.map((entry: { MessageDeduplicationId: string }) => entry.MessageDeduplicationId),
    ).toEqual([messages[1]!.id]);
    const entries = first!.input.PublishBatchRequestEntries as { MessageGroupId: string; MessageDeduplicationId: string }[];
    expect(entries[0]).toMatchObject({ MessageGroupId: 'k', MessageDeduplicationId: messages[0]!.id });
    // An id outside what AWS takes as a dedup id is hashed; without a key the id is the group.
    expect(entries[2]!.MessageDeduplicationId).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(entries[2]!.MessageGroupId).toBe(entries[2]!.MessageDeduplicationId);
    expect((results[0] as PromiseFulfilledResult<{ snsMessageId: string }>).value.snsMessageId).toMatch(/^sns-/);
  });
});
