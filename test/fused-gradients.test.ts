/**
 * Hand-written backward pieces on the fast paths: GELU's gradient (its Erf and Exp on ONNX Runtime's
 * kernels when installed) against float64, and the sparse maps' fused Jacobian products
 * (src/core/fused.ts) against the composite ops, NaN and padding rows included.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { sparseJvp } from '../src/core/fused.js';
import { geluBackward } from '../src/core/ops.js';
import { sparsemax, entmax15 } from '../src/core/normalisers.js';

beforeAll(async () => {
  expect(await ensureBackend('wasm')).toBe('wasm');
});

/** The composite form, run op by op on the same backend (the fused kernels only take float32 of equal shapes). */
function composite(fn: () => tf.Tensor): Float32Array {
  const saved = tf.getBackend();
  tf.setBackend('cpu');
  try {
    return fn().dataSync() as Float32Array;
  } finally {
    tf.setBackend(saved);
  }
}

/** Φ(x) in float64 from the series erf(z) = 2/√π Σ (−1)ⁿ z^(2n+1) / (n!(2n+1)), for |x| ≤ 6. */
function phi64(x: number): number {
  const z = x / Math.SQRT2;
  let term = z;
  let sum = z;
  for (let n = 1; n < 400; n++) {
    term *= (-z * z) / n;
    sum += term / (2 * n + 1);
  }
  return 0.5 * (1 + (2 / Math.sqrt(Math.PI)) * sum);
}

describe('backward kernels', () => {
  it("geluBackward is dy ⊙ (Φ(x) + x·φ(x)) to float32 precision, from −10 to 10", () => {
    const xs = Array.from({ length: 2001 }, (_, i) => Math.fround(-10 + i / 100));
    const dy = xs.map((_, i) => Math.fround(Math.cos(i)));
    const got = geluBackward(tf.tensor1d(xs), tf.tensor1d(dy)).dataSync();
    let worst = 0;
    xs.forEach((x, i) => {
      // The float64 reference where the series converges; beyond ±6, Φ is 0 or 1 to float32.
      const cdf = Math.abs(x) <= 6 ? phi64(x) : x > 0 ? 1 : 0;
      const want = dy[i]! * (cdf + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI));
      worst = Math.max(worst, Math.abs(got[i]! - want));
    });
    expect(worst).toBeLessThan(3e-7);
    // And the composite tfjs form agrees with it.
    const x = tf.tensor2d(xs.slice(0, 2000), [40, 50]);
    const d = tf.tensor2d(dy.slice(0, 2000), [40, 50]);
    const fused = geluBackward(x, d).dataSync();
    const ops = composite(() => geluBackward(tf.tensor2d(xs.slice(0, 2000), [40, 50]), tf.tensor2d(dy.slice(0, 2000), [40, 50])));
    for (let i = 0; i < fused.length; i++) expect(Math.abs(fused[i]! - ops[i]!)).toBeLessThan(5e-7);
  });

  it('sparseJvp equals the composite Jacobian product for sparsemax and 1.5-entmax, rows of NaN and zeros included', () => {
    const rows = 24;
    const n = 33;
    const scores = tf.tensor2d(Float32Array.from({ length: rows * n }, (_, i) => Math.fround(3 * Math.sin(i * 1.7) + Math.cos(i * 0.3))), [rows, n]);
    const v = Float32Array.from({ length: rows * n }, (_, i) => Math.fround(Math.sin(i * 0.9)));
    for (const entmax of [false, true]) {
      const p = (entmax ? entmax15(scores) : sparsemax(scores)).dataSync().slice();
      p.fill(0, 0, n); // a padding row: no support
      p.fill(NaN, n, 2 * n); // a row with no meaningful distribution
      const fused = sparseJvp(tf.tensor2d(p, [rows, n]), tf.tensor2d(v, [rows, n]), entmax).dataSync();
      const ops = composite(() => sparseJvp(tf.tensor2d(p, [rows, n]), tf.tensor2d(v, [rows, n]), entmax));
      for (let i = 0; i < rows * n; i++) {
        if (Number.isNaN(ops[i]!)) expect(fused[i], `entry ${i}`).toBeNaN();
        else expect(Math.abs(fused[i]! - ops[i]!), `entry ${i}`).toBeLessThan(1e-6);
      }
      // The padding row gets exact zeros; a real row's product sums to 0 (it stays on the simplex's tangent).
      expect(Array.from(fused.subarray(0, n)).every((x) => x === 0)).toBe(true);
      const row = Array.from(fused.subarray(5 * n, 6 * n));
      expect(row.some((x) => x !== 0)).toBe(true);
      expect(Math.abs(row.reduce((s, x) => s + x, 0))).toBeLessThan(1e-5);
    }
  });
});
