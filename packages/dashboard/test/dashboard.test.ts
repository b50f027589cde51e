import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import { defineContract, implement, operation } from '@switchboard/core';
import { createDashboard, createFlowRecorder, type Dashboard } from '@switchboard/dashboard';
import { createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryJobStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function dashboardWithFlow(options: Parameters<typeof createDashboard>[0] = {}): Dashboard {
  const recorder = createFlowRecorder({ service: 'svc' });
  recorder.record({ kind: 'message.publish', messageId: 'msg-1', topic: 'svc.messages', type: 'svc.op.save', traceId: 'a'.repeat(32) });
  const dashboard = createDashboard({ recorder, ...options });
  closers.push(
    () => dashboard.close(),
    () => recorder.close(),
  );
  return dashboard;
}

async function checkMounted(base: string): Promise<void> {
  const page = await fetch(`${base}/_switchboard/`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toContain('text/html');
  expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
  const html = await page.text();
  expect(html).toContain('<script type="module" src="app.js">');
  expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
  expect((await fetch(`${base}/_switchboard/app.js`)).headers.get('content-type')).toContain('javascript');
  const flows = (await (await fetch(`${base}/_switchboard/api/flows?q=msg-1`)).json()) as { flows: { key: string }[] };
  expect(flows.flows.map((flow) => flow.key)).toEqual([`t:${'a'.repeat(32)}`]);
  const missing = await fetch(`${base}/_switchboard/api/nothing`);
  expect(missing.status).toBe(404);
  expect(missing.headers.get('content-type')).toBe('application/problem+json');
}

describe('dashboard mounting', () => {
  it('serves on plain node:http', async () => {
    const dashboard = dashboardWithFlow();
    const base = await listen(createServer(dashboard.listener));
    await checkMounted(base);
    const redirect = await fetch(`${base}/_switchboard`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/_switchboard/');
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
  });

  it('serves as a route of a Switchboard HTTP service', async () => {
    const dashboard = dashboardWithFlow();
    const contract = defineContract({ name: 'svc', operations: { ping: operation({ input: z.object({}), output: z.object({}) }) } });
    const service = createHttpService({ contract, handlers: implement(contract, { ping: () => ({}) }), routes: [dashboard.route] });
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => service.close());
    await checkMounted(url);
  });

  it('mounts on Express, next to other routes', async () => {
    const dashboard = dashboardWithFlow();
    const app = express();
    app.use(express.json());
    app.use(dashboard.express);
    app.get('/hello', (_req, res) => {
      res.json({ hello: true });
    });
    const base = await listen(createServer(app));
    await checkMounted(base);
    expect(await (await fetch(`${base}/hello`)).json()).toEqual({ hello: true });
    // A body Express already parsed reaches the dashboard.
    const replay = await fetch(`${base}/_switchboard/api/dead-letters/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: ['x'] }),
    });
    expect(replay.status).toBe(404); // this dashboard has no dead-letter store
  });

  it('mounts on Fastify as a plugin', async () => {
    const dashboard = dashboardWithFlow();
    const app = Fastify();
    await app.register(dashboard.fastify);
    app.get('/hello', async () => ({ hello: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await checkMounted(base);
    expect(await (await fetch(`${base}/hello`)).json()).toEqual({ hello: true });
    const bad = await fetch(`${base}/_switchboard/api/dead-letters/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nothing: true }),
    });
    expect(bad.status).toBe(404);
  });
});

/** A request as it arrives from `remoteAddress`, answered by the dashboard; resolves with status and body. */
async function requestFrom(dashboard: Dashboard, remoteAddress: string, path: string, headers: Record<string, string> = {}) {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
  const { IncomingMessage: Incoming } = await import('node:http');
  const req = new Incoming(socket) as IncomingMessage;
  req.url = path;
  req.method = 'GET';
  req.headers = headers;
  req.push(null);
  const res = new ServerResponse(req);
  let body = '';
  const write = res.write.bind(res);
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    body += String(chunk);
    return write(chunk as never, ...(rest as []));
  }) as typeof res.write;
  const end = res.end.bind(res);
  const done = new Promise<void>((resolve) => {
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (chunk !== undefined && typeof chunk !== 'function') body += String(chunk);
      resolve();
      return end(chunk as never, ...(rest as []));
    }) as typeof res.end;
  });
  await dashboard.handle(req, res);
  await done;
  socket.destroy();
  return { status: res.statusCode, body, setCookie: res.getHeader('set-cookie') };
}

