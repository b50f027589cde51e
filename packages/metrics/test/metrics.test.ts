import { request } from 'node:http';
import { channels, defineContract, event, operation } from '@switchboard/core';
import { createClient, createHttpService } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createMetrics, escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from '@switchboard/metrics';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const shop = defineContract({
  name: 'shop',
  operations: {
    buy: operation({ input: z.object({ item: z.string().min(1) }), output: z.object({ ok: z.boolean() }) }),
  },
  events: {
    bought: event({ data: z.object({ item: z.string() }) }),
  },
});

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function get(url: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A histogram's series, each sample line read by the parser on its own (as an untyped sample: the
 * parser folds labelled histograms into one series, losing their labels).
 */
function histogram(
  text: string,
  name: string,
): { labels: Record<string, string>; buckets: Record<string, string>; count: string; sum: string }[] {
  const series = new Map<string, { labels: Record<string, string>; buckets: Record<string, string>; count: string; sum: string }>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_`)) continue;
    const [sample] = parsePrometheusTextFormat(`${line}\n`);
    const metric = sample!.metrics[0]!;
    const { le, ...labels } = { ...metric.labels } as Record<string, string>;
    const key = JSON.stringify(labels);
    const entry = series.get(key) ?? { labels, buckets: {}, count: '', sum: '' };
    series.set(key, entry);
    if (sample!.name === `${name}_bucket`) entry.buckets[le!] = metric.value!;
    else if (sample!.name === `${name}_count`) entry.count = metric.value!;
    else if (sample!.name === `${name}_sum`) entry.sum = metric.value!;
  }
  return [...series.values()];
}

function family(parsed: ParsedFamily[], name: string): ParsedFamily {
  const found = parsed.find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`no family ${name} in ${parsed.map((entry) => entry.name).join(', ')}`);
  return found;
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('Prometheus metrics from the diagnostics channels', () => {
  it('GET /metrics on a Switchboard service: HTTP server and client durations in the text format 0.0.4, read by a Prometheus parser', async () => {
    const metrics = createMetrics();
    closers.push(() => metrics.close());
    const service = createHttpService({ contract: shop, handlers: { buy: () => ({ ok: true }) }, routes: [metrics.route()] });
    const { url } = await service.listen();
    closers.push(() => service.close({ timeoutMs: 100 }));
    // Input left to the server to check: the 400 is the server's answer.
    const client = createClient(shop, { baseUrl: url, retry: false, validateInput: false });
    closers.push(() => client.close());
    for (let i = 0; i < 3; i++) await client.call('buy', { item: 'tea' });
    await expect(client.call('buy', { item: '' })).rejects.toMatchObject({ code: 'SB_VALIDATION' });

    const scraped = await get(`${url}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.type).toBe(PROMETHEUS_CONTENT_TYPE);
    const parsed = parsePrometheusTextFormat(scraped.body);
    expect(family(parsed, 'http_server_request_duration_seconds').type).toBe('HISTOGRAM');
    const server = histogram(scraped.body, 'http_server_request_duration_seconds');
    const ok = server.find((m) => m.labels.http_response_status_code === '200');
    expect(ok?.labels).toEqual({ http_request_method: 'POST', http_route: '/ops/buy', http_response_status_code: '200' });
    expect(ok?.count).toBe('3');
    expect(ok?.buckets?.['+Inf']).toBe('3');
    // Buckets are cumulative: each at least the one below it.
    const bounds = Object.keys(ok?.buckets ?? {}).filter((bound) => bound !== '+Inf');
    const counts = bounds
      .map(Number)
      .sort((a, b) => a - b)
      .map((bound) => Number(ok?.buckets?.[String(bound)]));
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
    // The 400 never reached the handler: no server sample; the client saw it.
    const client400 = histogram(scraped.body, 'http_client_request_duration_seconds').find(
      (m) => m.labels.http_response_status_code === '400',
    );
    expect(client400?.labels).toMatchObject({ switchboard_operation: 'buy', error_type: '400' });
    expect(client400?.count).toBe('1');
    const handler = histogram(scraped.body, 'switchboard_handler_duration_seconds')[0];
    expect(handler?.labels).toEqual({ switchboard_service: 'shop', switchboard_operation: 'buy', switchboard_via: 'http' });
    expect(handler?.count).toBe('3');

    const head = await get(`${url}/metrics`, 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
  });

  it('messaging: sent and consumed counts, process and settle durations, dead letters, queue depth where the broker can tell', async () => {
    const metrics = createMetrics();
    closers.push(() => metrics.close());
    const broker = createMemoryBroker();
    const deadLetters = createMemoryDeadLetterStore();
    const a = createMessaging({ service: 'shop', broker, deadLetters });
    const b = createMessaging({ service: 'ledger', broker, deadLetters, retry: { maxAttempts: 1 } });
    closers.push(async () => {
      await a.close();
      await b.close();
      await broker.close();
    });
    let handled = 0;
    b.on(shop, 'bought', (data) => {
      handled += 1;
      if (data.item === 'poison') throw new Error('cannot book it');
    });
    await b.start();
    const topic = (await import('@switchboard/messaging')).eventsTopic(shop);
    metrics.watchQueue(broker, topic, 'ledger');
    for (const item of ['tea', 'cake', 'poison']) await a.emit(shop, 'bought', { item });
    await until(() => handled === 3, 'three handled');
    await until(async () => (await metrics.text()).includes('switchboard_dead_letters_total'), 'the dead letter counted');

    const text = await metrics.text();
    const parsed = parsePrometheusTextFormat(text);
    const sent = family(parsed, 'messaging_client_sent_messages_total');
    expect(sent.type).toBe('COUNTER');
    expect(sent.metrics).toEqual([{ value: '3', labels: { messaging_system: 'memory', messaging_destination_name: topic } }]);
    const consumed = family(parsed, 'messaging_client_consumed_messages_total');
    expect(consumed.metrics).toEqual([
      { value: '3', labels: { messaging_system: 'memory', messaging_destination_name: topic, messaging_consumer_group_name: 'ledger' } },
    ]);
    const process = histogram(text, 'messaging_process_duration_seconds');
    const total = process.reduce((sum, m) => sum + Number(m.count), 0);
    expect(total).toBe(3);
    expect(process.some((m) => m.labels.error_type !== undefined)).toBe(true);
    // The failed delivery is in its own series: the hot-path cache keeps label sets apart.
    expect(process.filter((m) => m.labels.error_type === undefined).map((m) => Number(m.count))).toEqual([2]);
    expect(process.filter((m) => m.labels.error_type !== undefined).map((m) => Number(m.count))).toEqual([1]);
    expect(family(parsed, 'switchboard_dead_letters_total').metrics).toEqual([
      {
        value: '1',
        labels: {
          messaging_system: 'memory',
          messaging_destination_name: topic,
          messaging_consumer_group_name: 'ledger',
          switchboard_dead_letter_reason: 'max-attempts',
        },
      },
    ]);
    const ops = histogram(text, 'messaging_client_operation_duration_seconds').map((m) => m.labels.messaging_operation_name);
    expect(new Set(ops)).toEqual(new Set(['send', 'ack']));
    expect(family(parsed, 'switchboard_queue_depth').metrics).toEqual([
      { value: '0', labels: { messaging_system: 'memory', messaging_destination_name: topic, messaging_consumer_group_name: 'ledger' } },
    ]);
  });

  it('queue depth counts what a group has not taken yet', async () => {
    const metrics = createMetrics();
    closers.push(() => metrics.close());
    const broker = createMemoryBroker();
    closers.push(() => broker.close());
    await broker.declareGroup('orders', 'billing');
    for (let i = 0; i < 4; i++) await broker.publish({ id: `m${i}`, topic: 'orders', headers: {}, body: new Uint8Array([i]) });
    metrics.watchQueue(broker, 'orders', 'billing');
    const parsed = parsePrometheusTextFormat(await metrics.text());
    expect(family(parsed, 'switchboard_queue_depth').metrics[0]?.value).toBe('4');
    expect(() => metrics.watchQueue({ name: 'blind' }, 'orders', 'billing')).toThrow(/cannot tell its queue depth/);
  });

  it('jobs, change-source lag and label escaping follow the format', async () => {
    const metrics = createMetrics();
    closers.push(() => metrics.close());
    channels.jobComplete.publish({
      service: 'shop',
      operation: 'report',
      jobId: 'j1',
      status: 'succeeded',
      traceparent: undefined,
      durationMs: 1500,
      attempts: 1,
    });
    channels.changeProgress.publish({
      source: 'orders "db"\nmain',
      slot: 'slot\\1',
      lagBytes: 4096,
      confirmedLsn: '0/1',
      currentLsn: '0/2',
    });
    metrics.watchChangeSource({ lag: async () => ({ bytes: 512 }) }, { source: 'inventory', slot: 'inv_slot' });
    const text = await metrics.text();
    const parsed = parsePrometheusTextFormat(text);
    const jobs = histogram(text, 'switchboard_job_duration_seconds')[0];
    expect(jobs?.sum).toBe('1.5');
    expect(jobs?.buckets?.['1']).toBe('0');
    expect(jobs?.buckets?.['2.5']).toBe('1');
    expect(family(parsed, 'switchboard_jobs_completed_total').metrics[0]?.value).toBe('1');
    const lag = family(parsed, 'switchboard_changes_slot_lag_bytes');
    expect(lag.type).toBe('GAUGE');
    expect(lag.metrics).toContainEqual({
      value: '4096',
      labels: { switchboard_change_source: 'orders "db"\nmain', switchboard_slot: 'slot\\1' },
    });
    expect(lag.metrics).toContainEqual({ value: '512', labels: { switchboard_change_source: 'inventory', switchboard_slot: 'inv_slot' } });
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    // Every line is a comment or a sample; the text ends with a line feed.
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.trimEnd().split('\n'))
      expect(line).toMatch(/^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
  });

  it('answers other methods with a problem, and records nothing once closed', async () => {
    const metrics = createMetrics();
    const service = createHttpService({ contract: shop, handlers: { buy: () => ({ ok: true }) } });
    const { url } = await service.listen();
    closers.push(() => service.close({ timeoutMs: 100 }));
    const { createServer } = await import('node:http');
    const server = createServer(metrics.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address() as { port: number };
    const posted = await get(`http://127.0.0.1:${address.port}/metrics`, 'POST');
    expect(posted.status).toBe(405);
    expect(JSON.parse(posted.body)).toMatchObject({ code: 'SB_METHOD_NOT_ALLOWED', status: 405 });
    metrics.close();
    const client = createClient(shop, { baseUrl: url, retry: false });
    closers.push(() => client.close());
    await client.call('buy', { item: 'tea' });
    expect(await metrics.text()).toBe('');
  });
});
