import { describe, expect, it } from 'vitest';
import { timeout } from '../src/middleware/timeout.js';
import { inbound } from './unit-helpers.js';

describe('timeout middleware', () => {
  it('fails a handler past its limit with SB_HANDLER_TIMEOUT and aborts its signal', async () => {
    let signal: AbortSignal | undefined;
    const step = timeout(20)(async (message) => {
      signal = message.signal;
      return new Promise(() => {});
    });
    await expect(step(inbound())).rejects.toMatchObject({ code: 'SB_HANDLER_TIMEOUT' });
    expect(signal?.aborted).toBe(true);
  });

  it('times out a handler that never reads its signal; a signal read afterwards is already aborted', async () => {
    const message = inbound();
    const step = timeout(20)(() => new Promise(() => {}));
    await expect(step(message)).rejects.toMatchObject({ code: 'SB_HANDLER_TIMEOUT' });
    expect(message.signal.aborted).toBe(true);
    expect(message.signal.reason).toMatchObject({ code: 'SB_HANDLER_TIMEOUT' });
  });

  it('lets a handler within its limit finish, and follows the consumer closing', async () => {
    const ok = timeout(1000)(async () => ({ kind: 'ack' }));
    expect(await ok(inbound())).toEqual({ kind: 'ack' });
    const closing = new AbortController();
    let inner: AbortSignal | undefined;
    const step = timeout(1000)(async (message) => {
      inner = message.signal;
      closing.abort(new Error('closing'));
      return { kind: 'ack' };
    });
    await step(inbound({ signal: closing.signal }));
    expect(inner?.aborted).toBe(true);
  });
});
