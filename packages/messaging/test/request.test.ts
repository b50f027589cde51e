import { defineContract, type Handlers, isSwitchboardError, OperationError, operation } from '@switchboard/core';
import { QueueRequests } from '@switchboard/core/kit';
import { createMemoryBroker, MemoryBlobStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const names = defineContract({
  name: 'names',
  operations: {
    save: operation({
      input: z.object({ name: z.string().min(1) }),
      output: z.object({ id: z.string(), name: z.string() }),
      errors: { NameTaken: { status: 409, data: z.object({ existing: z.string() }) } },
    }),
    slow: operation({ input: z.object({ ms: z.number() }), output: z.object({ done: z.boolean() }) }),
    big: operation({ input: z.object({ size: z.number() }), output: z.object({ text: z.string() }) }),
    broken: operation({ input: z.object({}), output: z.object({ n: z.number() }) }),
  },
});

const handlers: Handlers<typeof names> = {
  save: async ({ name }, context) => {
    if (name === 'taken') throw new OperationError('NameTaken', { detail: 'that name is taken', data: { existing: 'n-1' } });
    return { id: `${context.via}:${context.messageId}`, name };
  },
  slow: ({ ms }, context) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ done: true }), ms);
      context.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }),
  big: async ({ size }) => ({ text: 'x'.repeat(size) }),
  // Returns what its output schema refuses.
  broken: async () => ({ n: 'not a number' }) as unknown as { n: number },
};

const open: Messaging[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((messaging) => messaging.close()));
});

async function pair(options: { blobs?: MemoryBlobStore; handlerTimeoutMs?: number } = {}) {
  const broker = createMemoryBroker();
  const blobs = options.blobs === undefined ? {} : { blobs: options.blobs };
  const b = createMessaging({
    broker,
    service: 'names',
    deadLetters: false,
    ...blobs,
    handlerTimeoutMs: options.handlerTimeoutMs ?? 5_000,
  });
  b.serve(names, handlers);
  await b.start();
  const a = createMessaging({ broker, service: 'service-a', deadLetters: false, ...blobs });
  await a.start();
  open.push(a, b);
  return { broker, a, b };
}

