/** Latency samples in a growable typed array; percentiles by sorting once at the end. */
export class Samples {
  #values = new Float64Array(1 << 16);
  #length = 0;

  add(value: number): void {
    if (this.#length === this.#values.length) {
      const next = new Float64Array(this.#values.length * 2);
      next.set(this.#values);
      this.#values = next;
    }
    this.#values[this.#length++] = value;
  }

  get count(): number {
    return this.#length;
  }

  percentiles(...ps: number[]): number[] {
    const sorted = this.#values.slice(0, this.#length).sort();
    return ps.map((p) => {
      if (sorted.length === 0) return Number.NaN;
      const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
      return sorted[index] ?? Number.NaN;
    });
  }
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
