/**
 * Relevance rules, one function per layer type, all in one place. Rule sets (rulesets.ts) pick
 * among them per layer type, as Zennit's composites do. Each rule takes the layer's recorded inputs
 * and the relevance R arriving at its output, and returns the relevance of its input(s).
 *
 * Every tensor here is 2-D ([rows, features]) so products stay on wasm's fast matMul path.
 * The first group are the authors' formulas (github.com/hila-chefer/Transformer-Explainability,
 * layers_ours.py and layers_lrp.py); ../../../test/fixtures/golden/RULES.md states them in words.
 * AttnLRP's and CP-LRP's rules follow them, at the end of the file.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { matmul, matmulBT, type LayerNorm, type Linear } from '../ops.js';
import { safeDivide, signSplitMul } from '../fused.js';
import { matMulSplit } from '../parallel.js';
import { normaliserJvp, type NormaliserName } from '../normalisers.js';

export { safeDivide } from '../fused.js';

const T = (x: Tensor2D) => tf.transpose(x) as Tensor2D;

/** Positive and negative parts of a tensor: x = x⁺ + x⁻. (Not tf.minimum(x, 0): on wasm a scalar Minimum is ~60× slower than a Sub.) */
function parts<X extends Tensor>(x: X): [X, X] {
  const p = tf.relu(x) as X;
  return [p, tf.sub(x, p) as X];
}

/**
 * S·W⁺ᵀ and S·W⁻ᵀ for a layer's [in, out] weight parts, as (W±·Sᵀ)ᵀ: the weights are the products'
 * left operands, read in place, and only S and the two results are transposed (see matmulBT).
 */
function backParts(S: Tensor2D, wp: Tensor2D, wn: Tensor2D): [Tensor2D, Tensor2D] {
  if (S.shape[0] * (S.shape[1] + wp.shape[0]) >= wp.size) return [tf.matMul(S, T(wp)), tf.matMul(S, T(wn))];
  const St = T(S);
  return [T(matMulSplit(wp, St, 'rows')), T(matMulSplit(wn, St, 'rows'))];
}

/**
 * LRP-α1β0 with one shared denominator (the paper's Linear rule, layers_ours.py): the positive
 * contributions x⁺·w⁺ and x⁻·w⁻ share R_j in proportion. Conserves R unless an output has no
 * positive contribution at all. The bias is not given relevance.
 */
export function linearAlpha1Beta0(layer: Linear, x: Tensor2D, R: Tensor2D, y?: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const [wp, wn] = parts(layer.wT);
    const S = safeDivide(R, positiveContributions(layer, x, wp, wn, y)) as Tensor2D;
    const [toPos, toNeg] = backParts(S, wp, wn);
    return signSplitMul(x, toPos, toNeg) as Tensor2D;
  });
}

/**
 * Z = x⁺·W⁺ + x⁻·W⁻, the positive contributions to each output. Given the layer's recorded output
 * y = x·W + b, one product does: x·W = x⁺W⁺ + x⁺W⁻ + x⁻W⁺ + x⁻W⁻ and |x|·|W| = x⁺W⁺ − x⁺W⁻ − x⁻W⁺ + x⁻W⁻,
 * so Z = (x·W + |x|·|W|)/2. Z is a sum of non-negative terms and |x|·|W| ≥ |x·W|, so the sum
 * cancels only where the negative contributions dwarf the positive ones; the float32 difference
 * from the two-product form is ~1e-6 relative on the golden models and ViT-B/16 (|x|·|W|/Z ≤ 12
 * there), and a Z that is exactly 0 comes with products that are exactly 0, so nothing reaches R_x
 * through it either way. Each product whose right operand is a weight derived on the fly repacks
 * it (≈ half a product more on wasm), so one product instead of two saves three quarters of Z.
 */
