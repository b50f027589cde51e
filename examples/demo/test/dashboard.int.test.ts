/**
 * The dashboard as a user sees it: `npm start` (the built demo, A, B and C as separate processes),
 * then headless Chromium on the URL it prints. Every view renders the demo's real flows; a dead
 * letter is replayed from the page and its receipt turns processed; a running job is canceled from
 * the jobs view and ends canceled; a MessageId typed into the
 * search box finds its flow; everything is reached with the keyboard; the page logs no error.
 * A screenshot per view goes to test-artifacts/dashboard/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { artifactDir, chromiumLaunchOptions } from '@switchboard/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const shots = artifactDir('dashboard');

let demo: ChildProcess;
let output = '';
let dataDir: string;
let dashboardUrl: string;
let serviceAUrl: string;
let serviceBUrl: string;
let flakyMessageId: string;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'switchboard-dashboard-'));
  demo = spawn(process.execPath, [main, '--port-a', '0', '--port-b', '0', '--port-c', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  demo.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const deadline = Date.now() + 90_000;
  while (!output.includes('Ctrl-C stops them.')) {
    if (demo.exitCode !== null) throw new Error(`the demo exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`the demo did not get ready:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  dashboardUrl = (/Dashboard: (\S+)/.exec(output) as RegExpExecArray)[1] as string;
  serviceAUrl = (/ServiceA at (\S+),/.exec(output) as RegExpExecArray)[1] as string;
  serviceBUrl = (/ServiceB at (\S+),/.exec(output) as RegExpExecArray)[1] as string;
  flakyMessageId = (/6\. Dead letter[^\n]*\n\s+MessageId (\S+);/.exec(output) as RegExpExecArray)[1] as string;
  browser = await chromium.launch(chromiumLaunchOptions());
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('requestfailed', (request) => {
    // Requests cut short because the test moved to another page are not failures.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED')
      problems.push(`request failed: ${request.url()}: ${request.failure()?.errorText}`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = once(demo, 'exit');
    demo.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Opens a view afresh and waits until the page says it rendered it. */
async function view(hash: string): Promise<void> {
  await page.goto('about:blank');
  await page.goto(`${dashboardUrl}${hash}`);
  // Runs in the page (serialised: a function, since the page's Content-Security-Policy forbids eval of strings).
  await page.waitForFunction(
    (wanted) =>
      (
        globalThis as unknown as { document: { body: { dataset: Record<string, string | undefined> } } }
      ).document.body.dataset.rendered?.startsWith(wanted) ?? false,
    hash,
  );
}