describe('dashboard access', () => {
  it('answers loopback only when it has no token', async () => {
    const dashboard = dashboardWithFlow();
    expect((await requestFrom(dashboard, '127.0.0.1', '/_switchboard/api/info')).status).toBe(200);
    expect((await requestFrom(dashboard, '::1', '/_switchboard/api/info')).status).toBe(200);
    const remote = await requestFrom(dashboard, '192.0.2.7', '/_switchboard/api/info');
    expect(remote.status).toBe(403);
    expect(JSON.parse(remote.body)).toMatchObject({ code: 'SB_FORBIDDEN', status: 403 });
  });

  it('with a token, answers anyone who carries it', async () => {
    const dashboard = dashboardWithFlow({ token: 's3cret-token' });
    expect((await requestFrom(dashboard, '192.0.2.7', '/_switchboard/api/info')).status).toBe(401);
    expect((await requestFrom(dashboard, '127.0.0.1', '/_switchboard/api/info')).status).toBe(401);
    expect((await requestFrom(dashboard, '192.0.2.7', '/_switchboard/api/info', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await requestFrom(dashboard, '192.0.2.7', '/_switchboard/api/info', { authorization: 'Bearer s3cret-token' })).status).toBe(
      200,
    );
    const viaQuery = await requestFrom(dashboard, '192.0.2.7', '/_switchboard/?token=s3cret-token');
    expect(viaQuery.status).toBe(200);
    expect(String(viaQuery.setCookie)).toMatch(/^sb_dashboard=s3cret-token; HttpOnly; SameSite=Strict; Path=\/_switchboard/);
    expect((await requestFrom(dashboard, '192.0.2.7', '/_switchboard/api/info', { cookie: 'sb_dashboard=s3cret-token' })).status).toBe(200);
  });
});

describe('dashboard API', () => {
  const saver = defineContract({
    name: 'saver',
    operations: { save: operation({ input: z.object({ name: z.string() }), output: z.object({ ok: z.boolean() }) }) },
  });

  it('browses dead letters without changing them, dry-runs, replays with a limit, and the receipt turns processed', async () => {
    const broker = createMemoryBroker();
    const deadLetters = createMemoryDeadLetterStore();
    const receipts = createMemoryReceiptStore();
    let failing = true;
    const receiver = createMessaging({ broker, service: 'saver', receipts, deadLetters, retry: { maxAttempts: 1 } });
    receiver.serve(
      saver,
      implement(saver, {
        save: () => {
          if (failing) throw new Error('down for now');
          return { ok: true };
        },
      }),
    );
    await receiver.start();
    const sender = createMessaging({ broker, service: 'sender', deadLetters: false });
    const recorder = createFlowRecorder({ service: 'saver' });
    const dashboard = createDashboard({ recorder, deadLetters: receiver.deadLetters, receipts: receiver.receipts });
    closers.push(async () => {
      await dashboard.close();
      recorder.close();
      await sender.close();
      await receiver.close();
      await broker.close();
    });
    const base = await listen(createServer(dashboard.listener));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await sender.invoke(saver, 'save', { name: `n${i}` })).messageId);
    type Listing = { items: { id: string; messageId: string; status: string; reason: string; service: string }[] };
    const list = async (status = 'pending') =>
      (await (await fetch(`${base}/_switchboard/api/dead-letters?status=${status}`)).json()) as Listing;
    await expect.poll(async () => (await list()).items.length, { timeout: 10_000 }).toBe(3);
    const first = (await list()).items.find((item) => item.messageId === ids[0]);
    expect(first).toMatchObject({ reason: 'max-attempts', service: 'saver', status: 'pending' });
    const detail = (await (await fetch(`${base}/_switchboard/api/dead-letters/${first?.id}`)).json()) as {
      messageId: string;
      bodyShown: boolean;
      attempts: { error: { detail: string } }[];
    };
    expect(detail).toMatchObject({ messageId: ids[0], bodyShown: false });
    expect(detail.attempts[0]?.error.detail).toContain('down for now');

    const post = (body: unknown) =>
      fetch(`${base}/_switchboard/api/dead-letters/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const dry = await (await post({ all: true, dryRun: true, limit: 2 })).json();
    expect(dry).toMatchObject({ dryRun: true, wouldReplay: 2 });
    expect((await list()).items).toHaveLength(3); // a dry run changes nothing

    failing = false;
    const one = await (await post({ ids: [first?.id] })).json();
    expect(one).toMatchObject({ dryRun: false, replayed: 1, messageIds: [ids[0]] });
    type Receipt = { receipts: { receipt: { groups: { group: string; state: string }[] } }[] };
    const receiptOf = async (id: string) =>
      ((await (await fetch(`${base}/_switchboard/api/receipts/${id}`)).json()) as Receipt).receipts[0]?.receipt.groups[0]?.state;
    await expect.poll(() => receiptOf(ids[0] as string), { timeout: 10_000 }).toBe('processed');

    const rest = await (await post({ all: true, limit: 1 })).json();
    expect(rest).toMatchObject({ replayed: 1 });
    expect((await list()).items).toHaveLength(1);
    expect((await list('replayed')).items).toHaveLength(2);

    const bad = await post({ ids: [42] });
    expect(bad.status).toBe(400);
    expect((await post('[')).status).toBe(400);
    // Not from another site: a form post (no JSON) or another origin is refused, and nothing is replayed.
    const form = await fetch(`${base}/_switchboard/api/dead-letters/replay`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{"all":true}',
    });
    expect(form.status).toBe(415);
    const foreign = await fetch(`${base}/_switchboard/api/dead-letters/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ all: true }),
    });
    expect(foreign.status).toBe(403);
    expect((await list()).items).toHaveLength(1);
  });

  it('pulls its peers and joins their events into the same flows', async () => {
    const here = createFlowRecorder({ service: 'here' });
    const there = createFlowRecorder({ service: 'there' });
    const peer = createDashboard({ recorder: there });
    const peerBase = await listen(createServer(peer.listener));
    const dashboard = createDashboard({ recorder: here, peers: [{ url: `${peerBase}/_switchboard` }], pollMs: 50 });
    closers.push(async () => {
      await dashboard.close();
      await peer.close();
      here.close();
      there.close();
    });
    here.record({ kind: 'message.publish', messageId: 'shared-id', topic: 'there.messages', traceId: 'b'.repeat(32) });
    there.record({ kind: 'message.deliver', messageId: 'shared-id', topic: 'there.messages', group: 'there', attempt: 1, outcome: 'ack' });
    await dashboard.pull();
    const flow = dashboard.index.flow('m:shared-id');
    expect(flow?.summary.services).toEqual(['here', 'there']);
    expect(flow?.summary).toMatchObject({ status: 'ok', key: `t:${'b'.repeat(32)}` });
    expect(dashboard.peers()).toEqual([expect.objectContaining({ service: 'there', ok: true })]);
    // Pulling again adds nothing twice.
    await dashboard.pull();
    expect(dashboard.index.flow('m:shared-id')?.events).toHaveLength(2);
  });

  it('streams events over SSE, resuming after Last-Event-ID', async () => {
    const recorder = createFlowRecorder({ service: 'live' });
    const dashboard = createDashboard({ recorder });
    closers.push(
      () => dashboard.close(),
      () => recorder.close(),
    );
    const base = await listen(createServer(dashboard.listener));
    recorder.record({ kind: 'job.state', jobId: 'j-1', status: 'queued' });
    recorder.record({ kind: 'job.state', jobId: 'j-1', status: 'running' });
    const controller = new AbortController();
    const response = await fetch(`${base}/_switchboard/api/stream`, { headers: { 'last-event-id': '1' }, signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    recorder.record({ kind: 'job.state', jobId: 'j-1', status: 'succeeded' });
    while (!text.includes('succeeded')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).not.toContain('"queued"');
    expect(text).toContain('id: 2\nevent: flow-event\ndata: {');
    expect(text).toContain('"running"');
  });
});

