/**
 * Each relevance rule on an example small enough to work out by hand (the golden tests check the
 * same rules on a real model; these pin down each formula on its own).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { makeLinear } from '../src/core/models/weights.js';
import {
  safeDivide, linearAlpha1Beta0, linearAlpha1Beta0Separate, patchZB, addZ, addRenormalised, cloneSum, matmulGradInput, poolZ,
} from '../src/core/relevance/rules.js';

beforeAll(async () => {
  await ensureBackend();
});

const t2 = (rows: number[][]) => tf.tensor2d(rows);
const values = (t: tf.Tensor) => Array.from(t.dataSync());
function expectValues(t: tf.Tensor, expected: number[], digits = 6) {
  const v = values(t);
  expect(v.length).toBe(expected.length);
  v.forEach((x, i) => expect(x, `element ${i}`).toBeCloseTo(expected[i]!, digits));
}

// W (PyTorch layout [out, in]) = [[2, −1], [−3, 0.5]], x = [1, −2].
// Output 0: positive contributions 1·2 (x⁺w⁺) and −2·−1 (x⁻w⁻), Z = 4.
// Output 1: 1·−3 and −2·0.5 are both negative: no positive contribution, Z = 0.
const W = () => makeLinear('fc', [Float32Array.from([2, -1, -3, 0.5])], [Float32Array.from([0.7, -0.2])], 2);

describe('relevance rules, by hand', () => {
  it('safeDivide: b + 1e-9 shift, 0 where b is exactly 0, another 1e-9 when the shifted sum is 0', () => {
    expectValues(safeDivide(tf.tensor1d([1, 1, 3]), tf.tensor1d([2, 0, -1])), [0.5, 0, -3]);
    expect(values(safeDivide(tf.tensor1d([1]), tf.tensor1d([-1e-9])))[0]).toBeCloseTo(1e9, -3);
  });

  it('LRP-α1β0 (paper): output 0 shares R between its two positive contributions; output 1 has none and its R is lost; the bias gets nothing', () => {
    expectValues(linearAlpha1Beta0(W(), t2([[1, -2]]), t2([[1, 1]])), [0.5, 0.5]);
  });

  it('LRP-α1β0, separately normalised (baseline): each sign group receives all of R_j, so relevance doubles', () => {
    expectValues(linearAlpha1Beta0Separate(W(), t2([[1, -2]]), t2([[1, 1]])), [1, 1]);
  });

  it('zᴮ on the patch embedding: bounds are the sample\'s min (−1) and max (0.5); conserves', () => {
    // Z = 0.5·1 + (−1)·2 = −1.5; Za = Z − L·Σw⁺ − H·Σw⁻ = −1.5 + 3 − 0 = 1.5.
    // R_in = [0.5·1/1.5 + 1·1/1.5, −1·2/1.5 + 1·2/1.5] = [1, 0].
    const layer = makeLinear('patch', [Float32Array.from([1, 2])], [null], 2);
    expectValues(patchZB(layer, t2([[0.5, -1]]), t2([[1]]), 1), [1, 0]);
  });

  it('z-rule Add: each operand in proportion to its share of the sum (baseline)', () => {
    const [a, b] = addZ(t2([[-1, 0.2]]), t2([[3, 0.8]]), t2([[1, 1]]));
    expectValues(a, [-0.5, 0.2]);
    expectValues(b, [1.5, 0.8]);
  });

  it('renormalised Add (paper): totals |A|/(|A|+|B|)·ΣR and |B|/(|A|+|B|)·ΣR; A < 0 flips the operand\'s whole map', () => {
    // z-rule: a = [−0.5, 0.2] (A = −0.3), b = [1.5, 0.8] (B = 2.3), ΣR = 2.
    // a ← a · (0.3/2.6·2)/(−0.3) = a · (−0.769231); b ← b · (2.3/2.6·2)/2.3 = b · 0.769231.
    const [a, b] = addRenormalised(t2([[-1, 0.2]]), t2([[3, 0.8]]), t2([[1, 1]]), 1);
    expectValues(a, [0.384615, -0.153846]);
    expectValues(b, [1.153846, 0.615385]);
    expect(values(a).reduce((s, x) => s + x) + values(b).reduce((s, x) => s + x)).toBeCloseTo(2, 6);
  });

  it('renormalised Add works per sample in a batch (rows 0–1 sample 0, rows 2–3 sample 1)', () => {
    const x1 = t2([[-1, 0.2], [0, 0], [2, 2], [1, 1]]);
    const x2 = t2([[3, 0.8], [0, 0], [1, 1], [0, 1]]);
    const R = t2([[1, 1], [0, 0], [1, 0], [0, 1]]);
    const [a] = addRenormalised(x1, x2, R, 2);
    const [single] = addRenormalised(t2([[2, 2], [1, 1]]), t2([[1, 1], [0, 1]]), t2([[1, 0], [0, 1]]), 1);
    expectValues(tf.slice(a, [2, 0], [2, 2]), values(single));
    expectValues(tf.slice(a, [0, 0], [1, 2]), [0.384615, -0.153846]);
  });

  it('Clone sums the branches, except where the input is exactly 0', () => {
    expectValues(cloneSum(t2([[1, 0]]), [t2([[2, 3]]), t2([[1, 1]])]), [3, 0]);
  });

  it('attention matmul: gradient × input hands all of R to each operand', () => {
    // Z = [1 2]·[3 4]ᵀ = 11, S = 1/11; R_a = a ⊙ S·bᵀ = [3, 8]/11; R_b = b ⊙ aᵀ·S = [3, 8]ᵀ/11.
    const [ra, rb] = matmulGradInput(t2([[1, 2]]), t2([[3], [4]]), t2([[1]]));
    expectValues(ra, [3 / 11, 8 / 11]);
    expectValues(rb, [3 / 11, 8 / 11]);
  });

  it('CLS pooling (z-rule on the pooled rows)', () => {
    expectValues(poolZ(t2([[2, 0]]), t2([[1, 1]])), [1, 0]);
  });
});
