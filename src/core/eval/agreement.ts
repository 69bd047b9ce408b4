/**
 * Agreement between explanations (Jain & Wallace 2019, "Attention is not Explanation"): rank
 * correlation between two importance maps over the same units, and distances between two
 * probability vectors (e.g. a model's outputs before and after swapping in another attention).
 *
 * Plain TypeScript on number arrays: no TensorFlow.js and no Node imports.
 */
import { UsageError } from '../errors.js';

function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) throw new UsageError(`${what}: vectors of different lengths (${a.length} and ${b.length})`);
}

/** Σ t(t−1)/2 over runs of equal values in positions [0, n) of `values` read through `order`. */
function tiedPairs(values: ArrayLike<number>, order: Int32Array): number {
  let pairs = 0;
  let run = 1;
  for (let k = 1; k <= order.length; k++) {
    if (k < order.length && values[order[k]!] === values[order[k - 1]!]) run++;
    else {
      pairs += (run * (run - 1)) / 2;
      run = 1;
    }
  }
  return pairs;
}

/**
 * Kendall τ-b between two rankings/score vectors (tie-corrected, as scipy.stats.kendalltau default):
 * τ_b = (C − D) / √((n₀ − n₁)(n₀ − n₂)), n₀ = n(n−1)/2, n₁ and n₂ the pairs tied in a and in b.
 * Knight's O(n log n) algorithm, as scipy uses, so whole pixel maps are affordable. NaN when either
 * vector is constant (or has fewer than two entries), or holds a NaN.
 */
export function kendallTau(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkSameLength(a, b, 'Kendall tau');
  const n = a.length;
  if (n < 2) return NaN;
  for (let i = 0; i < n; i++) if (Number.isNaN(a[i]!) || Number.isNaN(b[i]!)) return NaN;

  // Sort by a, then by b: pairs tied in a then sit together in b-order, so they add no inversions.
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((i, j) => {
    const ai = a[i]!;
    const aj = a[j]!;
    if (ai !== aj) return ai < aj ? -1 : 1;
    const bi = b[i]!;
    const bj = b[j]!;
    return bi < bj ? -1 : bi > bj ? 1 : 0;
  });
  const tiedA = tiedPairs(a, order);
  let tiedBoth = 0;
  let run = 1;
  for (let k = 1; k <= n; k++) {
    if (k < n && a[order[k]!] === a[order[k - 1]!] && b[order[k]!] === b[order[k - 1]!]) run++;
    else {
      tiedBoth += (run * (run - 1)) / 2;
      run = 1;
    }
  }

  // Each inversion in b (strictly greater before smaller) left by the a-order is one discordant pair.
  let src = Int32Array.from(order);
  let dst = new Int32Array(n);
  let discordant = 0;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        if (b[src[j]!]! < b[src[i]!]!) {
          discordant += mid - i;
          dst[k++] = src[j++]!;
        } else dst[k++] = src[i++]!;
      }
      while (i < mid) dst[k++] = src[i++]!;
      while (j < hi) dst[k++] = src[j++]!;
    }
    [src, dst] = [dst, src];
  }
  const tiedB = tiedPairs(b, src);

  const n0 = (n * (n - 1)) / 2;
  const concordant = n0 - tiedA - tiedB + tiedBoth - discordant;
  const denom = Math.sqrt((n0 - tiedA) * (n0 - tiedB));
  if (denom === 0) return NaN;
  // Rounding cannot push |τ| past 1 in exact arithmetic; clamp what float division might.
  return Math.max(-1, Math.min(1, (concordant - discordant) / denom));
}

/**
 * τ for every pair of named maps over the same units: returns a symmetric matrix (diagonal 1) and the
 * list of names, in the object's key order. Pairs involving a constant map are NaN off the diagonal.
 */
export function agreementMatrix(maps: Record<string, ArrayLike<number>>): { names: string[]; tau: number[][] } {
  const names = Object.keys(maps);
  const k = names.length;
  for (const name of names) {
    if (maps[name]!.length !== maps[names[0]!]!.length) {
      throw new UsageError(`agreement matrix: map '${name}' has ${maps[name]!.length} units but '${names[0]}' has ${maps[names[0]!]!.length}`);
    }
  }
  const tau = Array.from({ length: k }, () => new Array<number>(k).fill(1));
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const t = kendallTau(maps[names[i]!]!, maps[names[j]!]!);
      tau[i]![j] = t;
      tau[j]![i] = t;
    }
  }
  return { names, tau };
}

/** Total variation distance between two probability vectors: ½ Σ|p − q|, in [0, 1]. */
export function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>): number {
  checkSameLength(p, q, 'total variation');
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs(p[i]! - q[i]!);
  return s / 2;
}

/**
 * Jensen–Shannon divergence (natural log, so max ln 2), with 0·log 0 = 0:
 * JSD = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2. Inputs are taken as given, not renormalised.
 * Note scipy's `jensenshannon` returns the *distance*, √JSD.
 */
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>): number {
  checkSameLength(p, q, 'Jensen–Shannon divergence');
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const qi = q[i]!;
    const m = (pi + qi) / 2;
    if (pi > 0) s += pi * Math.log(pi / m);
    if (qi > 0) s += qi * Math.log(qi / m);
  }
  // Cancellation can leave a tiny negative sum for p ≈ q; the divergence itself is never negative.
  return Math.max(0, s / 2);
}
