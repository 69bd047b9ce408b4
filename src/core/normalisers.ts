/**
 * Row-wise attention normalisers: softmax and the sparse alternatives of Meister et al. (2021, "Is
 * Sparse Attention more Interpretable?"), sparsemax (Martins & Astudillo 2016) and 1.5-entmax
 * (Peters, Niculae & Martins 2019), so a model can swap one for another and still be trained and
 * explained through it.
 *
 * Both sparse maps use the exact sort-based threshold algorithms, in two forms. Where the backend
 * keeps tensors in host memory (wasm, cpu, native TensorFlow) the rows are read and τ found in
 * float64 JS: on tfjs-wasm that was 4–18× faster than the tensor-op form (12 heads × 197² scores),
 * whose full-width TopK (wasm has no Sort kernel) alone costs more than the whole JS solve, and
 * τ comes out in float64. Elsewhere (WebGL, WebGPU) a read-back would stall the device, so the
 * same algorithm runs there as tensor ops.
 *
 * The forward passes pick thresholds by comparisons, which have no gradient, so each map is a
 * `customGrad` with its closed-form Jacobian — also what the relevance rules need, hence
 * `normaliserJvp`.
 */
import { tf, type Tensor, type Tensor2D } from './tf.js';
import { UsageError } from './errors.js';
import { sparseJvp } from './fused.js';

export type NormaliserName = 'softmax' | 'sparsemax' | 'entmax15';
export const NORMALISERS: readonly NormaliserName[] = ['softmax', 'sparsemax', 'entmax15'];

function assertRows(x: Tensor, what: string): void {
  if (x.rank !== 2) throw new UsageError(`${what} needs a 2-D tensor [rows, n], got shape [${x.shape.join(', ')}]`);
}

/** 1, 2, …, n as float32: the candidate support sizes k, broadcast along each row. */
function supportSizes(n: number): Tensor {
  return tf.range(1, n + 1, 1, 'float32');
}

/**
 * Both thresholds satisfy τ ≥ max − 1 (the largest entry alone may carry at most all the mass), so
 * after shifting the row maximum to 0 nothing at or below −1 is in the support. Clamping the sorted
 * values at −2 therefore leaves the support and τ unchanged, while keeping the cumulative moments
 * finite and well-conditioned in float32: masked entries (−1e4, −∞) would otherwise give
 * ∞ − ∞ = NaN, or a variance lost to cancellation that can pass the support test.
 */
const FLOOR = -2;

/** Σ over each row of `values` at the positions where `keep` is true, as [rows, 1]. */
function maskedRowSum(keep: Tensor, values: Tensor): Tensor {
  return tf.sum(tf.mul(tf.cast(keep, 'float32'), values), 1, true);
}

/** Backends whose dataSync is a copy from host memory rather than a device read-back. */
const HOST_BACKENDS = new Set(['wasm', 'cpu', 'tensorflow']);

/** Where the sparse maps find their thresholds: 'auto' picks by the active backend. */
export type ThresholdSolver = 'auto' | 'host' | 'device';

export interface SparseMapOptions {
  readonly solver?: ThresholdSolver;
}

function solveOnHost(solver: ThresholdSolver | undefined): boolean {
  return solver === 'host' || ((solver ?? 'auto') === 'auto' && HOST_BACKENDS.has(tf.getBackend()));
}

/**
 * τ for the top-k of a row, k = count, from the running Σz and Σz² of those k entries (shifted so
 * the maximum is 0): sparsemax (Σ z − 1)/k, 1.5-entmax the lower root of Σ (z − τ)² = 1. NaN where
 * no real root exists (1.5-entmax with the k entries spread too far for any τ).
 */
function topKThreshold(entmax: boolean, k: number, s1: number, s2: number): number {
  if (!entmax) return (s1 - 1) / k;
  const mean = s1 / k;
  const delta = (1 - (s2 - s1 * mean)) / k;
  return delta >= 0 ? mean - Math.sqrt(delta) : NaN;
}

