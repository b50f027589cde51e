import { OperationError, PermanentError, RetryLaterError, SwitchboardError } from '@switchboard/core';
import { classify, OperationFailure } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { retry } from '../src/middleware/retry.js';
import { inbound } from './unit-helpers.js';

describe('retry middleware', () => {
  it('classifies failures: permanent ones with their dead-letter reason, the rest retryable', () => {
    expect(classify(new PermanentError('no'))).toMatchObject({ permanent: true, reason: 'permanent', problem: { code: 'SB_PERMANENT' } });
    expect(classify(new SwitchboardError('SB_MESSAGE_INVALID'))).toMatchObject({ permanent: true, reason: 'invalid' });
    expect(classify(new SwitchboardError('SB_NOT_CLOUDEVENT'))).toMatchObject({ permanent: true, reason: 'not-cloudevent' });
    expect(classify(new SwitchboardError('SB_UNKNOWN_TYPE'))).toMatchObject({ permanent: true, reason: 'unknown-type' });
    expect(classify(new SwitchboardError('SB_DATAREF_REFUSED'))).toMatchObject({ permanent: true, reason: 'claim-check' });
    expect(classify(new SwitchboardError('SB_HANDLER_TIMEOUT'))).toMatchObject({ permanent: false });
    expect(classify(new SwitchboardError('SB_STORE_UNAVAILABLE', { retryAfterMs: 70 }))).toMatchObject({ permanent: false, delayMs: 70 });
    expect(classify(new RetryLaterError('later', 250))).toMatchObject({ permanent: false, delayMs: 250 });
    expect(classify(new Error('plain'))).toMatchObject({
      permanent: false,
      problem: { code: 'SB_HANDLER_FAILED', detail: 'plain', retryable: true },
    });
    const declared = new OperationFailure(
      { type: 't', title: 'NameTaken', status: 409, code: 'NameTaken' },
      false,
      new OperationError('NameTaken'),
    );
    expect(classify(declared)).toMatchObject({ permanent: true, reason: 'permanent', problem: { code: 'NameTaken' } });
  });

  it('retries with exponential backoff and jitter until maxAttempts, then dead-letters', async () => {
    const step = retry({ maxAttempts: 3, backoff: { baseMs: 100, jitter: 'none' } })(async () => {
      throw new Error('flaky');
    });
    expect(await step(inbound({ attempt: 1 }))).toMatchObject({ kind: 'retry', delayMs: 100, counted: true });
    expect(await step(inbound({ attempt: 2 }))).toMatchObject({ kind: 'retry', delayMs: 200 });
    expect(await step(inbound({ attempt: 3 }))).toMatchObject({ kind: 'dead-letter', reason: 'max-attempts', error: { detail: 'flaky' } });
    const jittered = retry({ maxAttempts: 5, backoff: { baseMs: 100 }, random: () => 0.5 })(async () => {
      throw new Error('x');
    });
    expect(await jittered(inbound({ attempt: 2 }))).toMatchObject({ kind: 'retry', delayMs: 100 });
  });

  it('passes successes through untouched', async () => {
    const step = retry({ maxAttempts: 1 })(async () => ({ kind: 'ack', result: '"ok"' }));
    expect(await step(inbound())).toEqual({ kind: 'ack', result: '"ok"' });
  });
});