describe('jobs: cancel from the dashboard', () => {
  it('cancels a running job as DELETE on its monitor does; a finished one is a 409 problem; cross-site and peer rules as replay', async () => {
    const contract = defineContract({
      name: 'worker',
      operations: { slow: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }) },
    });
    const store = createMemoryJobStore();
    const jobs = enableJobs(contract, { store, worker: { pollIntervalMs: 10, heartbeatMs: 50 } });
    const handlers = implement(contract, {
      // Runs until its job is canceled.
      slow: (_input, ctx) =>
        new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
    });
    const owner = dashboardWithFlow({ service: 'worker', jobs });
    const service = createHttpService({ contract, handlers, routes: [...jobs.routes, owner.route], interceptors: jobs.interceptors });
    jobs.start(service);
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(
      () => service.close(),
      () => jobs.close({ timeoutMs: 1000 }),
    );
    // A second service's dashboard that knows the first as a peer: its Cancel goes through it.
    const front = dashboardWithFlow({ service: 'front', peers: [{ url: `${url}/_switchboard` }] });
    const frontBase = await listen(createServer(front.listener));
    await front.pull();
    expect(front.peers()[0]).toMatchObject({ ok: true, service: 'worker', capabilities: { jobs: true } });

    const submit = await fetch(`${url}/ops/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: '{}',
    });
    expect(submit.status).toBe(202);
    const { id } = (await submit.json()) as { id: string };
    for (let lookup = await store.get(id); lookup.state !== 'found' || lookup.job.status !== 'running'; lookup = await store.get(id)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const cancel = (base: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/_switchboard/api/jobs/cancel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    // Not from another site: a form post or another origin is refused, and the job keeps running.
    const form = await fetch(`${url}/_switchboard/api/jobs/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `id=${id}`,
    });
    expect(form.status).toBe(415);
    const foreign = await cancel(url, { id }, { origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('content-type')).toBe('application/problem+json');
    const still = await store.get(id);
    expect(still.state === 'found' && still.job.status).toBe('running');

    const canceled = await cancel(frontBase, { service: 'worker', id });
    expect(canceled.status).toBe(200);
    expect(await canceled.json()).toMatchObject({ service: 'worker', id, outcome: 'cancel-requested' });
    for (let lookup = await store.get(id); lookup.state !== 'found' || lookup.job.status !== 'canceled'; lookup = await store.get(id)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const monitor = await fetch(new URL(submit.headers.get('location') ?? '', url));
    expect(((await monitor.json()) as { status: string }).status).toBe('canceled');

    const again = await cancel(url, { id });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toBe('application/problem+json');
    expect(await again.json()).toMatchObject({ code: 'SB_JOB_FINISHED' });
    const unknown = await cancel(url, { id: 'no-such-job' });
    expect(unknown.status).toBe(404);
    expect((await cancel(frontBase, { id })).status).toBe(404); // the front service has no job store
    expect((await cancel(url, {})).status).toBe(400);
  });
});

