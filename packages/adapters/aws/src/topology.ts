import {
  CreateTopicCommand,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTopicsCommand,
  SetSubscriptionAttributesCommand,
  type SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { awsErrorName, configError, isQueueMissing } from './errors.js';
import { snsTopicName, sqsDeadLetterQueueName, sqsQueueName } from './names.js';
import { ROUTING_ATTRIBUTES } from './wire.js';

export interface TopologyOptions {
  readonly prefix: string;
  readonly fifo: (topic: string) => boolean;
  /** `create`: create what is missing and correct what drifted. `verify`: check only (infrastructure-as-code owns it). */
  readonly provision: 'create' | 'verify';
  /** The queue's default visibility timeout, in seconds (the lease of a receive that names none). */
  readonly visibilityTimeoutSeconds: number;
  /** SQS moves a message to the group's dead-letter queue after this many receives (the backstop). */
  readonly maxReceiveCount: number;
  readonly retentionSeconds: number;
  readonly deadLetterRetentionSeconds: number;
  /** CloudEvents types a group's subscription lets through (an SNS filter policy on `ce-type`); `undefined`: all. */
  readonly eventTypes: (topic: string, group: string) => readonly string[] | undefined;
}

/** What a consumer group uses: its queue, dead-letter queue and subscription. */
export interface GroupQueue {
  readonly topic: string;
  readonly group: string;
  readonly fifo: boolean;
  readonly topicArn: string;
  readonly queueName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
}

/**
 * The policy that lets the topic (and only it) deliver to the queue. AWS drops SNS deliveries to a
 * queue whose policy does not allow them, silently
 * (https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html); the emulator
 * enforces no policy, so this is always written and checked by a unit test.
 */
export function queuePolicy(queueArn: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'SwitchboardTopicDelivers',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      },
    ],
  });
}

/** The filter policy of a group that takes only `types` (matched on the `ce-type` attribute). */
export function filterPolicy(types: readonly string[]): string {
  return JSON.stringify({ [ROUTING_ATTRIBUTES.type]: [...types] });
}

/** `arn:<partition>:sqs:<region>:<account>:<name>` → the same ARN for another queue or service. */
function siblingArn(arn: string, service: 'sqs' | 'sns', name: string): string {
  const parts = arn.split(':');
  return [parts[0], parts[1], service, parts[3], parts[4], name].join(':');
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = make();
    cache.set(key, pending);
    pending.catch(() => {
      if (cache.get(key) === pending) cache.delete(key);
    });
  }
  return pending;
}

/**
 * SNS topics, SQS queues and subscriptions, created idempotently (`create`) or only checked
 * (`verify`). A topic per Switchboard topic; per consumer group a queue with its dead-letter queue
 * (redrive after `maxReceiveCount` receives), subscribed with raw delivery and, when the group names
 * its event types, a filter policy. Results are cached; `forget` drops them when a resource vanished.
 */
export class Topology {
  readonly #sns: SNSClient;
  readonly #sqs: SQSClient;
  readonly #options: TopologyOptions;
  readonly #topics = new Map<string, Promise<string>>();
  readonly #groups = new Map<string, Promise<GroupQueue>>();

  constructor(sns: SNSClient, sqs: SQSClient, options: TopologyOptions) {
    this.#sns = sns;
    this.#sqs = sqs;
    this.#options = options;
  }

  get provision(): 'create' | 'verify' {
    return this.#options.provision;
  }

  isFifo(topic: string): boolean {
    return this.#options.fifo(topic);
  }