describe('the dashboard of the demo, in Chromium', () => {
  it('prints its URL on npm start, on loopback', () => {
    expect(dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/_switchboard\/$/);
    expect(flakyMessageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('lists the demo’s flows across A, B and C and draws each pattern on swimlanes', async () => {
    await view('#/flows');
    const rows = page.locator('table[aria-label="Flows"] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(7);
    await expect.poll(() => page.locator('#services .chip.up').count(), { timeout: 10_000 }).toBe(3);
    const texts = await rows.allInnerTexts();
    expect(texts.some((text) => text.includes('service-a · service-b · service-c'))).toBe(true);
    for (const pattern of ['call', 'job', 'message', 'event']) expect(texts.some((text) => text.includes(pattern))).toBe(true);
    await page.screenshot({ path: join(shots, 'flows.png') });

    // The job flow: 202 → polls → result, across A's and B's lanes.
    await rows.filter({ hasText: 'analyze' }).first().click();
    const timeline = page.locator('.timeline svg');
    await timeline.waitFor();
    expect(page.url()).toContain('flow=t%3A');
    const labels = await timeline.locator('text.lane-label').allTextContents();
    expect(labels).toEqual(['service-a', 'service-b']);
    await expect.poll(async () => (await timeline.textContent()) ?? '').toMatch(/\d+ polls → succeeded/);
    expect(await timeline.textContent()).toContain('202 analyze');
    await page.screenshot({ path: join(shots, 'flow-job.png'), fullPage: true });

    // The event: fan-out from A to B and C.
    await rows.filter({ hasText: 'name.processed' }).first().click();
    await expect
      .poll(async () => (await page.locator('.timeline svg text.lane-label').allTextContents()).sort())
      .toEqual(['service-a', 'service-b', 'service-c']);
    expect(await page.locator('.timeline svg').textContent()).toContain('emit service-a.name.processed');
    expect(await page.locator('.timeline svg path.arrow').count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(shots, 'flow-event.png'), fullPage: true });

    // The picture by claim check: B's fetch of the attachment, its hash checked.
    await rows.filter({ hasText: 'picture.uploaded' }).first().click();
    await expect
      .poll(async () => (await page.locator('.timeline svg').textContent()) ?? '', { timeout: 10_000 })
      .toContain('⇩ fetched, sha-256 ok');
    await page.screenshot({ path: join(shots, 'flow-claim-check.png'), fullPage: true });
  });

  it('replays a flow event by event: the current event marked on the timeline and in the list, its position in the URL', async () => {
    await view('#/flows');
    const rows = page.locator('table[aria-label="Flows"] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(7);
    await rows.filter({ hasText: 'analyze' }).first().click();
    const replay = page.locator('.dvr');
    await replay.waitFor();
    const events = page.locator('table[aria-label="Events of the flow"] tbody tr');
    const total = await events.count();
    expect(total).toBeGreaterThanOrEqual(4);
    const current = page.locator('table[aria-label="Events of the flow"] tbody tr.current');
    const cursor = page.locator('.timeline svg g.dvr-cursor');
    expect(await current.count()).toBe(0);
    expect(await cursor.getAttribute('visibility')).toBe('hidden');

    // `.` steps to the next event: the first, then the second.
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('.');
    await expect.poll(() => replay.getAttribute('data-at')).toBe('1');
    expect(await current.getAttribute('data-n')).toBe('1');
    expect(await cursor.getAttribute('visibility')).toBe('visible');
    const firstText = await current.textContent();
    const firstMark = await page.locator('.timeline svg').getAttribute('data-current');
    await page.keyboard.press('.');
    await expect.poll(() => replay.getAttribute('data-at')).toBe('2');
    expect(await current.count()).toBe(1);
    expect(await current.getAttribute('data-n')).toBe('2');
    expect(await current.textContent()).not.toBe(firstText);
    expect(await page.locator('.timeline svg').getAttribute('data-current')).not.toBe(firstMark);
    expect(page.url()).toMatch(/[?&]at=2(&|$)/);
    expect(await page.locator('.dvr-label').textContent()).toContain(`2/${total}`);

    // The buttons are reachable with Tab and pressed with Enter: Previous goes back to the first.
    await page.getByRole('button', { name: 'Previous event' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => replay.getAttribute('data-at')).toBe('1');
    expect(page.url()).toMatch(/[?&]at=1(&|$)/);
    await page.keyboard.press('Tab'); // Play
    await page.keyboard.press('Tab'); // Next
    expect(await page.evaluate("document.activeElement?.getAttribute('aria-label')")).toBe('Next event');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await expect.poll(() => replay.getAttribute('data-at')).toBe('3');

    // A reload shows the same flow at the same event.
    await page.reload();
    await page.locator('.dvr').waitFor();
    await expect.poll(() => page.locator('.dvr').getAttribute('data-at')).toBe('3');
    expect(await page.locator('table[aria-label="Events of the flow"] tbody tr.current').getAttribute('data-n')).toBe('3');

    // Play at 16× the recorded time runs to the last event and stops there.
    await page.getByRole('combobox', { name: 'Replay speed' }).selectOption('16');
    await page.locator('.dvr [data-step="play"]').click();
    await expect.poll(() => page.locator('.dvr').getAttribute('data-at'), { timeout: 20_000 }).toBe(String(total));
    await expect.poll(() => page.locator('.dvr [data-step="play"]').getAttribute('aria-pressed')).toBe('false');
    expect(page.url()).toMatch(new RegExp(`[?&]at=${total}(&|$)`));
    await page.screenshot({ path: join(shots, 'flow-replay.png'), fullPage: true });
  });

  it('finds a flow by MessageId from the search box, with the keyboard only', async () => {
    await view('#/flows');
    await page.locator('table[aria-label="Flows"] tbody tr').first().waitFor();
    await page.keyboard.press('/');
    expect(await page.evaluate('document.activeElement?.id')).toBe('q');
    await page.keyboard.type(flakyMessageId);
    await page.keyboard.press('Enter');
    await page.waitForURL(/flow=/);
    expect(page.url()).toContain(`q=${flakyMessageId}`);
    const detail = page.locator('section[aria-label="Flow timeline"]');
    await expect.poll(async () => (await detail.textContent()) ?? '', { timeout: 10_000 }).toContain(flakyMessageId);
    // Three deliveries to B, the last one dead-lettered, drawn on B's lane.
    const svg = (await detail.locator('.timeline svg').textContent()) ?? '';
    expect(svg).toContain('#1 retry');
    expect(svg).toContain('#3 dead-letter');
    expect(svg).toContain('dead letter: max-attempts');
    await page.screenshot({ path: join(shots, 'search.png'), fullPage: true });

    // Arrow keys walk the list, Enter opens the row, and the URL keeps the selection.
    await view('#/flows');
    const first = page.locator('table[aria-label="Flows"] tbody tr').first();
    await first.focus();
    await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate("document.activeElement?.getAttribute('data-key')");
    const second = await page.locator('table[aria-label="Flows"] tbody tr').nth(1).getAttribute('data-key');
    expect(focused).toBe(second);
    await page.keyboard.press('Enter');
    await page.waitForURL(/flow=/);
    expect(decodeURIComponent(page.url())).toContain(`flow=${second}`);
    await page.reload();
    await expect.poll(() => page.locator('tbody tr[aria-selected="true"]').getAttribute('data-key')).toBe(second);
  });

  it('replays a dead letter from the dead-letter view (dry run first); its receipt turns processed', async () => {
    await view(`#/receipts?id=${flakyMessageId}`);
    await expect
      .poll(() => page.locator('table[aria-label="Receipts"] tr[data-group="service-b"]').textContent(), { timeout: 10_000 })
      .toContain('dead-lettered');

    await view('#/dead-letters');
    const row = page.locator(`table[aria-label="Dead letters"] tr[data-message-id="${flakyMessageId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('max-attempts');
    // Browsing does not change it: opening it shows every attempt, newest first.
    await row.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/id=/);
    const detail = page.locator('section[aria-label="Dead letter"]');
    await expect.poll(() => detail.textContent()).toContain('Attempts, newest first');
    expect(await detail.locator('tbody tr').first().textContent()).toContain('#3');
    expect(await detail.textContent()).toContain('the names table is locked');
    await page.screenshot({ path: join(shots, 'dead-letters.png'), fullPage: true });

    await page.locator('#dry-run').check();
    await row.locator('button', { hasText: 'Replay' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toContain('Dry run: 1 dead letter(s) would be replayed.');
    expect(await page.locator('#replay-result').textContent()).toContain('"wouldReplay": 1');
    await page.locator('#dry-run').uncheck();
    await row.locator('button', { hasText: 'Replay' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toContain('Replayed 1 dead letter(s).');

    await view(`#/receipts?id=${flakyMessageId}`);
    const state = page.locator('table[aria-label="Receipts"] tr[data-group="service-b"]');
    await expect.poll(() => state.textContent(), { timeout: 20_000 }).toContain('processed');
    await page.screenshot({ path: join(shots, 'receipts.png'), fullPage: true });
    // And the flow shows the replay's delivery, acknowledged, after the dead letter.
    await view(`#/flows?q=${flakyMessageId}`);
    await expect
      .poll(async () => (await page.locator('.timeline svg').textContent()) ?? '', { timeout: 10_000 })
      .toMatch(/dead letter: max-attempts.*replay #1 ack/);
  });

  it('tails live events, and holds them while paused', async () => {
    await view('#/tail');
    const rows = page.locator('table[aria-label="Live events"] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBeGreaterThan(10);
    await page.getByRole('button', { name: 'Pause' }).click();
    const before = await rows.count();
    const call = await fetch(`${serviceAUrl}/ops/process`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Grace Hopper', pattern: 'sync-http' }),
    });
    expect(call.status).toBe(200);
    await expect.poll(() => page.locator('.paused').textContent(), { timeout: 10_000 }).toMatch(/paused, [1-9]\d* new event\(s\) held/);
    expect(await rows.count()).toBe(before);
    await page.screenshot({ path: join(shots, 'tail.png') });
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => rows.count()).toBeGreaterThan(before);
    expect((await rows.allTextContents()).some((text) => text.includes('service-a') && text.includes('process 200'))).toBe(true);
  });

  it('shows jobs and live charts of rate and latency', async () => {
    await view('#/jobs');
    const finished = page.locator('table[aria-label="Jobs finished"] tbody tr');
    await expect.poll(() => finished.count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    expect(await finished.first().textContent()).toContain('analyze');
    expect(await finished.first().textContent()).toContain('succeeded');
    await page.screenshot({ path: join(shots, 'jobs.png') });

    await view('#/charts');
    await expect.poll(() => page.locator('main p.muted').textContent(), { timeout: 10_000 }).toMatch(/call: [1-9]/);
    // Pixels the rate chart inked (the page's own script, evaluated in the browser).
    const painted = await page.evaluate(`(() => {
      const canvas = document.querySelector('canvas');
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
      return inked;
    })()`);
    expect(painted).toBeGreaterThan(100);
    // The dead-letter rate, next to them (the demo's flaky message was dead-lettered at start).
    expect(await page.locator('canvas[aria-label="Dead letters per second"]').count()).toBe(1);
    expect(await page.locator('#dead-letter-note').textContent()).toMatch(/^\d+ dead-lettered in the last minute$/);
    // Queue depth of the groups the services consume, read from the broker's pending.
    await expect.poll(() => page.locator('#queue-depth-note').textContent(), { timeout: 15_000 }).toMatch(/service-[abc]: \S+\/\S+ \d+/);
    await page.screenshot({ path: join(shots, 'charts.png') });
  });

  it('cancels a running job from the jobs view, with the keyboard; the job ends canceled', async () => {
    // A job of B that runs for a minute unless canceled (the demo's own analyze, a long workMs).
    const submitted = await fetch(`${serviceBUrl}/ops/analyze`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ name: 'cancel me', workMs: 60_000 }),
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    const monitor = new URL(submitted.headers.get('location') as string, serviceBUrl);
    await view('#/jobs');
    const cancel = page.getByRole('button', { name: `Cancel job ${id}` });
    await expect.poll(() => cancel.count(), { timeout: 15_000 }).toBe(1);
    const running = page.locator('tr', { has: cancel });
    expect(await running.textContent()).toContain('analyze');
    await page.screenshot({ path: join(shots, 'jobs-running.png') });
    await cancel.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 10_000 }).toMatch(new RegExp(`${id}`));
    // The job's own monitor says so: the handler saw its signal and the job ended canceled.
    await expect
      .poll(async () => ((await (await fetch(monitor)).json()) as { status: string }).status, { timeout: 15_000 })
      .toBe('canceled');
    // And the page moves it to the finished jobs.
    const finished = page.locator('table[aria-label="Jobs finished"] tbody tr', { hasText: id });
    await expect.poll(() => finished.count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    expect(await finished.first().textContent()).toContain('canceled');
    expect(await page.getByRole('button', { name: `Cancel job ${id}` }).count()).toBe(0);
    await page.screenshot({ path: join(shots, 'jobs-canceled.png') });
  });

  it('logged no error in the browser', () => {
    expect(problems).toEqual([]);
  });
});
