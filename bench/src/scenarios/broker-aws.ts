import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateTopicCommand, PublishBatchCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createS3BlobStore, createSnsSqsBroker } from '@switchboard/aws';
import { defineContract, event, type OutgoingMessage } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { z } from 'zod';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { round, Samples } from '../lib/stats.js';

const SCENARIO = 'broker-aws';
/** Entries per `PublishBatch` and messages per `ReceiveMessage`, for both subjects. */
const BATCH = 10;
/** Publish loops and receive loops, for both subjects. */
const LOOPS = 2;
const BODY_BYTES = 1024;
const ROUNDS = 3;
const PICTURE_BYTES = 2 * 1024 * 1024;

interface Emulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** fauxqs in a process of its own (the dev script), so the emulator does not share the measured event loop. */
async function startEmulator(): Promise<Emulator> {
  const script = fileURLToPath(new URL('../../../scripts/aws-emulator.mjs', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the emulator exited (${String(code)})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (match !== null) resolve(match[1]!);
    });
  });
  return {
    endpoint,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * The plain AWS SDK doing the work the adapter does: a raw-delivery subscription, `LOOPS` loops
 * publishing `PublishBatch` of 10, `LOOPS` long-poll loops receiving 10 and deleting them with one
 * `DeleteMessageBatch` (its `Failed` list checked). `serial`: each loop deletes, then polls again
 * (the usual hand-written loop, and sqs-consumer's); `pipelined`: it polls again while the delete
 * is on its way (what the adapter does). Resolves to messages per second end to end.
 */
async function rawSdk(endpoint: string, total: number, mode: 'serial' | 'pipelined'): Promise<number> {
  const config = { endpoint, region: 'us-east-1', credentials };
  const sns = new SNSClient(config);
  const sqs = new SQSClient(config);
  try {
    const name = `raw-${randomBytes(4).toString('hex')}`;
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    await sns.send(
      new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn!, Attributes: { RawMessageDelivery: 'true' } }),
    );
    const body = 'r'.repeat(BODY_BYTES);
    let received = 0;
    let done = false;
    const started = performance.now();
    const consume = async () => {
      while (!done) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl,
            MaxNumberOfMessages: BATCH,
            WaitTimeSeconds: 1,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        if (Messages.length === 0) continue;
        const deleted = sqs
          .send(
            new DeleteMessageBatchCommand({
              QueueUrl,
              Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle! })),
            }),
          )
          .then((answer) => {
            if ((answer.Failed ?? []).length > 0) throw new Error('DeleteMessageBatch failed entries');
            received += Messages.length;
            if (received >= total) done = true;
          });
        if (mode === 'serial') await deleted;
        else deletes.push(deleted);
      }
      await Promise.all(deletes);
    };
    const deletes: Promise<void>[] = [];
    const publish = async (count: number) => {
      for (let sent = 0; sent < count; sent += BATCH) {
        const entries = Array.from({ length: Math.min(BATCH, count - sent) }, (_, i) => ({
          Id: String(i),
          Message: body,
          MessageAttributes: {
            'sb-id': { DataType: 'String', StringValue: randomUUID() },
            'content-type': { DataType: 'String', StringValue: 'text/plain' },
          },
        }));
        const answer = await sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: entries }));
        if ((answer.Failed ?? []).length > 0) throw new Error('PublishBatch failed entries');
      }
    };
    const consumers = Array.from({ length: LOOPS }, consume);
    await Promise.all(Array.from({ length: LOOPS }, () => publish(total / LOOPS)));
    await Promise.all(consumers);
    return total / ((performance.now() - started) / 1000);
  } finally {
    sns.destroy();
    sqs.destroy();
  }
}

