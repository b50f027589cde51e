/**
 * First paint of the dashboard with 10,000 recorded flows, in headless Chromium. Measured and
 * written to test-artifacts/dashboard/first-paint.json (figures in BENCHMARKS.md); the test
 * checks what is on screen, not how fast it got there.
 */

import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createDashboard, createFlowRecorder } from '@switchboard/dashboard';
import { artifactDir, chromiumLaunchOptions } from '@switchboard/testkit';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';

const FLOWS = 10_000;

describe('dashboard with 10,000 recorded flows', () => {
  it('paints the flow list', async () => {
    const recorder = createFlowRecorder({ service: 'service-a' });
    const started = Date.now() - FLOWS * 60;
    for (let i = 0; i < FLOWS; i++) {
      const at = started + i * 60;
      const traceId = i.toString(16).padStart(32, '0');
      const messageId = `msg-${i}`;
      const common = { traceId, operation: 'save', contract: 'service-b' };
      recorder.record({ ...common, kind: 'call.request', at, url: 'http://127.0.0.1:4002/ops/save' });
      recorder.record({ ...common, kind: 'call.attempt', at, attempt: 1, status: 200, durationMs: 4 });
      recorder.record({ ...common, kind: 'handler.start', at: at + 1, via: 'http' });
      recorder.record({ ...common, kind: 'handler.end', at: at + 1, via: 'http', status: 200, durationMs: 2, outcome: 'ok' });
      recorder.record({ ...common, kind: 'call.response', at, status: 200, durationMs: 4, outcome: 'ok', attempts: 1 });
      recorder.record({
        traceId,
        messageId,
        kind: 'message.publish',
        at: at + 2,
        topic: 'service-b.events',
        type: 'service-b.name.saved',
        sendKind: 'emit',
      });
      recorder.record({
        messageId,
        kind: 'message.deliver',
        at: at + 3,
        topic: 'service-b.events',
        group: 'service-c',
        attempt: 1,
        outcome: 'ack',
        durationMs: 1,
      });
      recorder.record({
        messageId,
        kind: 'message.settle',
        at: at + 4,
        topic: 'service-b.events',
        group: 'service-c',
        attempt: 1,
        outcome: 'ack',
        durationMs: 0.2,
      });
    }
    const indexStarted = performance.now();
    const dashboard = createDashboard({ recorder });
    const indexMs = performance.now() - indexStarted;
    const server = createServer(dashboard.listener);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_switchboard/`;
    const browser = await chromium.launch(chromiumLaunchOptions());
    try {
      expect(dashboard.index.flowCount).toBe(FLOWS);
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const runs: { firstContentfulPaintMs: number; flowsShownMs: number }[] = [];
      for (let run = 0; run < 3; run++) {
        await page.goto('about:blank');
        await page.goto(url);
        // In the page (a function, not a string: the page's Content-Security-Policy forbids eval).
        await page.waitForFunction(
          () =>
            (globalThis as unknown as { document: { body: { dataset: Record<string, string | undefined> } } }).document.body.dataset
              .rendered !== undefined,
        );
        // Milliseconds since navigation started: first contentful paint, and now (the flow list is on screen).
        const timing = (await page.evaluate(`({
          firstContentfulPaintMs: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1,
          flowsShownMs: performance.now(),
        })`)) as { firstContentfulPaintMs: number; flowsShownMs: number };
        runs.push(timing);
        expect(await page.locator('table[aria-label="Flows"] tbody tr').count()).toBe(200);
        expect(await page.locator('main h2').first().textContent()).toBe(`Flows (${FLOWS})`);
      }
      await page.screenshot({ path: join(artifactDir('dashboard'), 'flows-10000.png') });
      const report = { flows: FLOWS, events: recorder.stats().count, indexMs: Math.round(indexMs), runs };
      writeFileSync(join(artifactDir('dashboard'), 'first-paint.json'), `${JSON.stringify(report, null, 2)}\n`);
      console.log('dashboard first paint with 10,000 flows:', JSON.stringify(report));
    } finally {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
      await dashboard.close();
      recorder.close();
    }
  });
});
