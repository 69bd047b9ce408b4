/**
 * Relevance rules, one function per layer type, all in one place. Rule sets (rulesets.ts) pick
 * among them per layer type, as Zennit's composites do. Each rule takes the layer's recorded inputs
 * and the relevance R arriving at its output, and returns the relevance of its input(s).
 *
 * Every tensor here is 2-D ([rows, features]) so products stay on wasm's fast matMul path.
 * The formulas are the authors' (github.com/hila-chefer/Transformer-Explainability, layers_ours.py
 * and layers_lrp.py); ../../../test/fixtures/golden/RULES.md states them in words.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { matmul, type Linear } from '../ops.js';

/**
 * The authors' safe_divide: a / (b + 1e-9), another 1e-9 if that is exactly 0, and 0 wherever b is
 * exactly 0. The shift is constant, not sign-aware: results match theirs only if we keep it so.
 */
export function safeDivide(a: Tensor, b: Tensor): Tensor {
  return tf.tidy(() => {
    let den = tf.add(b, 1e-9);
    den = tf.add(den, tf.mul(tf.cast(tf.equal(den, 0), 'float32'), 1e-9));
    return tf.mul(tf.div(a, den), tf.cast(tf.notEqual(b, 0), 'float32'));
  });
}

const T = (x: Tensor2D) => tf.transpose(x) as Tensor2D;

/** Positive and negative parts of a tensor: x = x⁺ + x⁻. */
function parts<X extends Tensor>(x: X): [X, X] {
  const p = tf.relu(x) as X;
  return [p, tf.sub(x, p) as X];
}

/**
 * LRP-α1β0 with one shared denominator (the paper's Linear rule, layers_ours.py): the positive
 * contributions x⁺·w⁺ and x⁻·w⁻ share R_j in proportion. Conserves R unless an output has no
 * positive contribution at all. The bias is not given relevance.
 */
export function linearAlpha1Beta0(layer: Linear, x: Tensor2D, R: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const [wp, wn] = parts(layer.wT);
    const [xp, xn] = parts(x);
    const S = safeDivide(R, tf.add(matmul(xp, wp), matmul(xn, wn))) as Tensor2D;
    return tf.add(tf.mul(xp, matmul(S, T(wp))), tf.mul(xn, matmul(S, T(wn)))) as Tensor2D;
  });
}

/**
 * The original-LRP baseline's Linear rule (layers_lrp.py): the same two positive groups, each
 * normalised on its own, so each receives all of R_j and the layer doubles relevance whenever both
 * groups are present. Kept exactly, because the paper's "LRP" baseline numbers come from it.
 */
export function linearAlpha1Beta0Separate(layer: Linear, x: Tensor2D, R: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const [wp, wn] = parts(layer.wT);
    const [xp, xn] = parts(x);
    const S1 = safeDivide(R, matmul(xp, wp)) as Tensor2D;
    const S2 = safeDivide(R, matmul(xn, wn)) as Tensor2D;
    return tf.add(tf.mul(xp, matmul(S1, T(wp))), tf.mul(xn, matmul(S2, T(wn)))) as Tensor2D;
  });
}

/**
 * The bounded-input zᴮ rule for the first layer (pixels): inputs live in [L, H], the minimum and
 * maximum over each whole sample. `x` is the patch matrix [B·N, C·p·p] (the patch-embedding
 * convolution has stride = kernel, so it is exactly this Linear and its transpose is exactly
 * convᵀ). Plain division with +1e-9, no bias, as the authors' Conv2d.relprop.
 */
export function patchZB(layer: Linear, x: Tensor2D, R: Tensor2D, batch: number): Tensor2D {
  return tf.tidy(() => {
    const [wp, wn] = parts(layer.wT);
    const perSample = tf.reshape(x, [batch, -1]);
    const rows = x.shape[0] / batch;
    const spread = (v: Tensor) => tf.reshape(tf.tile(tf.reshape(v, [batch, 1]), [1, rows * x.shape[1]]), x.shape) as Tensor2D;
    const L = spread(tf.min(perSample, 1));
    const H = spread(tf.max(perSample, 1));
    const Za = tf.add(tf.sub(tf.sub(matmul(x, layer.wT), matmul(L, wp)), matmul(H, wn)), 1e-9);
    const S = tf.div(R, Za) as Tensor2D;
    return tf.sub(tf.sub(tf.mul(x, matmul(S, T(layer.wT))), tf.mul(L, matmul(S, T(wp)))), tf.mul(H, matmul(S, T(wn)))) as Tensor2D;
  });
}