/** The same work through the Switchboard adapter: `publishBatch` of 10 in `LOOPS` loops, a subscription with `LOOPS` receive loops of 10. */
async function adapter(endpoint: string, total: number): Promise<number> {
  const broker = await createSnsSqsBroker({
    endpoint,
    region: 'us-east-1',
    credentials,
    prefix: `sb-${randomBytes(4).toString('hex')}-`,
    waitTimeSeconds: 1,
    receiveLoops: LOOPS,
  });
  try {
    const topic = 'bench';
    await broker.declareGroup(topic, 'g');
    const body = Buffer.from('s'.repeat(BODY_BYTES));
    let received = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const started = performance.now();
    await broker.subscribe({ topic, group: 'g', maxInFlight: LOOPS * BATCH }, async (delivery) => {
      await delivery.ack();
      received += 1;
      if (received === total) finish();
    });
    const publish = async (count: number) => {
      for (let sent = 0; sent < count; sent += BATCH) {
        const batch: OutgoingMessage[] = Array.from({ length: Math.min(BATCH, count - sent) }, () => ({
          id: randomUUID(),
          topic,
          headers: { 'content-type': 'text/plain' },
          body,
        }));
        await broker.publishBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: LOOPS }, () => publish(total / LOOPS)));
    await finished;
    return total / ((performance.now() - started) / 1000);
  } finally {
    await broker.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const gallery = defineContract({
  name: 'gallery',
  events: {
    'picture.uploaded': event({ data: z.object({ name: z.string() }), attachment: true }),
    'note.posted': event({ data: z.object({ text: z.string() }) }),
  },
});

/** Emit → handler finished, one event at a time: an inline event, then a 2 MB picture by claim check through S3 (put, publish, get, hash check). */
async function claimCheck(ctx: ScenarioContext, endpoint: string, pictures: number, notes: number): Promise<void> {
  const connection = { endpoint, region: 'us-east-1', credentials };
  const broker = await createSnsSqsBroker({ ...connection, prefix: `cc-${randomBytes(4).toString('hex')}-`, waitTimeSeconds: 1 });
  const blobs = createS3BlobStore({ ...connection, bucket: `sb-bench-${randomBytes(4).toString('hex')}` });
  const producer = createMessaging({ broker, service: 'uploader', deadLetters: false, blobs });
  const consumer = createMessaging({ broker, service: 'viewer', deadLetters: false, blobs });
  let handled: (() => void) | undefined;
  let verified = 0;
  consumer.on(gallery, 'note.posted', () => handled?.());
  consumer.on(gallery, 'picture.uploaded', async (_data, context) => {
    const hash = createHash('sha256');
    for await (const chunk of context.attachment()) hash.update(chunk);
    if (hash.digest('hex') === context.attachmentInfo?.sha256) verified += 1;
    handled?.();
  });
  try {
    await consumer.start();
    const measure = async (count: number, emit: () => Promise<unknown>) => {
      const samples = new Samples();
      for (let i = 0; i < count + 2; i++) {
        const done = new Promise<void>((resolve) => {
          handled = resolve;
        });
        const started = performance.now();
        await emit();
        await done;
        if (i >= 2) samples.add(performance.now() - started); // the first two warm up
      }
      return samples;
    };
    const inline = await measure(notes, () => producer.emit(gallery, 'note.posted', { text: 'n'.repeat(BODY_BYTES) }));
    const picture = randomBytes(PICTURE_BYTES);
    const byReference = await measure(pictures, () =>
      producer.emit(gallery, 'picture.uploaded', { name: 'bench.png' }, { attachment: picture, attachmentType: 'image/png' }),
    );
    const [inlineP50 = 0, inlineP99 = 0] = inline.percentiles(50, 99);
    const [pictureP50 = 0, pictureP99 = 0] = byReference.percentiles(50, 99);
    ctx.record({
      scenario: SCENARIO,
      subject: 'messaging emit → handler, inline 1 KiB event',
      load: 'one at a time',
      metrics: { events: inline.count, p50Ms: round(inlineP50, 1), p99Ms: round(inlineP99, 1) },
    });
    ctx.record({
      scenario: SCENARIO,
      subject: 'messaging emit → handler, 2 MiB picture by claim check (S3)',
      load: 'one at a time',
      metrics: {
        events: byReference.count,
        hashVerified: verified === pictures + 2 ? 'all' : `${verified} of ${pictures + 2}`,
        p50Ms: round(pictureP50, 1),
        p99Ms: round(pictureP99, 1),
        addedP50Ms: round(pictureP50 - inlineP50, 1),
        mibPerS: round(PICTURE_BYTES / 2 ** 20 / (pictureP50 / 1000), 1),
      },
    });
  } finally {
    await consumer.close();
    await producer.close();
    await broker.close();
    await blobs.close();
  }
}

/**
 * SNS + SQS against the fauxqs emulator in its own process. Plain AWS SDK vs the adapter doing the
 * same work (PublishBatch of 10 in 2 loops; 2 long-poll loops receiving 10, deleting with
 * DeleteMessageBatch), 1 KiB bodies, alternating rounds; then what a 2 MiB picture by claim check
 * through S3 costs next to an inline event.
 */
export const brokerAws: Scenario = {
  name: SCENARIO,
  description:
    'SNS + SQS on fauxqs (own process): publish+consume end to end, plain AWS SDK vs adapter, same batch sizes; 2 MiB claim check through S3 vs inline',
  async run(ctx) {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const emulator = await startEmulator();
    try {
      const total = Math.max(1000, Math.round((10_000 * ctx.scale) / (BATCH * LOOPS)) * BATCH * LOOPS);
      // Warm-up of every path (JIT, sockets, the emulator's first queues).
      await rawSdk(emulator.endpoint, 1000, 'serial');
      await rawSdk(emulator.endpoint, 1000, 'pipelined');
      await adapter(emulator.endpoint, 1000);
      const rates = { serial: [] as number[], pipelined: [] as number[], switchboard: [] as number[] };
      const subjects = [
        ['serial', () => rawSdk(emulator.endpoint, total, 'serial')],
        ['pipelined', () => rawSdk(emulator.endpoint, total, 'pipelined')],
        ['switchboard', () => adapter(emulator.endpoint, total)],
      ] as const;
      for (let round_ = 0; round_ < ROUNDS; round_++) {
        // A different order each round, so neither side always runs on a warmer emulator.
        for (let i = 0; i < subjects.length; i++) {
          const [name, run] = subjects[(i + round_) % subjects.length]!;
          rates[name].push(await run());
        }
      }
      const load = `${total} × 1 KiB, batches of ${BATCH}, ${LOOPS} loops each side`;
      const best = Math.max(median(rates.serial), median(rates.pipelined));
      const row = (subject: string, values: number[], extra: Record<string, number> = {}) =>
        ctx.record({
          scenario: SCENARIO,
          subject,
          load,
          metrics: { msgsPerS: round(median(values), 0), rounds: values.map((r) => round(r, 0)).join(' / '), ...extra },
        });
      row('plain AWS SDK v3, receive → delete → receive', rates.serial);
      row('plain AWS SDK v3, next receive while the delete is on its way', rates.pipelined);
      row('switchboard sns-sqs adapter (publishBatch → subscribe + ack)', rates.switchboard, {
        ratioToBestRaw: round(median(rates.switchboard) / best, 3),
      });
      await claimCheck(ctx, emulator.endpoint, Math.max(5, Math.round(20 * ctx.scale)), Math.max(20, Math.round(100 * ctx.scale)));
    } finally {
      await emulator.stop();
    }
  },
};