function positiveContributions(layer: Linear, x: Tensor2D, wp: Tensor2D, wn: Tensor2D, y?: Tensor2D): Tensor2D {
  if (!y) {
    const [xp, xn] = parts(x);
    return tf.add(tf.matMul(xp, wp), tf.matMul(xn, wn)) as Tensor2D;
  }
  const xw = layer.b ? tf.sub(y, layer.b) : y;
  return tf.mul(tf.add(xw, matMulSplit(tf.abs(x) as Tensor2D, tf.abs(layer.wT) as Tensor2D, 'columns')), 0.5) as Tensor2D;
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
    const S1 = safeDivide(R, tf.matMul(xp, wp)) as Tensor2D;
    const S2 = safeDivide(R, tf.matMul(xn, wn)) as Tensor2D;
    return signSplitMul(x, matmulBT(S1, wp), matmulBT(S2, wn)) as Tensor2D;
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
    const Za = tf.add(tf.sub(tf.sub(tf.matMul(x, layer.wT), tf.matMul(L, wp)), tf.matMul(H, wn)), 1e-9);
    const S = tf.div(R, Za) as Tensor2D;
    const [toPos, toNeg] = backParts(S, wp, wn);
    return tf.sub(tf.sub(tf.mul(x, matmulBT(S, layer.wT)), tf.mul(L, toPos)), tf.mul(H, toNeg)) as Tensor2D;
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

// ---------------------------------------------------------------------------------------------------
// Rules of AttnLRP (Achtibat et al., ICML 2024; reference implementation LXT,
// github.com/rachtibat/LRP-eXplains-Transformers, lxt/explicit/functional.py and lxt/efficient) and
// of conservative propagation, CP-LRP (Ali et al., ICML 2022; github.com/AmeenAli/XAI_Transformers).
// They are all ε-rules on a layer made linear by holding some of its factors constant, so each one,
// with ε → 0, hands every input x ⊙ (a modified gradient); test/attnlrp-cplrp.test.ts checks that
// against tf.grads of a model with exactly those modifications.

/**
 * z + ε·sign(z), with sign(0) = +1: the ε-rule's stabiliser (LXT's linear rule). Sign-aware, unlike
 * the authors' safeDivide shift, so a denominator near 0 is pushed away from 0, never onto it.
 */
export function stabilise(z: Tensor, epsilon: number): Tensor {
  return tf.tidy(() => tf.add(z, tf.mul(tf.sub(tf.mul(tf.cast(tf.greaterEqual(z, 0), 'float32'), 2), 1), epsilon)));
}

/**
 * LRP-ε for y = x·W + b (AttnLRP's Linear rule, LXT linear_epsilon): R_x = x ⊙ (R ⊘ (y + ε))·Wᵀ. The
 * denominator is the layer's whole output, bias included, so the bias absorbs its share: the rule
 * conserves exactly (up to ε) when the bias is zero.
 */
export function linearEpsilon(layer: Linear, x: Tensor2D, R: Tensor2D, epsilon: number, y?: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    // The forward pass's own output when the caller has it: the same op on the same operands.
    const z = y ?? (layer.b ? tf.add(tf.matMul(x, layer.wT), layer.b) : tf.matMul(x, layer.wT));
    const S = tf.div(R, stabilise(z, epsilon)) as Tensor2D;
    return tf.mul(x, matmulBT(S, layer.wT)) as Tensor2D;
  });
}

/**
 * LRP-γ (Montavon et al. 2019), for inputs of either sign as zennit's Gamma rule: where the output
 * z = x·W + b is positive, the contributions that push it up (x⁺w⁺, x⁻w⁻, b⁺) are amplified by
 * 1 + γ, i.e. z_γ = x⁺·(W + γW⁺) + x⁻·(W + γW⁻) + b + γb⁺, and where it is negative those that push it
 * down; R_x = x ⊙ (∂z_γ/∂x)ᵀ·(R ⊘ z_γ). z_γ keeps z's sign with |z_γ| ≥ |z|, so R ⊘ z_γ stays as
 * bounded as R ⊘ z — Ali et al.'s code amplifies W⁺ whatever x's sign, and on inputs of both signs
 * (every LayerNorm output) its z_γ can cross 0: it lost 1.5 % of the logit on a zero-bias ViT. Still
 * conservative with zero bias; γ = 0 is the ε-rule.
 */
