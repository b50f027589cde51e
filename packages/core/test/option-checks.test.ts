import { describe, expect, it } from 'vitest';
import { isSwitchboardError } from '../src/index.js';
import { positiveInteger } from '../src/kit.js';

describe('positiveInteger', () => {
  it('gives the fallback when the option is left out, and the value when it is an integer in range', () => {
    expect(positiveInteger(undefined, 'pollIntervalMs', 200)).toBe(200);
    expect(positiveInteger(1, 'pollIntervalMs', 200)).toBe(1);
    expect(positiveInteger(512, 'maxMessageBytes', 1, 512)).toBe(512);
  });

  it('refuses zero, negatives, fractions, NaN and values over the maximum with SB_CONFIG_INVALID naming the option', () => {
    for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 513]) {
      let caught: unknown;
      try {
        positiveInteger(value, 'maxMessageBytes', 1, 512);
      } catch (error) {
        caught = error;
      }
      expect(isSwitchboardError(caught, 'SB_CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message + String((caught as { detail?: string }).detail)).toContain('maxMessageBytes');
    }
  });
});