describe('jobs in progress: progress, lease owner, heartbeat age, stuck', () => {
  it("reads each job in progress from its store: one heartbeating, one whose worker's heartbeat stopped, also through a peer", async () => {
    const contract = defineContract({
      name: 'lanes',
      operations: {
        steady: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }),
        stalled: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }),
      },
    });
    const store = createMemoryJobStore();
    // One slot: while `steady` runs, this worker claims nothing else.
    const jobs = enableJobs(contract, { store, worker: { concurrency: 1, pollIntervalMs: 10, leaseMs: 1000, heartbeatMs: 50 } });
    const handlers = implement(contract, {
      // Reports progress, then runs until its job is canceled or the worker closes.
      steady: (_input, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.progress({ percent: 30, message: 'step 3 of 10' });
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        }),
      stalled: async () => ({ done: true }),
    });
    const recorder = createFlowRecorder({ service: 'lanes' });
    const dashboard = createDashboard({ recorder, jobs });
    const service = createHttpService({ contract, handlers, routes: [...jobs.routes, dashboard.route], interceptors: jobs.interceptors });
    jobs.start(service);
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(
      () => recorder.close(),
      () => dashboard.close(),
      () => service.close(),
      () => jobs.close({ timeoutMs: 1000 }),
    );
    const front = dashboardWithFlow({ service: 'front', peers: [{ url: `${url}/_switchboard` }] });
    const frontBase = await listen(createServer(front.listener));
    const client = createJobsClient(contract, { baseUrl: url });

    const steady = await client.submit('steady', {});
    for (let lookup = await store.get(steady.jobId); lookup.state !== 'found' || lookup.job.progress === undefined; ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      lookup = await store.get(steady.jobId);
    }
    // The slot is taken: `stalled` stays queued until a worker that then stops heartbeating claims it.
    const stalled = await client.submit('stalled', {});
    const claims = await store.claim({ workerId: 'worker-gone', leaseMs: 1000, operations: ['stalled'] });
    expect(claims.map((claim) => claim.job.id)).toEqual([stalled.jobId]);

    type Job = {
      jobId: string;
      status: string;
      progress?: unknown;
      leaseOwner?: string;
      leaseExpiresAt?: number;
      heartbeatAgeMs?: number;
      stuck?: boolean;
      attempts?: number;
      heldBy?: string;
    };
    const read = async (base: string) => {
      await front.pull();
      const page = (await (await fetch(`${base}/_switchboard/api/jobs?active=1`)).json()) as { jobs: Job[] };
      return new Map(page.jobs.map((job) => [job.jobId, job]));
    };
    // Until the lease of `stalled` runs out with no heartbeat to renew it.
    let seen = await read(url);
    while (seen.get(stalled.jobId)?.stuck !== true) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = await read(url);
    }
    const gone = seen.get(stalled.jobId) as Job;
    expect(gone).toMatchObject({ status: 'running', leaseOwner: 'worker-gone', stuck: true, attempts: 1, heldBy: 'lanes' });
    expect(gone.leaseExpiresAt).toBeLessThanOrEqual(Date.now());
    expect(gone.heartbeatAgeMs).toBeGreaterThanOrEqual(1000); // older than its lease
    // The steady job's lease is renewed every heartbeat, so it is not stuck.
    const lookup = await store.get(steady.jobId);
    const stored = lookup.state === 'found' ? lookup.job : undefined;
    const live = seen.get(steady.jobId) as Job;
    expect(live).toMatchObject({
      status: 'running',
      progress: { percent: 30, message: 'step 3 of 10' },
      leaseOwner: jobs.runner?.workerId,
      stuck: false,
    });
    expect(live.leaseOwner).toBe(stored?.leaseOwner);
    expect(live.heartbeatAgeMs).toBeLessThan(1000);
    expect(live.leaseExpiresAt).toBeGreaterThan(Date.now() - 1000);

    // The front dashboard has no job store: it asks the peer whose store holds them.
    let fromFront = await read(frontBase);
    while (fromFront.get(stalled.jobId)?.stuck !== true) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      fromFront = await read(frontBase);
    }
    expect(fromFront.get(stalled.jobId)).toMatchObject({ leaseOwner: 'worker-gone', heldBy: 'lanes' });
    expect(fromFront.get(steady.jobId)).toMatchObject({
      progress: { percent: 30, message: 'step 3 of 10' },
      stuck: false,
      heldBy: 'lanes',
    });
    const state = (await (await fetch(`${url}/_switchboard/api/jobs/state?id=${stalled.jobId}&id=no-such-job`)).json()) as { jobs: Job[] };
    expect(state.jobs.map((job) => job.jobId)).toEqual([stalled.jobId]);
  });
});

