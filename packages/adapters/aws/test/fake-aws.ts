import type { SNSClient } from '@aws-sdk/client-sns';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';

/**
 * Stubbed SNS and SQS clients for what the emulator cannot show: partial batch failures, invalid
 * receipt handles, several FIFO messages of one group in one receive, duplicates. They answer the
 * SDK's commands by name, record every call, and take scripted answers.
 */

export interface Call {
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: the recorded input of whichever command was sent
  readonly input: any;
}

interface BatchEntry {
  readonly Id: string;
  readonly ReceiptHandle: string;
  readonly VisibilityTimeout?: number;
}

export interface BatchAnswer {
  readonly Successful: { Id: string }[];
  readonly Failed: { Id: string; Code: string; SenderFault: boolean; Message?: string }[];
}

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

function allSuccessful(entries: readonly { Id: string }[]): BatchAnswer {
  return { Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
}

export class FakeSqs {
  readonly calls: Call[] = [];
  /** Answers of the next receives, in order; when none is queued, a receive answers empty after a short wait. */
  readonly receives: Message[][] = [];
  /** Answers `DeleteMessageBatch`. Default: every entry succeeds. */
  deleteAnswer: (entries: readonly BatchEntry[], call: number) => BatchAnswer = allSuccessful;
  /** Answers `ChangeMessageVisibilityBatch`. Default: every entry succeeds. */
  visibilityAnswer: (entries: readonly BatchEntry[], call: number) => BatchAnswer = allSuccessful;
  #deletes = 0;
  #changes = 0;

  get client(): SQSClient {
    return this as unknown as SQSClient;
  }

  called(name: string): Call[] {
    return this.calls.filter((call) => call.name === name);
  }

  async send(command: { constructor: { name: string }; input: unknown }): Promise<unknown> {
    const name = command.constructor.name.replace(/Command$/, '');
    // biome-ignore lint/suspicious/noExplicitAny: the input of whichever command was sent
    const input = command.input as any;
    this.calls.push({ name, input });
    switch (name) {
      case 'CreateQueue':
        return { QueueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${input.QueueName}` };
      case 'GetQueueUrl':
        return { QueueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${input.QueueName}` };
      case 'GetQueueAttributes':
        return { Attributes: { QueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${String(input.QueueUrl).split('/').pop()}` } };
      case 'SetQueueAttributes':
        return {};
      case 'ReceiveMessage': {
        const next = this.receives.shift();
        if (next !== undefined) return { Messages: next.slice(0, input.MaxNumberOfMessages) };
        await new Promise((resolve) => setTimeout(resolve, 20));
        return {};
      }
      case 'DeleteMessageBatch':
        return this.deleteAnswer(input.Entries, this.#deletes++);
      case 'ChangeMessageVisibilityBatch':
        return this.visibilityAnswer(input.Entries, this.#changes++);
      default:
        throw new Error(`FakeSqs: unexpected ${name}`);
    }
  }

  destroy(): void {}
}

export class FakeSns {
  readonly calls: Call[] = [];
  /** Answers `PublishBatch`. Default: every entry succeeds with a MessageId. */
  publishAnswer: (entries: readonly { Id: string }[], call: number) => BatchAnswer = allSuccessful;
  #publishes = 0;

  get client(): SNSClient {
    return this as unknown as SNSClient;
  }

  called(name: string): Call[] {
    return this.calls.filter((call) => call.name === name);
  }

  async send(command: { constructor: { name: string }; input: unknown }): Promise<unknown> {
    const name = command.constructor.name.replace(/Command$/, '');
    // biome-ignore lint/suspicious/noExplicitAny: the input of whichever command was sent
    const input = command.input as any;
    this.calls.push({ name, input });
    switch (name) {
      case 'CreateTopic':
        return { TopicArn: `arn:aws:sns:${REGION}:${ACCOUNT}:${input.Name}` };
      case 'Subscribe':
        return { SubscriptionArn: `arn:aws:sns:${REGION}:${ACCOUNT}:sub` };
      case 'PublishBatch': {
        const answer = this.publishAnswer(input.PublishBatchRequestEntries, this.#publishes++);
        return {
          Successful: answer.Successful.map((entry) => ({ Id: entry.Id, MessageId: `sns-${this.#publishes}-${entry.Id}` })),
          Failed: answer.Failed,
        };
      }
      default:
        throw new Error(`FakeSns: unexpected ${name}`);
    }
  }

  destroy(): void {}
}

let sequence = 0;

/** An SQS message as `ReceiveMessage` returns it, with the attributes Switchboard reads. */
export function sqsMessage(options: {
  body: string;
  id?: string;
  groupId?: string;
  receiveCount?: number;
  attributes?: Record<string, string>;
}): Message {
  sequence += 1;
  const attributes: Record<string, { DataType: string; StringValue: string }> = {};
  for (const [name, value] of Object.entries(options.attributes ?? {})) attributes[name] = { DataType: 'String', StringValue: value };
  if (options.id !== undefined) attributes['sb-id'] = { DataType: 'String', StringValue: options.id };
  return {
    MessageId: `sqs-${sequence}`,
    ReceiptHandle: `handle-${sequence}-${Math.random().toString(36).slice(2)}`,
    Body: options.body,
    MessageAttributes: attributes,
    Attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      ...(options.groupId === undefined ? {} : { MessageGroupId: options.groupId }),
    },
  };
}
