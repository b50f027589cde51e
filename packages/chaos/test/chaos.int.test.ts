import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EngineServer, startEngineServer } from '../src/engines.js';
import { type ChaosResult, runScenario } from '../src/scenario.js';

// A bounded slice of `npm run chaos` (which runs every engine × fault with 10 000 messages): the
// consumer processes run the built package (`npx tsc -b packages/chaos`).
const TOTAL = 1000;

function expectKept(result: ChaosResult): void {
  expect(result.attempted).toBe(TOTAL);
  expect(result.acknowledged).toBeGreaterThan(0);
  expect({ lost: result.lost, duplicated: result.duplicated, unexpected: result.unexpected, stuck: result.stuck }).toEqual({
    lost: 0,
    duplicated: 0,
    unexpected: 0,
    stuck: 0,
  });
}

beforeAll(() => {
  if (!existsSync(fileURLToPath(new URL('../dist/consumer.js', import.meta.url))))
    throw new Error('build first: npx tsc -b packages/chaos');
});

describe('chaos slice: SQLite (embedded)', () => {
  let server: EngineServer;
  beforeAll(async () => {
    server = await startEngineServer('sqlite');
  });

  it('consumer SIGKILLed twice: nothing lost, each side effect once', async () => {
    expectKept(await runScenario({ engine: 'sqlite', fault: 'consumer-kill', server, total: TOTAL }));
  });

  it("a consumer SIGSTOPped past its lease: the zombie's late completions are fenced, not committed twice", async () => {
    // Every run must keep the counts. Whether the zombie wakes with a run still in flight (rather than
    // one its own time limit ended while it was stopped) depends on the machine's timing, so the run
    // is repeated, up to three times, until one shows a late completion the recipe refused.
    let fenced = 0;
    for (let run = 1; run <= 3 && fenced === 0; run++) {
      const result = await runScenario({ engine: 'sqlite', fault: 'zombie', server, total: TOTAL, faultMs: 3000 });
      expectKept(result);
      fenced = result.fenced;
    }
    expect(fenced).toBeGreaterThan(0);
  });
});

describe('chaos slice: Redis Streams (a private redis-server)', () => {
  let server: EngineServer;
  beforeAll(async () => {
    server = await startEngineServer('redis');
  });
  afterAll(() => server.dispose());

  it('broker SIGKILLed and restarted: nothing acknowledged is lost', async () => {
    expectKept(await runScenario({ engine: 'redis', fault: 'broker-kill', server, total: TOTAL, faultMs: 2000 }));
  });

  it('consumer partitioned from the broker for 5 s: nothing lost, each side effect once', async () => {
    expectKept(await runScenario({ engine: 'redis', fault: 'partition', server, total: TOTAL, faultMs: 5000 }));
  });
});