  topicName(topic: string): string {
    return snsTopicName(this.#options.prefix, topic, this.isFifo(topic));
  }

  queueName(topic: string, group: string): string {
    return sqsQueueName(this.#options.prefix, topic, group, this.isFifo(topic));
  }

  /** The ARN of the topic's SNS topic. */
  topicArn(topic: string): Promise<string> {
    return memo(this.#topics, topic, () => this.#topicArn(topic));
  }

  /** The group's queue, ready (or checked) with its dead-letter queue and subscription. */
  group(topic: string, group: string): Promise<GroupQueue> {
    return memo(this.#groups, `${topic}\u0000${group}`, () => this.#group(topic, group));
  }

  /** Drops what is cached for `topic` (and, with `group`, that group's queue): the next use creates or looks up again. */
  forget(topic: string, group?: string): void {
    this.#topics.delete(topic);
    if (group !== undefined) this.#groups.delete(`${topic}\u0000${group}`);
    else for (const key of [...this.#groups.keys()]) if (key.startsWith(`${topic}\u0000`)) this.#groups.delete(key);
  }

  async #topicArn(topic: string): Promise<string> {
    const name = this.topicName(topic);
    const fifo = this.isFifo(topic);
    if (this.#options.provision === 'create') {
      const { TopicArn } = await this.#sns.send(
        new CreateTopicCommand({
          Name: name,
          ...(fifo ? { Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' } } : {}),
        }),
      );
      if (TopicArn === undefined) throw configError(`CreateTopic ${name} answered no ARN`);
      return TopicArn;
    }
    let token: string | undefined;
    do {
      const page = await this.#sns.send(new ListTopicsCommand(token === undefined ? {} : { NextToken: token }));
      const found = page.Topics?.find((entry) => entry.TopicArn?.endsWith(`:${name}`));
      if (found?.TopicArn !== undefined) return found.TopicArn;
      token = page.NextToken;
    } while (token !== undefined);
    throw configError(`SNS topic ${name} (for topic ${topic}) does not exist; create it, or use provision 'create'`);
  }

  async #group(topic: string, group: string): Promise<GroupQueue> {
    const fifo = this.isFifo(topic);
    const topicArn = await this.topicArn(topic);
    const queueName = this.queueName(topic, group);
    const deadLetterName = sqsDeadLetterQueueName(queueName);
    const types = this.#options.eventTypes(topic, group);
    if (this.#options.provision === 'verify') return this.#verifyGroup(topic, group, topicArn, queueName, deadLetterName, types);

    const fifoAttributes: Partial<Record<QueueAttributeName, string>> = fifo
      ? { FifoQueue: 'true', ContentBasedDeduplication: 'false' }
      : {};
    const deadLetter = await this.#ensureQueue(deadLetterName, {
      ...fifoAttributes,
      MessageRetentionPeriod: String(this.#options.deadLetterRetentionSeconds),
    });
    const queueArn = siblingArn(deadLetter.arn, 'sqs', queueName);
    const queue = await this.#ensureQueue(queueName, {
      ...fifoAttributes,
      VisibilityTimeout: String(this.#options.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(this.#options.retentionSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetter.arn, maxReceiveCount: this.#options.maxReceiveCount }),
      Policy: queuePolicy(queueArn, topicArn),
    });
    await this.#subscribe(topicArn, queue.arn, types);
    return {
      topic,
      group,
      fifo,
      topicArn,
      queueName,
      queueUrl: queue.url,
      queueArn: queue.arn,
      deadLetterQueueUrl: deadLetter.url,
      deadLetterQueueArn: deadLetter.arn,
    };
  }

  /** Creates the queue, or brings an existing one to `attributes` (`CreateQueue` refuses other attributes). */
  async #ensureQueue(name: string, attributes: Partial<Record<QueueAttributeName, string>>): Promise<{ url: string; arn: string }> {
    let url: string | undefined;
    try {
      url = (await this.#sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl;
    } catch (error) {
      if (!/QueueNameExists|QueueAlreadyExists/.test(awsErrorName(error))) throw error;
      url = (await this.#sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
      const { FifoQueue: _immutable, ...mutable } = attributes;
      if (url !== undefined) await this.#sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: mutable }));
    }
    if (url === undefined) throw configError(`CreateQueue ${name} answered no URL`);
    // Always the URL SQS gave: the emulator finds queues by the exact string.
    const { Attributes } = await this.#sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    const arn = Attributes?.QueueArn;
    if (arn === undefined) throw configError(`queue ${name} has no ARN`);
    return { url, arn };
  }

  /** Subscribes the queue with raw delivery (and the filter policy); an existing subscription with other attributes is corrected. */
  async #subscribe(topicArn: string, queueArn: string, types: readonly string[] | undefined): Promise<void> {
    const attributes: Record<string, string> = { RawMessageDelivery: 'true' };
    if (types !== undefined) attributes.FilterPolicy = filterPolicy(types);
    try {
      await this.#sns.send(
        new SubscribeCommand({
          TopicArn: topicArn,
          Protocol: 'sqs',
          Endpoint: queueArn,
          Attributes: attributes,
          ReturnSubscriptionArn: true,
        }),
      );
    } catch (error) {
      if (!/already exists/i.test((error as Error).message ?? '')) throw error;
      const arn = await this.#findSubscription(topicArn, queueArn);
      if (arn === undefined) throw error;
      for (const [AttributeName, AttributeValue] of Object.entries(attributes)) {
        await this.#sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: arn, AttributeName, AttributeValue }));
      }
    }
  }

  async #findSubscription(topicArn: string, queueArn: string): Promise<string | undefined> {
    let token: string | undefined;
    do {
      const page = await this.#sns.send(
        new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, ...(token === undefined ? {} : { NextToken: token }) }),
      );
      const found = page.Subscriptions?.find((entry) => entry.Protocol === 'sqs' && entry.Endpoint === queueArn);
      if (found?.SubscriptionArn !== undefined) return found.SubscriptionArn;
      token = page.NextToken;
    } while (token !== undefined);
    return undefined;
  }

  /** Verify mode: everything the group needs exists and is wired as `create` would wire it; every problem is named. */
  async #verifyGroup(
    topic: string,
    group: string,
    topicArn: string,
    queueName: string,
    deadLetterName: string,
    types: readonly string[] | undefined,
  ): Promise<GroupQueue> {
    const problems: string[] = [];
    const lookup = async (name: string) => {
      try {
        const url = (await this.#sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
        if (url === undefined) return undefined;
        const { Attributes } = await this.#sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
        return { url, attributes: Attributes ?? {} };
      } catch (error) {
        if (isQueueMissing(error)) return undefined;
        throw error;
      }
    };
    const queue = await lookup(queueName);
    const deadLetter = await lookup(deadLetterName);
    if (queue === undefined) problems.push(`SQS queue ${queueName} does not exist`);
    if (deadLetter === undefined) problems.push(`SQS dead-letter queue ${deadLetterName} does not exist`);
    const queueArn = queue?.attributes.QueueArn ?? '';
    const deadLetterArn = deadLetter?.attributes.QueueArn ?? '';
    if (queue !== undefined) {
      const redrive = queue.attributes.RedrivePolicy;
      if (redrive === undefined || !redrive.includes(deadLetterArn))
        problems.push(`${queueName} has no RedrivePolicy to ${deadLetterName}`);
      const policy = queue.attributes.Policy ?? '';
      if (!policy.includes('sns.amazonaws.com') || !policy.includes(topicArn)) {
        problems.push(`${queueName} has no Policy letting ${topicArn} send to it (AWS drops such deliveries silently)`);
      }
      const subscription = await this.#findSubscription(topicArn, queueArn);
      if (subscription === undefined) problems.push(`${queueName} is not subscribed to ${topicArn}`);
      else {
        const { Attributes } = await this.#sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: subscription }));
        if (types !== undefined && Attributes?.FilterPolicy === undefined) {
          problems.push(`the subscription of ${queueName} has no filter policy on ${ROUTING_ATTRIBUTES.type}`);
        }
      }
    }
    if (problems.length > 0) throw configError(`topic ${topic}, group ${group} (provision: verify): ${problems.join('; ')}`);
    return {
      topic,
      group,
      fifo: this.isFifo(topic),
      topicArn,
      queueName,
      queueUrl: queue!.url,
      queueArn,
      deadLetterQueueUrl: deadLetter!.url,
      deadLetterQueueArn: deadLetterArn,
    };
  }
}
