/**
 * Small descriptive statistics for evaluation results, written to agree with numpy / scipy defaults
 * so numbers reported here can be set beside the papers' (which were all computed in Python).
 * Plain TypeScript on number arrays: no TensorFlow.js and no Node imports, so it runs in the app too.
 */
import { UsageError } from '../errors.js';

/** Arithmetic mean; NaN for an empty input (as numpy, without its warning). */
export function mean(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n === 0) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i]!;
  return s / n;
}

function sortedCopy(xs: ArrayLike<number>): Float64Array {
  // Typed-array sort is numeric by default, unlike Array.prototype.sort's string order.
  return Float64Array.from(xs).sort();
}

function quantileOfSorted(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  // numpy's default ('linear', Hyndman & Fan type 7): position h = (n − 1)·q between order statistics.
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

function checkQ(q: number): void {
  if (!(q >= 0 && q <= 1)) throw new UsageError(`quantile q must lie in [0, 1], got ${q}`);
}

/** The q-quantile with linear interpolation between order statistics, as `numpy.quantile(xs, q)`. NaN for an empty input. */
export function quantile(xs: ArrayLike<number>, q: number): number {
  checkQ(q);
  return quantileOfSorted(sortedCopy(xs), q);
}

/** Median (the 0.5-quantile, so the mean of the middle two for an even count). */
export function median(xs: ArrayLike<number>): number {
  return quantile(xs, 0.5);
}

/** Interquartile range q(0.75) − q(0.25), numpy's linear quantiles (as `scipy.stats.iqr` default). */
export function iqr(xs: ArrayLike<number>): number {
  const s = sortedCopy(xs);
  return quantileOfSorted(s, 0.75) - quantileOfSorted(s, 0.25);
}

export interface Summary {
  n: number;
  mean: number;
  median: number;
  q1: number;
  q3: number;
  iqr: number;
  min: number;
  max: number;
}

/** Count, mean and five-number summary in one sort. Input is assumed NaN-free; an empty input gives NaNs with n = 0. */
export function summarise(xs: ArrayLike<number>): Summary {
  const s = sortedCopy(xs);
  const n = s.length;
  if (n === 0) return { n: 0, mean: NaN, median: NaN, q1: NaN, q3: NaN, iqr: NaN, min: NaN, max: NaN };
  const q1 = quantileOfSorted(s, 0.25);
  const q3 = quantileOfSorted(s, 0.75);
  return {
    n,
    mean: mean(s),
    median: quantileOfSorted(s, 0.5),
    q1,
    q3,
    iqr: q3 - q1,
    min: s[0]!,
    max: s[n - 1]!,
  };
}

/**
 * Area under the piecewise-linear curve through (xs[i], ys[i]) by the trapezoid rule, as
 * `numpy.trapezoid(ys, xs)` — note the argument order here is x first. Fewer than two points give 0;
 * decreasing x gives negative area, as numpy does.
 */
export function trapezoid(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  if (xs.length !== ys.length) throw new UsageError(`trapezoid needs as many x as y values, got ${xs.length} and ${ys.length}`);
  let area = 0;
  for (let i = 1; i < xs.length; i++) area += ((xs[i]! - xs[i - 1]!) * (ys[i]! + ys[i - 1]!)) / 2;
  return area;
}

/**
 * 1-based ranks with ties given the average of the ranks they span, as `scipy.stats.rankdata`
 * (method 'average'): rankdata([10, 20, 20, 30]) = [1, 2.5, 2.5, 4].
 */
export function rankdata(xs: ArrayLike<number>): Float64Array {
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => (xs[i]! < xs[j]! ? -1 : xs[i]! > xs[j]! ? 1 : i - j));
  const ranks = new Float64Array(n);
  let start = 0;
  while (start < n) {
    let end = start + 1;
    while (end < n && xs[order[end]!] === xs[order[start]!]) end++;
    // Positions start … end−1 (0-based) hold one tied value: ranks start+1 … end, whose mean is:
    const avg = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]!] = avg;
    start = end;
  }
  return ranks;
}
