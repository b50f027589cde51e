import { compileFilter } from '@switchboard/cesql';
import type { CloudEvent } from '@switchboard/core';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

const SCENARIO = 'cesql-filter';
/** Target: a compiled filter decides at least 1 000 000 events/s on one core (the consumer's hot path). */
const TARGET_PER_S = 1_000_000;

const TYPICAL = "subject LIKE 'orders/%' AND priority > 2";
const WIDER =
  "type IN ('com.example.order.placed', 'com.example.order.paid') AND (subject LIKE 'orders/%' OR region = 'eu') AND priority >= 2";

/** 1 024 decoded events of the kind a consumer sees: half with an `orders/` subject, priorities 0-5, some without one. */
function events(): CloudEvent[] {
  return Array.from({ length: 1024 }, (_, i) => ({
    specversion: '1.0',
    id: `0190a0b2-0000-7000-8000-${String(i).padStart(12, '0')}`,
    source: 'service-a',
    type: i % 3 === 0 ? 'com.example.order.paid' : 'com.example.order.placed',
    subject: i % 2 === 0 ? `orders/${i}` : `carts/${i}`,
    time: '2026-12-01T10:00:00Z',
    datacontenttype: 'application/json',
    extensions: {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      region: i % 4 === 0 ? 'eu' : 'us',
      ...(i % 7 === 0 ? {} : { priority: i % 6 }),
    },
  }));
}

/** What one would write by hand for TYPICAL (no casts, no error model): the baseline. */
function handWritten(event: CloudEvent): boolean {
  const subject = event.subject;
  const priority = event.extensions?.priority;
  return typeof subject === 'string' && subject.startsWith('orders/') && typeof priority === 'number' && priority > 2;
}

/** Decisions per second over `durationMs`, the median of three rounds; also the count of matches per pass. */
function measure(
  decide: (event: CloudEvent) => boolean,
  sample: readonly CloudEvent[],
  durationMs: number,
): { perS: number; matches: number } {
  let matches = 0;
  for (const event of sample) if (decide(event)) matches++;
  const rates: number[] = [];
  let sink = 0;
  for (let round_ = 0; round_ < 3; round_++) {
    let decided = 0;
    const started = process.hrtime.bigint();
    const stopAt = started + BigInt(Math.round(durationMs * 1e6));
    let now = started;
    while (now < stopAt) {
      for (let k = 0; k < 16; k++) {
        for (const event of sample) if (decide(event)) sink++;
      }
      decided += 16 * sample.length;
      now = process.hrtime.bigint();
    }
    rates.push(decided / (Number(now - started) / 1e9));
  }
  if (sink < 0) throw new Error('unreachable');
  rates.sort((a, b) => a - b);
  return { perS: round(rates[1] ?? 0, 0), matches };
}

export const cesqlFilter: Scenario = {
  name: SCENARIO,
  description: `CESQL filter decisions/s, compiled matches() next to a hand-written predicate (target ≥ ${TARGET_PER_S.toLocaleString('en-US')}/s)`,
  async run(ctx: ScenarioContext) {
    const durationMs = Math.max(200, Math.round(1000 * ctx.scale));
    const sample = events();
    const typical = compileFilter(TYPICAL);
    const wider = compileFilter(WIDER);
    const record = (subject: string, load: string, result: { perS: number; matches: number }, baseline?: number) => {
      ctx.record({
        scenario: SCENARIO,
        subject,
        load,
        metrics: {
          decisionsPerS: result.perS,
          nsPerDecision: round(1e9 / result.perS, 1),
          matchesPer1024: result.matches,
          ...(baseline === undefined
            ? {}
            : { ratioToHandWritten: round(result.perS / baseline, 3), meetsTarget: result.perS >= TARGET_PER_S ? 'yes' : 'no' }),
        },
      });
    };
    const bare = measure(handWritten, sample, durationMs);
    record('hand-written predicate', 'typical', bare);
    record(
      'compileFilter().matches',
      'typical',
      measure((e) => typical.matches(e), sample, durationMs),
      bare.perS,
    );
    record(
      'compileFilter().evaluate',
      'typical',
      measure((e) => typical.evaluate(e).value === true, sample, durationMs),
      bare.perS,
    );
    record(
      'compileFilter().matches',
      'wider (IN, LIKE, OR, >=)',
      measure((e) => wider.matches(e), sample, durationMs),
      bare.perS,
    );
    // Compile cost, paid once per subscription.
    let compiled = 0;
    const started = process.hrtime.bigint();
    while (Number(process.hrtime.bigint() - started) < durationMs * 1e6 * 0.25) {
      compileFilter(WIDER);
      compiled++;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    ctx.record({
      scenario: SCENARIO,
      subject: 'compileFilter (parse + compile)',
      load: 'wider',
      metrics: { compilesPerS: round(compiled / seconds, 0), usPerCompile: round((seconds / compiled) * 1e6, 1) },
    });
  },
};