/**
 * τ without sorting, by shrinking a support that always contains the true one. With τ_t ≤ τ*, the
 * set S = {z > τ_t} holds the whole support. Sparsemax (Michelot 1986): τ_S = (Σ_S z − 1)/|S| is
 * again ≤ τ*, and S stops shrinking exactly at τ*. 1.5-entmax: f(τ) = Σ (z − τ)₊² is convex and
 * decreasing, so Newton steps from τ₀ = −1 (f ≥ 1 there: the maximum alone gives 1) stay left of
 * τ*; at each step the root of Σ_S (z − τ)² = 1 is tried, and it is τ* as soon as every z in S lies
 * at or above it. A handful of passes over the candidates, where the sort was 60 % of the solve.
 * Compacts `z` (a scratch copy) in place; NaN if it has not settled after 64 steps (the sort then decides).
 */
function thresholdBySupport(z: Float64Array, count: number, entmax: boolean): number {
  let c = count;
  let tau = -1;
  for (let step = 0; step < 64; step++) {
    let k = 0;
    let s1 = 0;
    let s2 = 0;
    let min = Infinity;
    for (let i = 0; i < c; i++) {
      const v = z[i]!;
      if (v > tau) {
        z[k++] = v;
        s1 += v;
        s2 += v * v;
        if (v < min) min = v;
      }
    }
    const shrunk = k < c;
    c = k;
    if (!entmax) {
      if (!shrunk && step > 0) return tau;
      tau = (s1 - 1) / k;
      continue;
    }
    const root = topKThreshold(true, k, s1, s2);
    if (min >= root) return root;
    // Newton on f(τ) = 1 from the left: f(τ) = Σ_S (z − τ)², f'(τ) = −2 Σ_S (z − τ).
    const d1 = s1 - k * tau;
    const f = s2 - 2 * tau * s1 + k * tau * tau;
    const next = tau + (f - 1) / (2 * d1);
    if (!(next > tau)) return NaN;
    tau = next;
  }
  return NaN;
}

/** The sort-based solve on the first `count` candidates: k* is the last k whose τ_k lies at or below the k-th largest z. */
function thresholdBySort(candidates: Float64Array, count: number, entmax: boolean): number {
  const sorted = candidates.subarray(0, count).sort(); // ascending: scanned from the end
  let s1 = 0;
  let s2 = 0;
  let tau = NaN;
  // k = 1 always qualifies (τ = −1), so tau is always set.
  for (let i = count - 1, k = 1; i >= 0; i--, k++) {
    const z = sorted[i]!;
    s1 += z;
    s2 += z * z;
    const t = topKThreshold(entmax, k, s1, s2);
    if (!(t <= z)) break;
    tau = t;
  }
  return tau;
}

/**
 * The exact sort-based solve, row by row in float64. `entmax` selects 1.5-entmax (on x/2, p = d²)
 * over sparsemax (p = d). Only entries within 1 of the (scaled) row maximum can be in the support
 * (τ ≥ max − 1, or the maximum alone would carry more than all the mass), so only those are
 * sorted: with masked or spread-out scores that is a handful per row, not n.
 */
function sparseMapOnHost(x: Tensor2D, entmax: boolean): Tensor2D {
  const [rows, n] = x.shape;
  const data = x.dataSync();
  const out = new Float32Array(rows * n);
  const candidates = new Float64Array(n);
  const work = new Float64Array(n);
  const scale = entmax ? 0.5 : 1;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let max = -Infinity;
    let nan = false;
    for (let j = 0; j < n; j++) {
      const v = data[o + j]!;
      if (v > max) max = v;
      else if (v !== v) nan = true;
    }
    // As softmax does: a row with NaN, +∞ or nothing above −∞ has no meaningful distribution.
    if (nan || !Number.isFinite(max)) {
      out.fill(NaN, o, o + n);
      continue;
    }
    let c = 0;
    let s1 = 0;
    let s2 = 0;
    let min = 0;
    for (let j = 0; j < n; j++) {
      const z = (data[o + j]! - max) * scale;
      if (z > -1) {
        candidates[c++] = z;
        s1 += z;
        s2 += z * z;
        if (z < min) min = z;
      }
    }
    // Nearly uniform rows (small scores, early in training) put every candidate in the support. If
    // the all-candidates τ leaves none of them below it, it satisfies Σ p = 1 and is the τ (the
    // threshold is unique).
    let tau = topKThreshold(entmax, c, s1, s2);
    if (!(min >= tau)) {
      work.set(candidates.subarray(0, c));
      tau = thresholdBySupport(work, c, entmax);
      if (Number.isNaN(tau)) tau = thresholdBySort(candidates, c, entmax);
    }
    for (let j = 0; j < n; j++) {
      const d = (data[o + j]! - max) * scale - tau;
      out[o + j] = d > 0 ? (entmax ? d * d : d) : 0;
    }
  }
  return tf.tensor2d(out, [rows, n], 'float32');
}

