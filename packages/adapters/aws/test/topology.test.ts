import { isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { filterPolicy, queuePolicy } from '../src/index.js';
import { Topology, type TopologyOptions } from '../src/topology.js';
import { FakeSns, FakeSqs } from './fake-aws.js';

const options: TopologyOptions = {
  prefix: 'sb-',
  fifo: (topic) => topic.startsWith('ordered'),
  provision: 'create',
  visibilityTimeoutSeconds: 30,
  maxReceiveCount: 7,
  retentionSeconds: 345_600,
  deadLetterRetentionSeconds: 1_209_600,
  eventTypes: (_topic, group) => (group === 'picky' ? ['service-a.name.processed'] : undefined),
};

describe('the SNS → SQS queue policy', () => {
  it('allows exactly the topic to send to the queue (AWS drops deliveries without it; the emulator does not check)', () => {
    const policy = JSON.parse(queuePolicy('arn:aws:sqs:eu-west-1:123456789012:q', 'arn:aws:sns:eu-west-1:123456789012:t'));
    expect(policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'SwitchboardTopicDelivers',
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: 'arn:aws:sqs:eu-west-1:123456789012:q',
          Condition: { ArnEquals: { 'aws:SourceArn': 'arn:aws:sns:eu-west-1:123456789012:t' } },
        },
      ],
    });
    expect(JSON.parse(filterPolicy(['a', 'b']))).toEqual({ 'ce-type': ['a', 'b'] });
  });
});

describe('Topology (create)', () => {
  it('creates the topic, the dead-letter queue, the queue with redrive and policy, and a raw subscription', async () => {
    const sns = new FakeSns();
    const sqs = new FakeSqs();
    const group = await new Topology(sns.client, sqs.client, options).group('service-b.messages', 'picky');
    expect(sns.called('CreateTopic')[0]!.input).toEqual({ Name: 'sb-service-b_messages' });
    const [deadLetter, queue] = sqs.called('CreateQueue');
    expect(deadLetter!.input.QueueName).toBe(`${queue!.input.QueueName}-dlq`);
    expect(deadLetter!.input.Attributes).toEqual({ MessageRetentionPeriod: '1209600' });
    const attributes = queue!.input.Attributes;
    expect(JSON.parse(attributes.RedrivePolicy)).toEqual({ deadLetterTargetArn: group.deadLetterQueueArn, maxReceiveCount: 7 });
    expect(attributes.Policy).toBe(queuePolicy(group.queueArn, group.topicArn));
    expect(attributes.VisibilityTimeout).toBe('30');
    expect(sns.called('Subscribe')[0]!.input).toEqual({
      TopicArn: group.topicArn,
      Protocol: 'sqs',
      Endpoint: group.queueArn,
      Attributes: { RawMessageDelivery: 'true', FilterPolicy: '{"ce-type":["service-a.name.processed"]}' },
      ReturnSubscriptionArn: true,
    });
  });

  it('makes FIFO topics and queues for ordered topics', async () => {
    const sns = new FakeSns();
    const sqs = new FakeSqs();
    const group = await new Topology(sns.client, sqs.client, options).group('ordered.payments', 'billing');
    expect(group.fifo).toBe(true);
    expect(sns.called('CreateTopic')[0]!.input).toEqual({
      Name: 'sb-ordered_payments.fifo',
      Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
    });
    for (const call of sqs.called('CreateQueue')) {
      expect(call.input.QueueName).toMatch(/\.fifo$/);
      expect(call.input.Attributes.FifoQueue).toBe('true');
    }
  });

  it('brings a queue that exists with other attributes to the wanted ones', async () => {
    const sns = new FakeSns();
    const sqs = new FakeSqs();
    const send = sqs.send.bind(sqs);
    sqs.send = async (command) => {
      const input = command.input as { QueueName?: string };
      if (command.constructor.name === 'CreateQueueCommand' && !input.QueueName?.endsWith('-dlq')) {
        sqs.calls.push({ name: 'CreateQueue', input });
        throw Object.assign(new Error('A queue already exists with the same name and a different value for attribute VisibilityTimeout'), {
          name: 'QueueNameExists',
        });
      }
      return send(command);
    };
    await new Topology(sns.client, sqs.client, options).group('orders', 'billing');
    const set = sqs.called('SetQueueAttributes');
    expect(set).toHaveLength(1);
    expect(set[0]!.input.Attributes.VisibilityTimeout).toBe('30');
    expect(set[0]!.input.Attributes.FifoQueue).toBeUndefined();
  });
});

describe('Topology (verify)', () => {
  it('creates nothing and names every missing piece with SB_CONFIG_INVALID', async () => {
    const sns = new FakeSns();
    const sqs = new FakeSqs();
    sns.send = async (command) => {
      sns.calls.push({ name: command.constructor.name, input: command.input });
      if (command.constructor.name === 'ListTopicsCommand')
        return { Topics: [{ TopicArn: 'arn:aws:sns:us-east-1:123456789012:sb-orders' }] };
      if (command.constructor.name === 'ListSubscriptionsByTopicCommand') return { Subscriptions: [] };
      throw new Error(`unexpected ${command.constructor.name}`);
    };
    sqs.send = async (command) => {
      sqs.calls.push({ name: command.constructor.name, input: command.input });
      throw Object.assign(new Error('The specified queue does not exist.'), { name: 'QueueDoesNotExist' });
    };
    const error = await new Topology(sns.client, sqs.client, { ...options, provision: 'verify' })
      .group('orders', 'billing')
      .catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_CONFIG_INVALID')).toBe(true);
    expect(String((error as Error).message)).toMatch(/queue .* does not exist.*dead-letter queue .* does not exist/);
    expect([...sns.calls, ...sqs.calls].some((call) => /Create|Subscribe|Set/.test(call.name))).toBe(false);
  });
});