describe('queue depth', () => {
  it("samples the broker's pending for the configured queues and those seen in deliveries, and joins the peers'", async () => {
    const broker = createMemoryBroker();
    closers.push(() => broker.close());
    await broker.declareGroup('orders', 'billing');
    await broker.declareGroup('orders', 'shipping');
    await broker.publishBatch(
      Array.from({ length: 3 }, (_, i) => ({ id: `o${i}`, topic: 'orders', headers: {}, body: new Uint8Array([i]) })),
    );
    const recorder = createFlowRecorder({ service: 'orders-svc' });
    const owner = createDashboard({ recorder, broker, queues: [{ topic: 'orders', group: 'billing' }], queuePollMs: 60_000 });
    closers.push(
      () => owner.close(),
      () => recorder.close(),
    );
    // A delivery to another group makes it known as well.
    recorder.record({ kind: 'message.deliver', messageId: 'o0', topic: 'orders', group: 'shipping' });
    const ownerBase = await listen(createServer(owner.listener));
    const depths = async (base: string) => {
      const page = (await (await fetch(`${base}/_switchboard/api/queues?fresh=1`)).json()) as {
        queues: { service: string; topic: string; group: string; samples: [number, number][] }[];
      };
      return page.queues.map((q) => ({ service: q.service, queue: `${q.topic}/${q.group}`, depth: q.samples.at(-1)?.[1] }));
    };
    expect(await depths(ownerBase)).toEqual([
      { service: 'orders-svc', queue: 'orders/billing', depth: 3 },
      { service: 'orders-svc', queue: 'orders/shipping', depth: 3 },
    ]);

    // Two of billing's messages acknowledged: its depth falls, shipping's stays.
    let acked = 0;
    const subscription = await broker.subscribe({ topic: 'orders', group: 'billing', maxInFlight: 1 }, async (delivery) => {
      if (acked < 2) {
        acked++;
        await delivery.ack();
      } else await delivery.nack();
    });
    while (acked < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await subscription.close();

    const front = dashboardWithFlow({ service: 'front', peers: [{ url: `${ownerBase}/_switchboard` }] });
    const frontBase = await listen(createServer(front.listener));
    await front.pull();
    expect(front.peers()[0]).toMatchObject({ ok: true, capabilities: { queues: true } });
    expect(await depths(frontBase)).toEqual([
      { service: 'orders-svc', queue: 'orders/billing', depth: 1 },
      { service: 'orders-svc', queue: 'orders/shipping', depth: 3 },
    ]);
  });
});