export function linearGamma(layer: Linear, x: Tensor2D, R: Tensor2D, gamma: number, epsilon: number, y?: Tensor2D): Tensor2D {
  if (gamma === 0) return linearEpsilon(layer, x, R, epsilon, y);
  return tf.tidy(() => {
    const [wPos, wNeg] = parts(layer.wT);
    const up = tf.add(layer.wT, tf.mul(wPos, gamma)) as Tensor2D;
    const down = tf.add(layer.wT, tf.mul(wNeg, gamma)) as Tensor2D;
    const [xp, xn] = parts(x);
    const z = y ?? (layer.b ? tf.add(tf.matMul(x, layer.wT), layer.b) : tf.matMul(x, layer.wT));
    const positive = tf.cast(tf.greaterEqual(z, 0), 'float32');
    const [bPos, bNeg] = layer.b ? parts(layer.b) : [null, null];
    const bias = (part: Tensor | null) => (layer.b ? tf.add(layer.b, tf.mul(part!, gamma)) : null);
    const withBias = (t: Tensor, b: Tensor | null) => (b ? tf.add(t, b) : t);
    // Outputs with z ≥ 0 favour x⁺w⁺ and x⁻w⁻; outputs with z < 0 favour x⁺w⁻ and x⁻w⁺.
    const zUp = withBias(tf.add(tf.matMul(xp, up), tf.matMul(xn, down)), bias(bPos));
    const zDown = withBias(tf.add(tf.matMul(xp, down), tf.matMul(xn, up)), bias(bNeg));
    const sUp = tf.mul(tf.div(R, stabilise(zUp, epsilon)), positive) as Tensor2D;
    const sDown = tf.mul(tf.div(R, stabilise(zDown, epsilon)), tf.sub(1, positive)) as Tensor2D;
    const [upUp, upDown] = backParts(sUp, up, down);
    const [downUp, downDown] = backParts(sDown, up, down);
    const toPos = tf.add(upUp, downDown);
    const toNeg = tf.add(upDown, downUp);
    return tf.add(tf.mul(xp, toPos), tf.mul(xn, toNeg)) as Tensor2D;
  });
}

/**
 * LRP-ε for y = x₁ + x₂ (LXT add2): each summand gets R in proportion to its contribution,
 * R_k = x_k ⊙ R ⊘ (x₁ + x₂ + ε). No per-sample rescaling: the two shares add up to R.
 */
export function addEpsilon(x1: Tensor2D, x2: Tensor2D, R: Tensor2D, epsilon: number): [Tensor2D, Tensor2D] {
  return tf.tidy(() => {
    const S = tf.div(R, stabilise(tf.add(x1, x2), epsilon));
    return [tf.mul(x1, S) as Tensor2D, tf.mul(x2, S) as Tensor2D];
  });
}

/** A fork seen as the gradient sees it: the branches' relevance adds up (no division by x). */
export function cloneAdd(_x: Tensor2D, branches: readonly Tensor2D[]): Tensor2D {
  return tf.tidy(() => (branches.length === 1 ? branches[0]!.clone() : tf.addN([...branches])) as Tensor2D);
}

/** Selecting rows is linear with unit weights: the selected rows keep R exactly. */
export function poolSelect(_pooled: Tensor2D, R: Tensor2D): Tensor2D {
  return R;
}

/**
 * The ε-rule on both operands of a product Z = a·b (AttnLRP's matmul rule, LXT matmul_fn before its
 * uniform split): S = R ⊘ (Z + ε), R_a = a ⊙ (S·bᵀ), R_b = b ⊙ (aᵀ·S). Z is bilinear, so each
 * operand alone receives all of R (Σ R_a = Σ R_b = Σ R up to ε); the rule set's share (½ each, the
 * uniform rule) makes the pair conservative.
 */
export function matmulEpsilon(a: Tensor2D, b: Tensor2D, R: Tensor2D, epsilon: number): [Tensor2D, Tensor2D] {
  return tf.tidy(() => {
    const S = tf.div(R, stabilise(matmul(a, b), epsilon)) as Tensor2D;
    return [tf.mul(a, matmul(S, T(b))) as Tensor2D, tf.mul(b, matmul(T(a), S)) as Tensor2D];
  });
}

/** What a normaliser (softmax, sparsemax, 1.5-entmax) saw and produced, for one (sample, head). */
export interface NormaliserRecord {
  /** Its input: scaled Q·Kᵀ plus any additive mask, [T, T]. */
  readonly scores: Tensor2D;
  /** Its output A, [T, T]. */
  readonly probs: Tensor2D;
  readonly normaliser: NormaliserName;
}

/**
 * AttnLRP's softmax rule (Proposition 3.1; LXT softmax_fn): a first-order Taylor decomposition at
 * the input x itself, R_x = x ⊙ (R − s·ΣR) with sums per row. That is x ⊙ Jᵀ·(R ⊘ s), J the
 * softmax Jacobian: gradient × input when R = s ⊙ g. It is NOT conservative: per row
 * Σ R_x = Σ_i x_i·R_i − (Σ_i x_i·s_i)·ΣR, the rest is the Taylor expansion's bias term, which
 * absorbs it (zero relevance in a row whose R is proportional to s). Masked scores (−1e4, −1e9)
 * have s = 0 and R = 0 exactly, so they get 0, as LXT's replacement of −∞ by 0 gives.
 * The sparse normalisers are piecewise linear or smooth the same way: the same decomposition,
 * x ⊙ J·(R ⊘ p) with J their Jacobian and 0 where p = 0.
 */