/**
 * The device solvers' last step. τ carries float32 rounding, and Σp moves by k (sparsemax) or
 * 2·Σ√p (entmax, up to 2√n) per unit of τ, so rows with wide supports would miss Σ = 1 by a few
 * 1e-6; dividing by the sum fixes that and keeps zeros exact. Rows with no meaningful distribution
 * (a NaN, +∞, or nothing above −∞: exactly the rows where x − max has a NaN) become NaN, as softmax
 * and the host solver leave them, where the threshold search alone would give plausible numbers.
 */
function finish(shifted: Tensor, p: Tensor): Tensor2D {
  const normalised = tf.div(p, tf.sum(p, 1, true));
  return tf.where(tf.isNaN(tf.sum(shifted, 1, true)), tf.fill(p.shape as [number, number], NaN), normalised) as Tensor2D;
}

function sparsemaxOnDevice(x: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[1];
    // The map is shift-invariant; with the row maximum at 0 the floor below applies.
    const z = tf.sub(x, tf.max(x, 1, true));
    const sorted = tf.maximum(tf.topk(z, n).values, FLOOR);
    const cumulative = tf.cumsum(sorted, 1);
    const k = supportSizes(n);
    const inSupport = tf.greater(tf.add(tf.mul(k, sorted), 1), cumulative);
    // The largest k that satisfies the condition (k = 1 always does). In exact arithmetic the
    // satisfying k form a prefix; taking the largest rather than counting is the paper's definition.
    const kStar = tf.max(tf.mul(tf.cast(inSupport, 'float32'), k), 1, true);
    const tau = tf.div(tf.sub(maskedRowSum(tf.lessEqual(k, kStar), sorted), 1), kStar);
    return finish(z, tf.relu(tf.sub(z, tau)));
  });
}

function entmax15OnDevice(x: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[1];
    // With the maximum of x/2 at 0 and the floor, the moments below are of numbers in [−2, 0], so
    // the variance's cancellation stays at float32 rounding.
    const z = tf.div(tf.sub(x, tf.max(x, 1, true)), 2);
    const sorted = tf.maximum(tf.topk(z, n).values, FLOOR);
    const k = supportSizes(n);
    const mean = tf.div(tf.cumsum(sorted, 1), k);
    const meanSq = tf.div(tf.cumsum(tf.square(sorted), 1), k);
    const ss = tf.mul(k, tf.sub(meanSq, tf.square(mean)));
    // τ_k solves Σ_{j≤k} (z_(j) − τ)² = 1 with τ below the mean; a negative discriminant means no
    // τ puts k elements in the support, and τ = mean then fails the test below as it should.
    const delta = tf.div(tf.sub(1, ss), k);
    const tau = tf.sub(mean, tf.sqrt(tf.relu(delta)));
    const valid = tf.lessEqual(tau, sorted);
    const kStar = tf.max(tf.mul(tf.cast(valid, 'float32'), k), 1, true);
    const tauStar = maskedRowSum(tf.equal(k, kStar), tau);
    return finish(z, tf.square(tf.relu(tf.sub(z, tauStar))));
  });
}

function softmaxJvp(p: Tensor2D, v: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.mul(p, tf.sub(v, tf.sum(tf.mul(p, v), 1, true))) as Tensor2D);
}

function sparsemaxJvp(p: Tensor2D, v: Tensor2D): Tensor2D {
  return sparseJvp(p, v, false) as Tensor2D;
}

function entmax15Jvp(p: Tensor2D, v: Tensor2D): Tensor2D {
  return sparseJvp(p, v, true) as Tensor2D;
}

/**
 * A customGrad op whose backward is the Jacobian product at the saved output. Saving p, not x, is
 * enough: both Jacobians depend on the input only through the output.
 */