describe('messaging.request (memory broker, generic request/reply)', () => {
  it('resolves with the typed output of the same handlers, reached via message', async () => {
    const { a } = await pair();
    const saved = await a.request(names, 'save', { name: 'ada' }, { timeout: 5_000 });
    expectTypeOf(saved).toEqualTypeOf<{ id: string; name: string }>();
    expect(saved.name).toBe('ada');
    expect(saved.id).toMatch(/^message:/);
    expect(a.pendingRequests).toBe(0);
  });

  it('rejects with the declared error, its code, status and data', async () => {
    const { a } = await pair();
    const error = await a.request(names, 'save', { name: 'taken' }, { timeout: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect(error).toMatchObject({ code: 'NameTaken', status: 409, data: { existing: 'n-1' }, detail: 'that name is taken' });
  });

  it('refuses invalid input before sending (SB_VALIDATION) and an unknown operation (SB_UNKNOWN_OPERATION)', async () => {
    const { a } = await pair();
    await expect(a.request(names, 'save', { name: '' })).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_VALIDATION'));
    // @ts-expect-error: the contract has no operation `delete`.
    const unknown = a.request(names, 'delete', {});
    await expect(unknown).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_UNKNOWN_OPERATION'));
    expect(a.pendingRequests).toBe(0);
  });

  it('an output the contract refuses comes back as SB_INVALID_OUTPUT', async () => {
    const { a } = await pair();
    await expect(a.request(names, 'broken', {}, { timeout: 5_000 })).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_INVALID_OUTPUT'));
  });

  it('times out with SB_REPLY_TIMEOUT and leaves nothing pending', async () => {
    const { a } = await pair();
    const error = await a.request(names, 'slow', { ms: 300 }, { timeout: 50 }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_REPLY_TIMEOUT')).toBe(true);
    expect(a.pendingRequests).toBe(0);
  });

  it('aborts with SB_ABORTED (before and while waiting) and leaves nothing pending', async () => {
    const { a } = await pair();
    const controller = new AbortController();
    const waiting = a.request(names, 'slow', { ms: 300 }, { timeout: 5_000, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await expect(waiting).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_ABORTED'));
    await expect(a.request(names, 'save', { name: 'x' }, { signal: AbortSignal.abort() })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_ABORTED'),
    );
    expect(a.pendingRequests).toBe(0);
  });

  it('a receiver that is down is found out by the timeout', async () => {
    const broker = createMemoryBroker();
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false });
    open.push(a);
    await expect(a.request(names, 'save', { name: 'ada' }, { timeout: 100 })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_REPLY_TIMEOUT'),
    );
    expect(a.pendingRequests).toBe(0);
  });

  it('a reply over the claim-check threshold travels by claim check', async () => {
    const blobs = new MemoryBlobStore();
    const stored: string[] = [];
    const put = blobs.put.bind(blobs);
    blobs.put = async (source, options) => {
      const info = await put(source, options);
      stored.push(info.uri);
      return info;
    };
    const { a } = await pair({ blobs });
    const size = 300 * 1024;
    const reply = await a.request(names, 'big', { size }, { timeout: 5_000 });
    expect(reply.text.length).toBe(size);
    expect(stored).toHaveLength(1);
  });

  it('a reply over the engine limit travels by claim check even under a larger claim-check threshold', async () => {
    const broker = createMemoryBroker({ maxMessageBytes: 64 * 1024 });
    const blobs = new MemoryBlobStore();
    const stored: string[] = [];
    const put = blobs.put.bind(blobs);
    blobs.put = async (source, options) => {
      const info = await put(source, options);
      stored.push(info.uri);
      return info;
    };
    const claimCheck = { thresholdBytes: 16 * 1024 * 1024 };
    const b = createMessaging({ broker, service: 'names', deadLetters: false, blobs, claimCheck });
    b.serve(names, handlers);
    await b.start();
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false, blobs, claimCheck });
    open.push(a, b);
    const reply = await a.request(names, 'big', { size: 100 * 1024 }, { timeout: 5_000 });
    expect(reply.text.length).toBe(100 * 1024);
    expect(stored).toHaveLength(1);
    // Below the engine's limit, the reply travels inline.
    await a.request(names, 'big', { size: 1024 }, { timeout: 5_000 });
    expect(stored).toHaveLength(1);
  });

  it('a reply over the engine limit without a blob store is refused with SB_MESSAGE_TOO_LARGE, not a hang', async () => {
    const { a, broker } = await pair();
    const size = broker.capabilities.maxMessageBytes + 1024;
    await expect(a.request(names, 'big', { size }, { timeout: 5_000 })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_MESSAGE_TOO_LARGE'),
    );
  });

  it('close fails pending requests with SB_CLOSED and later requests are refused', async () => {
    const { a } = await pair();
    const waiting = a.request(names, 'slow', { ms: 300 }, { timeout: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await a.close();
    await expect(waiting).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_CLOSED'));
    await expect(a.request(names, 'save', { name: 'x' })).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_CLOSED'));
    expect(a.pendingRequests).toBe(0);
  });

  it('refuses a timeout that is not a positive number (SB_CONFIG_INVALID)', async () => {
    const { a } = await pair();
    await expect(a.request(names, 'save', { name: 'x' }, { timeout: -1 })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_CONFIG_INVALID'),
    );
  });

  it('QueueRequests drops a reply nobody waits for', async () => {
    const broker = createMemoryBroker();
    const requests = new QueueRequests(broker);
    await expect(
      requests.request({ id: 'r-1', topic: 'nobody.messages', headers: {}, body: new Uint8Array() }, { timeoutMs: 30 }),
    ).rejects.toSatisfy((e) => isSwitchboardError(e, 'SB_REPLY_TIMEOUT'));
    expect(requests.pending).toBe(0);
    await requests.close();
    await broker.close();
  });
});

describe('messaging.request with signed messages', () => {
  const keyA = { id: 'a-1', algorithm: 'hs256' as const, secret: 'a'.repeat(32) };
  const keyB = { id: 'b-1', algorithm: 'hs256' as const, secret: 'b'.repeat(32) };
  const verify = { keys: [keyA, keyB], sources: { 'service-a': ['a-1'], names: ['b-1'] } };

  it('signs the request and the reply (output or problem), and each end verifies the other', async () => {
    const broker = createMemoryBroker();
    const b = createMessaging({ broker, service: 'names', deadLetters: false, signing: { sign: keyB, verify } });
    b.serve(names, handlers);
    await b.start();
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false, signing: { sign: keyA, verify } });
    open.push(a, b);
    await expect(a.request(names, 'save', { name: 'ada' }, { timeout: 5_000 })).resolves.toMatchObject({ name: 'ada' });
    await expect(a.request(names, 'save', { name: 'taken' }, { timeout: 5_000 })).rejects.toMatchObject({ code: 'NameTaken' });
  });

  it('an unsigned request is answered with SB_SIGNATURE_INVALID and never runs; an unsigned reply is refused', async () => {
    const broker = createMemoryBroker();
    const b = createMessaging({ broker, service: 'names', deadLetters: false, signing: { verify } });
    let ran = 0;
    b.serve(names, {
      ...handlers,
      save: async (input, context) => {
        ran += 1;
        return handlers.save(input, context);
      },
    });
    await b.start();
    const unsigned = createMessaging({ broker, service: 'service-a', deadLetters: false });
    const strict = createMessaging({ broker, service: 'service-a', deadLetters: false, signing: { sign: keyA, verify } });
    open.push(unsigned, strict, b);
    await expect(unsigned.request(names, 'save', { name: 'ada' }, { timeout: 5_000 })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_SIGNATURE_INVALID'),
    );
    expect(ran).toBe(0);
    // B signs nothing: its reply is refused by a caller that requires signatures.
    await expect(strict.request(names, 'save', { name: 'ada' }, { timeout: 5_000 })).rejects.toSatisfy((e) =>
      isSwitchboardError(e, 'SB_SIGNATURE_INVALID'),
    );
    expect(ran).toBe(1);
  });
});
