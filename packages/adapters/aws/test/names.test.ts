import { describe, expect, it } from 'vitest';
import { snsTopicName, sqsDeadLetterQueueName, sqsQueueName } from '../src/index.js';
import { fifoToken } from '../src/names.js';

describe('AWS names', () => {
  it('turns a topic into an SNS topic name: dots become underscores, FIFO adds .fifo', () => {
    expect(snsTopicName('', 'service-b.messages', false)).toBe('service-b_messages');
    expect(snsTopicName('prod-', 'service-b.messages', true)).toBe('prod-service-b_messages.fifo');
  });

  it('adds a digest when the mapping could collide or the name is too long', () => {
    const underscored = snsTopicName('', 'a_b', false);
    const dotted = snsTopicName('', 'a.b', false);
    expect(dotted).toBe('a_b');
    expect(underscored).not.toBe(dotted);
    expect(underscored).toMatch(/^a_b-[0-9a-f]{8}$/);
    expect(snsTopicName('', 'x'.repeat(300), true)).toHaveLength(256);
    expect(snsTopicName('', 'événement', false)).toMatch(/^_v_nement-[0-9a-f]{8}$/);
  });

  it('gives every (topic, group) its own queue of at most 80 characters, its dead-letter queue too', () => {
    const a = sqsQueueName('', 'a--b', 'c', false);
    const b = sqsQueueName('', 'a', 'b--c', false);
    expect(a).not.toBe(b);
    const long = sqsQueueName('p-', 't'.repeat(200), 'g'.repeat(200), true);
    expect(long.endsWith('.fifo')).toBe(true);
    expect(sqsDeadLetterQueueName(long)).toHaveLength(long.length + 4);
    expect(sqsDeadLetterQueueName(long).length).toBeLessThanOrEqual(80);
    expect(sqsDeadLetterQueueName(long)).toMatch(/-dlq\.fifo$/);
    expect(sqsDeadLetterQueueName('q-1')).toBe('q-1-dlq');
    for (const name of [a, b, long]) expect(name).toMatch(/^[A-Za-z0-9_-]+(\.fifo)?$/);
  });

  it('keeps group and dedup ids AWS takes, and hashes the others', () => {
    expect(fifoToken('customer-42')).toBe('customer-42');
    expect(fifoToken('01936f0e-7c1b-7000-8000-000000000000~r1.ab12')).toBe('01936f0e-7c1b-7000-8000-000000000000~r1.ab12');
    for (const value of ['ключ-1', 'has space', '', 'x'.repeat(129)]) expect(fifoToken(value)).toMatch(/^sha256-[0-9a-f]{64}$/);
  });
});
