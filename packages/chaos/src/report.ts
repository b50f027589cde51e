import type { ChaosResult } from './scenario.js';

/** A run that did not happen, and why. */
export interface NotRun {
  readonly engine: string;
  readonly fault: string;
  readonly why: string;
}

const seconds = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

function deadLetters(result: ChaosResult): string {
  const entries = Object.entries(result.deadLettered);
  return entries.length === 0 ? '0' : entries.map(([reason, count]) => `${count} (${reason})`).join(', ');
}

/** Whether a run kept the promise: nothing lost, no duplicate side effect, nothing unexpected or stuck. */
export function passed(result: ChaosResult): boolean {
  return result.lost === 0 && result.duplicated === 0 && result.unexpected === 0 && result.stuck === 0;
}

/** The results as a Markdown table, engine by engine. */
export function resultsTable(results: readonly ChaosResult[], notRun: readonly NotRun[]): string {
  const lines = [
    '| engine | fault | recipe | attempted | acknowledged | lost | duplicated effects | unexpected | dead-lettered | stuck | unacked but handled | late commits fenced | recovery | drained in | verdict |',
    '|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.engine} | ${r.fault} | ${r.recipe} | ${r.attempted} | ${r.acknowledged} | ${r.lost} | ${r.duplicated} | ${r.unexpected} | ${deadLetters(r)} | ${r.stuck} | ${r.unacknowledgedHandled} | ${r.fenced} | ${seconds(r.recoveryMs)} | ${seconds(r.durationMs)} | ${passed(r) ? 'pass' : '**FAIL**'} |`,
    );
  }
  for (const n of notRun) lines.push(`| ${n.engine} | ${n.fault} | | | | | | | | | | | | | not run: ${n.why} |`);
  const notes = results.filter((r) => r.notes.length > 0).map((r) => `- ${r.engine} / ${r.fault}: ${r.notes.join('; ')}`);
  return [...lines, ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}