/** Per-sample totals of a [B·rows, cols] tensor, as [B, 1]. */
function sampleSums(t: Tensor, batch: number): Tensor2D {
  return tf.sum(tf.reshape(t, [batch, -1]), 1, true) as Tensor2D;
}

/** [B, 1] per-sample values → one per row of a [B·rows, cols] tensor. */
function perRow(v: Tensor2D, like: Tensor2D, batch: number): Tensor2D {
  const rows = like.shape[0] / batch;
  return tf.reshape(tf.tile(v, [1, rows]), [like.shape[0], 1]) as Tensor2D;
}

/** The z-rule for y = x₁ + x₂: each operand gets R in proportion to its share of the sum. */
export function addZ(x1: Tensor2D, x2: Tensor2D, R: Tensor2D): [Tensor2D, Tensor2D] {
  return tf.tidy(() => {
    const S = safeDivide(R, tf.add(x1, x2));
    return [tf.mul(x1, S) as Tensor2D, tf.mul(x2, S) as Tensor2D];
  });
}

/**
 * The paper's Add rule: the z-rule, then each operand's map rescaled so the two totals are
 * |A|/(|A|+|B|) and |B|/(|A|+|B|) of ΣR, per sample. This restores conservation across skip
 * connections; when an operand's z-rule total A is negative the factor is negative and its whole
 * map flips sign, exactly as in the authors' code.
 */
export function addRenormalised(x1: Tensor2D, x2: Tensor2D, R: Tensor2D, batch: number): [Tensor2D, Tensor2D] {
  return tf.tidy(() => {
    const [a, b] = addZ(x1, x2, R);
    const A = sampleSums(a, batch);
    const B = sampleSums(b, batch);
    const total = sampleSums(R, batch);
    const denom = tf.add(tf.abs(A), tf.abs(B));
    const aFact = tf.mul(safeDivide(tf.abs(A), denom), total);
    const bFact = tf.mul(safeDivide(tf.abs(B), denom), total);
    return [
      tf.mul(a, perRow(safeDivide(aFact, A) as Tensor2D, a, batch)) as Tensor2D,
      tf.mul(b, perRow(safeDivide(bFact, B) as Tensor2D, b, batch)) as Tensor2D,
    ];
  });
}

/** A fork (residual or q/k/v): the branches' relevance adds up (0 where the input is exactly 0). */
export function cloneSum(x: Tensor2D, branches: readonly Tensor2D[]): Tensor2D {
  return tf.tidy(() => tf.mul(x, tf.addN(branches.map((r) => safeDivide(r, x)))) as Tensor2D);
}

/**
 * Gradient × input on both operands of a product Z = a·b (the attention matmuls A·V and Q·Kᵀ):
 * S = R/Z, R_a = a ⊙ (S bᵀ), R_b = b ⊙ (aᵀ S). Each operand receives all of R; the rule set
 * says what share each keeps.
 */
export function matmulGradInput(a: Tensor2D, b: Tensor2D, R: Tensor2D): [Tensor2D, Tensor2D] {
  return tf.tidy(() => {
    const S = safeDivide(R, matmul(a, b)) as Tensor2D;
    return [tf.mul(a, matmul(S, T(b))) as Tensor2D, tf.mul(b, matmul(T(a), S)) as Tensor2D];
  });
}

/** The CLS pooling: R is placed on the pooled rows (z-rule, X·R/X, 0 where X is exactly 0). */
export function poolZ(pooled: Tensor2D, R: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.mul(pooled, safeDivide(R, pooled)) as Tensor2D);
}

/** Layers the paper passes relevance through unchanged: LayerNorm, GELU, softmax, dropout, tanh. */
export function identity(R: Tensor2D): Tensor2D {
  return R;
}
