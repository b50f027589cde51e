import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isSwitchboardError } from '../src/errors.js';
import { PendingReplies } from '../src/kit.js';

const reply = (text: string) => ({ headers: {}, body: new TextEncoder().encode(text) });

/** The settled state of each promise, by name: the reply's text, or the error's code. */
function track(promises: Record<string, Promise<{ body: Uint8Array }>>): Record<string, string> {
  const state: Record<string, string> = {};
  for (const [name, promise] of Object.entries(promises)) {
    promise.then(
      (value) => {
        state[name] = new TextDecoder().decode(value.body);
      },
      (error: unknown) => {
        state[name] = isSwitchboardError(error) ? error.code : String(error);
      },
    );
  }
  return state;
}

describe('PendingReplies', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('times out each request after its own timeout, on one shared timer, whatever the mix of timeouts', async () => {
    const pending = new PendingReplies();
    const none = () => undefined;
    const state = track({
      long: pending.wait('long', 't', { timeoutMs: 1000 }, none),
      short: pending.wait('short', 't', { timeoutMs: 100 }, none),
      answered: pending.wait('answered', 't', { timeoutMs: 100 }, none),
    });
    await vi.advanceTimersByTimeAsync(50);
    const later = track({ later: pending.wait('later', 't', { timeoutMs: 100 }, none) });
    expect(pending.resolve('answered', reply('ok'))).toBe(true);
    await vi.advanceTimersByTimeAsync(49);
    expect(state).toEqual({ answered: 'ok' });
    await vi.advanceTimersByTimeAsync(1);
    expect(state).toEqual({ answered: 'ok', short: 'SB_REPLY_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(49);
    expect(later).toEqual({});
    await vi.advanceTimersByTimeAsync(1);
    expect(later).toEqual({ later: 'SB_REPLY_TIMEOUT' });
    expect(pending.size).toBe(1);
    await vi.advanceTimersByTimeAsync(849);
    expect(state.long).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(state.long).toBe('SB_REPLY_TIMEOUT');
    expect(pending.size).toBe(0);
    expect(pending.resolve('long', reply('late'))).toBe(false);
  });

  it('leaves nothing behind when a request is answered, aborted or failed, and times out later requests on time', async () => {
    const pending = new PendingReplies();
    const controller = new AbortController();
    const state = track({
      answered: pending.wait('a', 't', { timeoutMs: 1000 }, () => undefined),
      aborted: pending.wait('b', 't', { timeoutMs: 1000, signal: controller.signal }, () => undefined),
      refused: pending.wait('c', 't', { timeoutMs: 1000 }, () => Promise.reject(new Error('send failed'))),
      thrown: pending.wait('d', 't', { timeoutMs: 1000 }, () => {
        throw new Error('send threw');
      }),
    });
    pending.resolve('a', reply('ok'));
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(state).toEqual({ answered: 'ok', aborted: 'SB_ABORTED', refused: 'Error: send failed', thrown: 'Error: send threw' });
    expect(pending.size).toBe(0);
    // The timer armed for the first requests fires with nothing due; a later request still times out on time.
    await vi.advanceTimersByTimeAsync(500);
    const later = track({ later: pending.wait('e', 't', { timeoutMs: 1000 }, () => undefined) });
    await vi.advanceTimersByTimeAsync(999);
    expect(later).toEqual({});
    await vi.advanceTimersByTimeAsync(1);
    expect(later).toEqual({ later: 'SB_REPLY_TIMEOUT' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails everything that waits on failAll, and refuses an id already waiting', async () => {
    const pending = new PendingReplies();
    const state = track({
      one: pending.wait('x', 't', { timeoutMs: 1000 }, () => undefined),
      two: pending.wait('y', 't', { timeoutMs: 5000 }, () => undefined),
      again: pending.wait('x', 't', { timeoutMs: 1000 }, () => undefined),
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(state).toEqual({ again: 'SB_CONFIG_INVALID' });
    pending.failAll(new Error('closed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state).toEqual({ again: 'SB_CONFIG_INVALID', one: 'Error: closed', two: 'Error: closed' });
    expect(pending.size).toBe(0);
  });
});