function withJacobian(
  forward: (x: Tensor2D) => Tensor2D,
  jvp: (p: Tensor2D, v: Tensor2D) => Tensor2D,
): (x: Tensor2D) => Tensor2D {
  return tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [Tensor2D, tf.GradSaveFunc];
    const p = forward(x);
    save([p]);
    return {
      value: p,
      gradFunc: (dy: Tensor, saved: Tensor[]) => jvp(saved[0] as Tensor2D, dy as Tensor2D),
    };
  }) as (x: Tensor2D) => Tensor2D;
}

// customGrad ops are built once: the solver is a property of the op, not of a call.
const ops = {
  sparsemax: {
    host: withJacobian((x) => sparseMapOnHost(x, false), sparsemaxJvp),
    device: withJacobian(sparsemaxOnDevice, sparsemaxJvp),
  },
  entmax15: {
    host: withJacobian((x) => sparseMapOnHost(x, true), entmax15Jvp),
    device: withJacobian(entmax15OnDevice, entmax15Jvp),
  },
} as const;

function apply(name: 'sparsemax' | 'entmax15', x: Tensor2D, options: SparseMapOptions | undefined): Tensor2D {
  assertRows(x, name);
  const solver = options?.solver;
  if (solver !== undefined && solver !== 'auto' && solver !== 'host' && solver !== 'device') {
    throw new UsageError(`${name}: unknown solver '${String(solver)}' (choose auto, host or device)`);
  }
  // TopK rejects k = 0; an empty row has nothing to normalise.
  if (x.shape[1] === 0) return tf.clone(x);
  return ops[name][solveOnHost(solver) ? 'host' : 'device'](x);
}

/**
 * Sparsemax, the Euclidean projection of each row onto the probability simplex: p = max(x − τ, 0).
 * Rows sum to 1 and entries outside the support are exactly 0.
 */
export function sparsemax(x: Tensor2D, options?: SparseMapOptions): Tensor2D {
  return apply('sparsemax', x, options);
}

/** 1.5-entmax of each row: p = max(x/2 − τ, 0)² with τ such that the row sums to 1; exact zeros. */
export function entmax15(x: Tensor2D, options?: SparseMapOptions): Tensor2D {
  return apply('entmax15', x, options);
}

/** Row-wise normaliser over the last axis of a 2-D tensor. */
export function normalise(name: NormaliserName, x: Tensor2D): Tensor2D {
  switch (name) {
    case 'softmax':
      assertRows(x, 'softmax');
      return tf.softmax(x) as Tensor2D;
    case 'sparsemax':
      return sparsemax(x);
    case 'entmax15':
      return entmax15(x);
    default:
      throw new UsageError(`unknown normaliser '${String(name)}' (choose one of ${NORMALISERS.join(', ')})`);
  }
}

/**
 * The Jacobian-vector products, exported for the relevance rules: given the output p of the
 * normaliser and a vector v (same shape), return J·v (J symmetric for all three). softmax:
 * p⊙(v − Σp⊙v); sparsemax: s⊙(v − mean_{s}(v)) with s = 1[p>0]; entmax15: with g = sqrt(p),
 * g⊙v − g·(Σ g⊙v)/(Σ g). These are the backward passes of the ops above, so J·v here is exactly the
 * gradient tf computes for a loss Σ v⊙p. Not meant to be differentiated with respect to p (√p has
 * an infinite slope at the support's edge).
 */
export function normaliserJvp(name: NormaliserName, p: Tensor2D, v: Tensor2D): Tensor2D {
  assertRows(p, 'normaliserJvp');
  if (p.shape[0] !== v.shape[0] || p.shape[1] !== v.shape[1] || v.rank !== 2) {
    throw new UsageError(`normaliserJvp: p is [${p.shape.join(', ')}] but v is [${v.shape.join(', ')}]`);
  }
  switch (name) {
    case 'softmax':
      return softmaxJvp(p, v);
    case 'sparsemax':
      return sparsemaxJvp(p, v);
    case 'entmax15':
      return entmax15Jvp(p, v);
    default:
      throw new UsageError(`unknown normaliser '${String(name)}' (choose one of ${NORMALISERS.join(', ')})`);
  }
}
