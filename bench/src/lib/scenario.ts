/** One row of a benchmark table: what was measured, under which load, and the figures. */
export interface BenchRow {
  readonly scenario: string;
  readonly subject: string;
  readonly load: string;
  readonly metrics: Readonly<Record<string, number | string>>;
}

export interface ScenarioContext {
  /** Scales durations: 1 = the recorded figures, smaller for a quick smoke run (`--quick`). */
  readonly scale: number;
  /** Records a row (printed in the table and written to the JSON file). */
  record(row: BenchRow): void;
  log(message: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  run(context: ScenarioContext): Promise<void>;
}