export function softmaxTaylor(R: Tensor2D, rec: NormaliserRecord): Tensor2D {
  return tf.tidy(() => {
    const x = rec.scores;
    if (rec.normaliser === 'softmax') {
      return tf.mul(x, tf.sub(R, tf.mul(rec.probs, tf.sum(R, 1, true)))) as Tensor2D;
    }
    const support = tf.greater(rec.probs, 0);
    // R / p off the support is 0/0; `where` keeps only the support's quotients.
    const ratio = tf.where(support, tf.div(R, tf.where(support, rec.probs, tf.onesLike(rec.probs))), tf.zerosLike(R)) as Tensor2D;
    return tf.mul(x, normaliserJvp(rec.normaliser, rec.probs, ratio)) as Tensor2D;
  });
}

/** What the pooler's activation (BERT's tanh, DistilBERT's ReLU) saw and produced: y = f(z), [B, D]. */
export interface PoolerActivationRecord {
  /** Its input z, the pooler dense layer's output. */
  readonly input: Tensor2D;
  /** Its output y, the classifier's input. */
  readonly output: Tensor2D;
  readonly activation: 'tanh' | 'relu';
}

/**
 * An elementwise activation y = f(z) crossed by its own gradient, as gradient × input crosses it:
 * Ali et al.'s code (XAI_Transformers, forward_and_explain) through the pooler's tanh,
 * `((pooled.grad) * pooled).sum().backward()`. The relevance arriving is R = y ⊙ c (c the gradient
 * reaching y, for the ε-rules above it), and z receives z ⊙ f'(z) ⊙ c = z ⊙ f'(z) ⊙ R ⊘ y, so the
 * ε-rule on the dense layer below hands its input x ⊙ Wᵀ(f'(z) ⊙ c): the plain gradient. For ReLU
 * z·f'(z) = f(z) and this is the identity rule; for tanh it is not conservative (Σ z·tanh'(z)·c is
 * not Σ tanh(z)·c). tanh' = 1 − y², from the recorded output, as PyTorch's tanh backward computes it.
 */
export function activationGradient(R: Tensor2D, rec: PoolerActivationRecord, epsilon: number): Tensor2D {
  return tf.tidy(() => {
    const y = rec.output;
    const slope = rec.activation === 'tanh' ? tf.sub(1, tf.square(y)) : tf.cast(tf.greater(rec.input, 0), 'float32');
    return tf.mul(tf.mul(rec.input, slope), tf.div(R, stabilise(y, epsilon))) as Tensor2D;
  });
}

/** What a LayerNorm saw and produced: input and output [rows, D], and its parameters. */
export interface LayerNormRecord {
  readonly input: Tensor2D;
  readonly output: Tensor2D;
  readonly norm: LayerNorm;
}

/**
 * LayerNorm with its standard deviation held constant (AttnLRP Proposition 3.4 / LXT layer_norm;
 * CP-LRP's LN-rule as Ali et al. evaluate it, `detach_KQ_LNorm_Norm`: σ detached, the mean kept).
 * The layer is then the linear map y = γ ⊙ (x − mean(x))/σ + β, and the ε-rule on it gives
 * R_x = x ⊙ (u − mean(u)) with u = γ ⊙ R ⊘ (σ·(y + ε)), per row. Σ R_x = Σ (y − β) ⊙ R ⊘ (y + ε):
 * conservative when β = 0 (the centring is kept, so Σ_i (x_i − μ) = 0 does the work). σ is
 * recomputed from the input exactly as the forward computed it.
 */
export function layerNormConstantStd(R: Tensor2D, rec: LayerNormRecord, epsilon: number): Tensor2D {
  return tf.tidy(() => {
    const x = rec.input;
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const invStd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), rec.norm.eps));
    const u = tf.mul(tf.mul(tf.div(R, stabilise(rec.output, epsilon)), rec.norm.gamma), invStd);
    return tf.mul(x, tf.sub(u, tf.mean(u, -1, true))) as Tensor2D;
  });
}
