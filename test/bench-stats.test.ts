import { describe, expect, it } from 'vitest';
import { argValue, formatMs, formatRatio, intOption, markdownTable, median, summarise } from '../src/bench/stats.js';

describe('bench helpers', () => {
  it('median, min and max of timings', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarise([5, 1, 9, 3, 7])).toEqual({ runs: 5, median: 5, min: 1, max: 9 });
    expect(summarise([]).runs).toBe(0);
    expect(Number.isNaN(summarise([]).median)).toBe(true);
  });

  it('formats milliseconds and ratios', () => {
    expect(formatMs(0.123)).toBe('0.12');
    expect(formatMs(12.34)).toBe('12.3');
    expect(formatMs(18042.4)).toBe('18042');
    expect(formatMs(NaN)).toBe('—');
    expect(formatRatio(2.345)).toBe('2.3×');
    expect(formatRatio(48.6)).toBe('49×');
  });

  it('writes markdown tables with alignment and escaped pipes', () => {
    expect(markdownTable(['a', 'b'], [['x|y', '1']], ['l', 'r'])).toBe('| a | b |\n|---|---:|\n| x\\|y | 1 |');
  });

  it('reads options', () => {
    expect(argValue(['--runs', '3'], 'runs')).toBe('3');
    expect(argValue([], 'runs')).toBeUndefined();
    expect(() => argValue(['--runs'], 'runs')).toThrow();
    expect(intOption(undefined, 5, 'runs', 1)).toBe(5);
    expect(intOption('7', 5, 'runs', 1)).toBe(7);
    expect(() => intOption('0', 5, 'runs', 1)).toThrow();
  });
});
