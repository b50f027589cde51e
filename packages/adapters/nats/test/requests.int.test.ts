import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { defineContract, isSwitchboardError, OperationError, operation } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createNatsBroker } from '../src/index.js';

// Request/reply on core NATS, proved against the official client on both ends: nats.js requests
// what Switchboard serves, and answers what Switchboard requests, on the documented subject.

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbrr${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  }
  await nc.close();
});

const greeter = defineContract({
  name: `greeter-${randomBytes(3).toString('hex')}`,
  operations: {
    greet: operation({
      input: z.object({ name: z.string() }),
      output: z.object({ greeting: z.string() }),
      errors: { Shy: { status: 409, data: z.object({ why: z.string() }) } },
    }),
  },
});

describe('NATS request/reply', () => {
  it('serves an official nats.js request on <prefix>-rpc.<topic>, CloudEvents in the NATS binding, nothing stored in JetStream', async () => {
    const broker = await createNatsBroker({ url, prefix });
    const b = createMessaging({ broker, service: greeter.name, deadLetters: false });
    b.serve(greeter, { greet: async ({ name }) => ({ greeting: `hello ${name}` }) });
    await b.start();
    const nc = await connect({ servers: url });
    try {
      const h = natsHeaders();
      h.set('ce-specversion', '1.0');
      h.set('ce-id', 'raw-1');
      h.set('ce-source', 'raw-client');
      h.set('ce-type', `${greeter.name}.op.greet`);
      h.set('ce-datacontenttype', 'application/json');
      const reply = await nc.request(`${prefix}-rpc.${greeter.name}.messages`, JSON.stringify({ name: 'nats.js' }), {
        timeout: 5_000,
        headers: h,
      });
      expect(reply.headers?.get('ce-type')).toBe(`${greeter.name}.op.greet.reply`);
      expect(reply.headers?.get('ce-source')).toBe(greeter.name);
      expect(reply.headers?.get('ce-datacontenttype')).toBe('application/json');
      expect(reply.json()).toEqual({ greeting: 'hello nats.js' });
      // The request never went through JetStream: the topic's stream (made for invoke) holds no message.
      const jsm = await jetstreamManager(nc);
      let stored = 0;
      for await (const info of jsm.streams.list())
        if (info.config.name.startsWith(`${prefix.toUpperCase()}_`)) stored += info.state.messages;
      expect(stored).toBe(0);
    } finally {
      await nc.close();
      await b.close();
      await broker.close();
    }
  });

  it('gets the typed answer from an official nats.js responder, and a declared error as OperationError', async () => {
    const broker = await createNatsBroker({ url, prefix });
    const a = createMessaging({ broker, service: 'asker', deadLetters: false });
    const nc = await connect({ servers: url });
    const subject = `${prefix}-rpc.${greeter.name}.messages`;
    const responder = nc.subscribe(subject, {
      queue: greeter.name,
      callback: (_error, msg) => {
        const input = msg.json<{ name: string }>();
        const h = natsHeaders();
        h.set('ce-specversion', '1.0');
        h.set('ce-id', `reply-${msg.headers?.get('ce-id')}`);
        h.set('ce-source', 'raw-responder');
        h.set('ce-type', `${msg.headers?.get('ce-type')}.reply`);
        if (input.name === 'shy') {
          h.set('ce-datacontenttype', 'application/problem+json');
          msg.respond(JSON.stringify({ type: 'about:blank', title: 'Shy', status: 409, code: 'Shy', data: { why: 'raw' } }), {
            headers: h,
          });
        } else {
          h.set('ce-datacontenttype', 'application/json');
          msg.respond(JSON.stringify({ greeting: `raw hello ${input.name}` }), { headers: h });
        }
      },
    });
    await nc.flush();
    try {
      await expect(a.request(greeter, 'greet', { name: 'ada' }, { timeout: 5_000 })).resolves.toEqual({ greeting: 'raw hello ada' });
      const error = await a.request(greeter, 'greet', { name: 'shy' }, { timeout: 5_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OperationError);
      expect(error).toMatchObject({ code: 'Shy', status: 409, data: { why: 'raw' } });
      expect(a.pendingRequests).toBe(0);
    } finally {
      responder.unsubscribe();
      await nc.close();
      await a.close();
      await broker.close();
    }
  });

  it('fails at once with SB_NO_RESPONDERS when nobody serves, and a timeout leaves nothing pending', async () => {
    const broker = await createNatsBroker({ url, prefix });
    const a = createMessaging({ broker, service: 'asker', deadLetters: false });
    try {
      // Not SB_REPLY_TIMEOUT after a minute: the server said at once that nobody listens.
      const error = await a.request(greeter, 'greet', { name: 'ada' }, { timeout: 60_000 }).catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_NO_RESPONDERS')).toBe(true);
      const b = createMessaging({ broker, service: greeter.name, deadLetters: false });
      b.serve(greeter, { greet: ({ name }) => new Promise((resolve) => setTimeout(() => resolve({ greeting: name }), 500)) });
      await b.start();
      const late = await a.request(greeter, 'greet', { name: 'ada' }, { timeout: 50 }).catch((e: unknown) => e);
      expect(isSwitchboardError(late, 'SB_REPLY_TIMEOUT')).toBe(true);
      expect(broker.requests.pending).toBe(0);
      await b.close();
    } finally {
      await a.close();
      await broker.close();
    }
  });
});
