/**
 * Softmax, sparsemax and 1.5-entmax: values worked out by hand, agreement with a float64 bisection
 * solve of each map's defining equation, gradients against float64 central differences, and the
 * exported Jacobian products against the gradients tf computes.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { tf, type Tensor2D } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import {
  NORMALISERS, normalise, sparsemax, entmax15, normaliserJvp, type NormaliserName, type ThresholdSolver,
} from '../src/core/normalisers.js';

beforeAll(async () => {
  await ensureBackend();
});

const t2 = (rows: number[][]) => tf.tensor2d(rows);
const rowsOf = (t: tf.Tensor) => t.arraySync() as number[][];

function expectRows(actual: number[][], expected: number[][], tol: number) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, r) =>
    row.forEach((v, j) => expect(Math.abs(v - expected[r]![j]!), `row ${r} entry ${j}: ${v} vs ${expected[r]![j]}`).toBeLessThanOrEqual(tol)),
  );
}

/** mulberry32: the same "random" rows on every run, so a failure can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussianRows(rows: number, n: number, scale: number, seed: number): number[][] {
  const u = rng(seed);
  return Array.from({ length: rows }, () =>
    Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u())),
  );
}

// ---- float64 references, from the defining equations rather than the sort-based algorithm ----

/** The τ with Σ f(x_i − τ) = 1 for a decreasing f that is 0 for x_i ≤ τ, by bisection. */
function bisectThreshold(x: number[], f: (d: number) => number, lo: number, hi: number): number {
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    const total = x.reduce((s, v) => s + (v > mid ? f(v - mid) : 0), 0);
    if (total > 1) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
function softmax64(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function sparsemax64(x: number[]): number[] {
  const m = Math.max(...x);
  const tau = bisectThreshold(x, (d) => d, m - 1, m);
  return x.map((v) => Math.max(v - tau, 0));
}
function entmax64(x: number[]): number[] {
  const h = x.map((v) => v / 2);
  const m = Math.max(...h);
  const tau = bisectThreshold(h, (d) => d * d, m - 1, m);
  return h.map((v) => Math.max(v - tau, 0) ** 2);
}
const reference: Record<NormaliserName, (x: number[]) => number[]> = {
  softmax: softmax64,
  sparsemax: sparsemax64,
  entmax15: entmax64,
};

// Both threshold solvers run on every backend; 'auto' picks 'host' on wasm, so 'device' is only
// exercised here by asking for it.
const SOLVERS: readonly ThresholdSolver[] = ['host', 'device'];
/** The normaliser with a given solver for the sparse maps (softmax has none). */
function normaliseWith(name: NormaliserName, x: Tensor2D, solver: ThresholdSolver): Tensor2D {
  if (name === 'sparsemax') return sparsemax(x, { solver });
  if (name === 'entmax15') return entmax15(x, { solver });
  return normalise(name, x);
}

describe.each(SOLVERS)('sparsemax and entmax15 by hand, %s solver', (solver) => {
  const sparsemax = (x: Tensor2D) => normaliseWith('sparsemax', x, solver);
  const entmax15 = (x: Tensor2D) => normaliseWith('entmax15', x, solver);

  it('sparsemax([0.5, 0.1, −1]) = [0.7, 0.3, 0]: τ = −0.2 puts two entries in the support', () => {
    const p = sparsemax(t2([[0.5, 0.1, -1]]));
    expectRows(rowsOf(p), [[0.7, 0.3, 0]], 1e-6);
    expect(rowsOf(p)[0]![2]).toBe(0);
  });

  it('sparsemax of equal values is uniform, and of [3, 0, 0] is one-hot', () => {
    expectRows(rowsOf(sparsemax(t2([[1, 1, 1], [3, 0, 0]]))), [[1 / 3, 1 / 3, 1 / 3], [1, 0, 0]], 1e-6);
    expect(rowsOf(sparsemax(t2([[3, 0, 0]])))[0]).toEqual([1, 0, 0]);
  });

  it('entmax15 of equal values is uniform, at any offset', () => {
    expectRows(rowsOf(entmax15(t2([[2, 2, 2, 2], [-7, -7, -7, -7], [1e4, 1e4, 1e4, 1e4]]))), [
      [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25],
    ], 1e-6);
  });

  it('entmax15 ignores a masked entry and is one-hot once the gap reaches 2', () => {
    // [0, 0, −1e4]: τ = −1/√2 for the two equal entries, the masked one is far below it.
    // [4, 0]: x/2 = [2, 0]; with k = 1, τ = 1 and the second entry (0 − 1 < 0) is cut off.
    // [1, 0]: x/2 − max = [0, −0.5], k = 2, τ = −0.25 − √0.4375, p = [(0.25 + √0.4375)², (√0.4375 − 0.25)²].
    const r = Math.sqrt(0.4375);
    const p = rowsOf(entmax15(t2([[0, 0, -1e4], [4, 0, -1e4], [1, 0, -1e4]])));
    expectRows(p, [[0.5, 0.5, 0], [1, 0, 0], [(0.25 + r) ** 2, (r - 0.25) ** 2, 0]], 1e-6);
    expect(p.map((row) => row[2])).toEqual([0, 0, 0]);
    expect(p[1]![1]).toBe(0);
  });

  it('−Infinity entries get exact zeros, not NaN', () => {
    const x = t2([[0.3, -Infinity, 0.1, -Infinity]]);
    for (const [p, ref] of [[sparsemax(x), sparsemax64], [entmax15(x), entmax64]] as const) {
      const row = rowsOf(p)[0]!;
      expect(row[1]).toBe(0);
      expect(row[3]).toBe(0);
      expectRows([row], [ref([0.3, -Infinity, 0.1, -Infinity])], 1e-6);
    }
  });

  it('rows of one entry are 1, and rows with NaN or +∞ are NaN, as softmax makes them', () => {
    for (const f of [sparsemax, entmax15]) {
      expect(rowsOf(f(t2([[-3], [7]])))).toEqual([[1], [1]]);
      const bad = rowsOf(f(t2([[0.5, NaN, 0], [Infinity, 0, 1]])));
      expect(bad.flat().every(Number.isNaN)).toBe(true);
    }
  });
});

describe('normaliser outputs against float64 bisection', () => {
  const cases: Array<[NormaliserName, ThresholdSolver]> = NORMALISERS.flatMap((name) =>
    name === 'softmax' ? [[name, 'auto']] : SOLVERS.map((solver): [NormaliserName, ThresholdSolver] => [name, solver]),
  );
  for (const [name, solver] of cases) {
    it(`${name}${name === 'softmax' ? '' : ` (${solver})`}: random rows, masked (−1e4) columns, ties and large offsets; rows sum to 1 with exact zeros`, () => {
      const rows = [
        ...gaussianRows(20, 7, 1, 11),
        ...gaussianRows(10, 40, 3, 12),
        // Nearly uniform rows put (almost) everything in the support, where τ's rounding matters most.
        ...gaussianRows(5, 197, 0.02, 14),
        ...gaussianRows(5, 197, 0.3, 15),
        // Wide rows at a trained model's spread: many candidates within 1 of the maximum, supports
        // of 5–50, where the threshold search takes most of its shrinking steps.
        ...gaussianRows(5, 65, 2, 16),
        ...gaussianRows(5, 197, 5, 17),
        ...gaussianRows(3, 197, 30, 18),
        // BERT's additive mask puts −10000 on padded positions.
        ...gaussianRows(10, 16, 1, 13).map((row) => row.map((v, j) => (j % 3 === 0 ? v - 1e4 : v))),
        [5, 5, 5, 5, 5, 5, 5],
        [1e4 + 0.5, 1e4, 1e4 - 0.25, 1e4 - 3, 0, -1e4, 1e4 - 0.5],
        [0, -1e4, -1e4, -1e4, -1e4, -1e4, -1e4],
      ];
      for (const row of rows) {
        const p = rowsOf(normaliseWith(name, t2([row]), solver))[0]!;
        // The op sees float32 inputs; so does the reference, or offsets of 1e4 alone differ by 5e-4.
        const ref = reference[name](row.map(Math.fround));
        expect(p.every(Number.isFinite), `finite: ${row.join(', ')}`).toBe(true);
        expectRows([p], [ref], 1e-5);
        expect(Math.abs(p.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual(1e-6);
        if (name !== 'softmax') {
          // Wherever the exact map is clearly zero the op must give exactly 0, not a rounding residue.
          ref.forEach((r, j) => {
            if (r === 0 && reference[name](row.map((v, i) => Math.fround(i === j ? v + 1e-3 : v)))[j] === 0) expect(p[j]).toBe(0);
          });
        }
      }
    });
  }

  it('the host and device solvers agree, and auto on wasm is the host solver', () => {
    const x = t2([...gaussianRows(30, 64, 2, 41), ...gaussianRows(5, 64, 0.05, 42)]);
    for (const name of ['sparsemax', 'entmax15'] as const) {
      const host = rowsOf(normaliseWith(name, x, 'host'));
      expectRows(rowsOf(normaliseWith(name, x, 'device')), host, 2e-6);
      expect(rowsOf(normalise(name, x))).toEqual(host);
    }
    expect(() => sparsemax(x, { solver: 'gpu' as ThresholdSolver })).toThrow(/unknown solver/);
  });

  it('sparse maps are sparse: with spread-out scores most entries are exactly zero', () => {
    const x = t2(gaussianRows(8, 50, 3, 21));
    for (const p of [sparsemax(x), entmax15(x)]) {
      const zeros = Array.from(p.dataSync()).filter((v) => v === 0).length;
      expect(zeros).toBeGreaterThan(0.5 * 8 * 50);
    }
    expect(Array.from(tf.softmax(x).dataSync()).filter((v) => v === 0).length).toBe(0);
  });

  it('normalise("softmax") is tf.softmax, and bad inputs are refused', () => {
    const x = t2(gaussianRows(3, 5, 1, 31));
    expectRows(rowsOf(normalise('softmax', x)), rowsOf(tf.softmax(x)), 0);
    expect(() => normalise('fancymax' as NormaliserName, x)).toThrow(/unknown normaliser/);
    expect(() => sparsemax(tf.zeros([2, 3, 4]) as unknown as Tensor2D)).toThrow(/2-D/);
    expect(() => normaliserJvp('entmax15', x, t2([[1, 2]]))).toThrow(/normaliserJvp/);
    expect(sparsemax(tf.zeros([3, 0]) as Tensor2D).shape).toEqual([3, 0]);
  });
});

describe('normaliser gradients', () => {
  const lossWeights = (rows: number, n: number, seed: number) => gaussianRows(rows, n, 1, seed);

  /** ∂/∂x of Σ w⊙p by tf's gradient. */
  function tfGradient(name: NormaliserName, x: number[][], w: number[][], solver: ThresholdSolver = 'auto'): number[][] {
    const wt = t2(w);
    const g = tf.grad((xt: tf.Tensor) => tf.sum(tf.mul(wt, normaliseWith(name, xt as Tensor2D, solver))))(t2(x));
    return rowsOf(g);
  }

  for (const name of NORMALISERS) {
    it(`${name}: the gradient of Σ w⊙p matches float64 central differences (3×7)`, () => {
      let checked = 0;
      for (const [seed, solver] of [[1, 'auto'], [2, 'auto'], [3, 'device']] as const) {
        const x = gaussianRows(3, 7, 1, 100 + seed);
        const w = lossWeights(3, 7, 200 + seed);
        const grad = tfGradient(name, x, w, solver);
        const eps = 1e-6;
        x.forEach((row, r) => {
          const f = reference[name];
          const loss = (v: number[]) => f(v).reduce((s, p, j) => s + p * w[r]![j]!, 0);
          const support = (v: number[]) => f(v).map((p) => p > 0).join();
          row.forEach((_, j) => {
            const plus = row.map((v, i) => (i === j ? v + eps : v));
            const minus = row.map((v, i) => (i === j ? v - eps : v));
            // A difference across a change of support measures neither one-sided derivative.
            if (support(plus) !== support(row) || support(minus) !== support(row)) return;
            const fd = (loss(plus) - loss(minus)) / (2 * eps);
            expect(Math.abs(grad[r]![j]! - fd), `${name} seed ${seed} [${r}, ${j}]: ${grad[r]![j]} vs ${fd}`).toBeLessThanOrEqual(2e-5);
            checked++;
          });
        });
      }
      expect(checked).toBeGreaterThan(0.9 * 3 * 3 * 7);
    });

    it(`${name}: normaliserJvp(p, w) is the gradient of Σ w⊙p (the Jacobian is symmetric)`, () => {
      const x = gaussianRows(5, 11, 1.5, 300);
      const w = lossWeights(5, 11, 301);
      const p = normalise(name, t2(x));
      expectRows(rowsOf(normaliserJvp(name, p, t2(w))), tfGradient(name, x, w), 1e-6);
      // Symmetry directly: u·(J v) = v·(J u).
      const u = t2(lossWeights(5, 11, 302));
      const uJv = tf.sum(tf.mul(u, normaliserJvp(name, p, t2(w)))).dataSync()[0]!;
      const vJu = tf.sum(tf.mul(t2(w), normaliserJvp(name, p, u))).dataSync()[0]!;
      expect(Math.abs(uJv - vJu)).toBeLessThanOrEqual(1e-5);
      // J·1 = 0: the output stays on the simplex.
      const j1 = Array.from(normaliserJvp(name, p, tf.onesLike(p) as Tensor2D).dataSync());
      j1.forEach((v) => expect(Math.abs(v)).toBeLessThanOrEqual(1e-6));
    });

    it(`${name}: gradients flow through attention inside tf.grads`, () => {
      // out = normalise(q·kᵀ)·v, loss Σ u⊙out. By the chain rule, with S = q·kᵀ and
      // dS = J·(u·vᵀ): dq = dS·k, dk = dSᵀ·q, dv = pᵀ·u.
      const [q, k, v, u] = [301, 302, 303, 304].map((seed) => t2(gaussianRows(6, 4, 1, seed)));
      const f = (qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor) =>
        tf.sum(tf.mul(u!, tf.matMul(normalise(name, tf.matMul(qt as Tensor2D, kt as Tensor2D, false, true)), vt as Tensor2D)));
      const [dq, dk, dv] = tf.grads(f)([q!, k!, v!]);
      const p = normalise(name, tf.matMul(q!, k!, false, true));
      const dS = normaliserJvp(name, p, tf.matMul(u!, v!, false, true));
      expectRows(rowsOf(dq!), rowsOf(tf.matMul(dS, k!)), 1e-5);
      expectRows(rowsOf(dk!), rowsOf(tf.matMul(dS, q!, true, false)), 1e-5);
      expectRows(rowsOf(dv!), rowsOf(tf.matMul(p, u!, true, false)), 1e-5);
      expect(Array.from(dq!.dataSync()).some((g) => g !== 0)).toBe(true);
    });
  }

  for (const name of NORMALISERS) {
    it(`${name}: gradient descent on the scores fits a target distribution (it can be trained through)`, () => {
      const target = t2([[0.6, 0.4, 0, 0]]);
      const loss = (x: tf.Tensor) => tf.sum(tf.square(tf.sub(normalise(name, x as Tensor2D), target)));
      const step = tf.valueAndGrad(loss);
      let x: tf.Tensor = tf.zeros([1, 4]);
      const first = tf.tidy(() => loss(x).dataSync()[0]!);
      for (let i = 0; i < 400; i++) {
        const next = tf.tidy(() => tf.sub(x, tf.mul(step(x).grad, 0.25)));
        x.dispose();
        x = next;
      }
      const last = tf.tidy(() => loss(x).dataSync()[0]!);
      // The sparse maps can reach the target's zeros; softmax only approaches them, ever more slowly.
      expect(last).toBeLessThan((name === 'softmax' ? 0.05 : 1e-3) * first);
      x.dispose();
    });
  }

  it('gradients stay finite for masked (−1e4) columns and for ties, and vanish off the support', () => {
    const x = [[0.2, -1e4, 0.2, 0.2, -1e4], [3, 3, 3, -1e4, 0]];
    const w = lossWeights(2, 5, 400);
    for (const [name, solver] of NORMALISERS.flatMap((n) => SOLVERS.map((s) => [n, s] as const))) {
      const g = tfGradient(name, x, w, solver);
      expect(g.flat().every(Number.isFinite), name).toBe(true);
      expect(Math.abs(g[0]![1]!)).toBe(0);
      expect(Math.abs(g[1]![3]!)).toBe(0);
    }
  });
});

describe('normaliser memory', () => {
  it('no tensors are left behind by forward, gradient or Jacobian products', () => {
    const x = t2(gaussianRows(4, 9, 1, 500));
    const w = t2(gaussianRows(4, 9, 1, 501));
    const run = () => {
      for (const name of NORMALISERS) {
        for (const solver of SOLVERS) normaliseWith(name, x, solver).dispose();
        const p = normalise(name, x);
        normaliserJvp(name, p, w).dispose();
        p.dispose();
        const [g] = tf.grads((xt: tf.Tensor) => tf.sum(tf.mul(w, normalise(name, xt as Tensor2D))))([x]);
        g!.dispose();
        const { value, grad } = tf.valueAndGrad((xt: tf.Tensor) => tf.sum(tf.square(normalise(name, xt as Tensor2D))))(x);
        value.dispose();
        grad.dispose();
      }
    };
    run(); // anything created once per process (kernels, constants) is created here
    const before = tf.memory().numTensors;
    run();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    w.dispose();
  });
});
