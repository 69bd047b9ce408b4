/**
 * AttnLRP (Achtibat et al. 2024) and CP-LRP (Ali et al. 2022) as rule sets: each rule against a hand
 * computation, conservation on zero-bias ViT / DeiT / BERT / DistilBERT models at every boundary the
 * rules claim, and each method's defining identity with gradient × input of a modified model.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { makeLayerNorm, makeLinear } from '../src/core/models/weights.js';
import { buildBertWeights, normals, randomViT, rng } from '../src/core/models/random.js';
import type { ViTConfig, ViTModel, ViTRecord } from '../src/core/models/vit.js';
import { BertModel, type BertConfig, type BertRecord, type BertWeights } from '../src/core/models/bert.js';
import type { ForwardResult, ModelInput, TokenInput } from '../src/core/models/types.js';
import { ATTNLRP_RULES, CP_LRP_RULES, attnLrpRules, cpLrpRules, getRuleSet, type RuleSet } from '../src/core/relevance/rulesets.js';
import {
  activationGradient, addEpsilon, layerNormConstantStd, linearEpsilon, linearGamma, matmulEpsilon, softmaxTaylor, stabilise,
} from '../src/core/relevance/rules.js';
import { conservationReport, conservationViolations, type LedgerEntry } from '../src/core/relevance/ledger.js';
import { tensorsOf } from '../src/core/context.js';
import { relativeError } from './helpers/golden.js';
import { explain } from '../src/core/explain.js';
import { normalise } from '../src/core/normalisers.js';

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

describe('AttnLRP and CP-LRP rules, by hand', () => {
  // W (PyTorch layout [out, in]) = [[2, −1], [−3, 0.5]], b = [0.5, 0], x = [1, −2].
  // z = [2·1 + (−1)(−2) + 0.5, −3·1 + 0.5·(−2)] = [4.5, −4].
  const W = () => makeLinear('fc', [Float32Array.from([2, -1, -3, 0.5])], [Float32Array.from([0.5, 0])], 2);

  it('stabiliser: z + ε·sign(z), with sign(0) = +1', () => {
    expectValues(stabilise(tf.tensor1d([2, -2, 0]), 0.5), [2.5, -2.5, 0.5]);
  });

  it('ε-rule Linear: R_x = x ⊙ Wᵀ(R ⊘ (z + ε)); the bias keeps its share', () => {
    // R = [9, 2], ε = 0.5: S = [9/5, 2/−4.5]; R_x1 = 1·(2·1.8 − 3·(−0.4444)) = 4.93333,
    // R_x2 = −2·(−1·1.8 + 0.5·(−0.4444)) = 4.04444.
    expectValues(linearEpsilon(W(), t2([[1, -2]]), t2([[9, 2]]), 0.5), [4.933333, 4.044444], 5);
    // ε → 0: output 0 passes (2/4.5)·R and (2/4.5)·R to x1, x2 (its bias 0.5 keeps 0.5/4.5); output 1 has
    // no bias and passes all of R (x1: −3/−4, x2: −1/−4).
    expectValues(linearEpsilon(W(), t2([[1, -2]]), t2([[9, 0]]), 1e-9), [4, 4], 5);
    expectValues(linearEpsilon(W(), t2([[1, -2]]), t2([[0, 8]]), 1e-9), [6, 2], 5);
  });

  it('LRP-γ Linear (CP-LRP option): the contributions agreeing with z\'s sign amplified by 1 + γ', () => {
    // W = [[2, −1]], no bias, x = [1, 1]: z = 2 − 1 = 1 > 0. γ = 1: z_γ = 1·(2 + 2) + 1·(−1) = 3, so
    // R = 1 gives [4/3, −1/3] (LRP-0: [2, −1]); still Σ = 1.
    const one = makeLinear('fc', [Float32Array.from([2, -1])], [null], 2);
    expectValues(linearGamma(one, t2([[1, 1]]), t2([[1]]), 1, 1e-9), [4 / 3, -1 / 3]);
    expectValues(linearGamma(one, t2([[1, 1]]), t2([[1]]), 0, 1e-9), [2, -1]);
    // Negative inputs and a negative output (W, b, x of the ε test): output 0, z = 4.5 > 0, amplifies
    // 1·2, (−2)(−1) and b = 0.5: z_γ = 9, R = 9 → [4, 4] and the bias keeps 1; output 1, z = −4 < 0,
    // amplifies 1·(−3) and (−2)·0.5: z_γ = −8, R = 8 → [6, 2].
    expectValues(linearGamma(W(), t2([[1, -2]]), t2([[9, 0]]), 1, 1e-9), [4, 4], 5);
    expectValues(linearGamma(W(), t2([[1, -2]]), t2([[0, 8]]), 1, 1e-9), [6, 2], 5);
  });

  it('ε-rule Add: each summand in proportion to its contribution', () => {
    const [a, b] = addEpsilon(t2([[-1, 0.2]]), t2([[3, 0.8]]), t2([[1, 1]]), 1e-9);
    expectValues(a, [-0.5, 0.2]);
    expectValues(b, [1.5, 0.8]);
  });

  it('softmax Taylor rule: R_x = x ⊙ (R − s·ΣR) per row, not conservative', () => {
    // x = [1, 2, 3], s = softmax(x) = [0.0900306, 0.2447285, 0.6652410], R = [0.5, 0, 1.5] (ΣR = 2):
    // R_x = [1·(0.5 − 0.1800611), 2·(0 − 0.4894570), 3·(1.5 − 1.3304820)] = [0.3199389, −0.9789140, 0.5085539].
    // Σ R_x = Σ x_i R_i − (Σ x_i s_i)·ΣR = −0.1504211 ≠ 2 = ΣR: the Taylor bias absorbs the rest.
    // Softmax ignores a shift of x, and so does that sum (Σ_i (R_i − s_i ΣR) = 0), though each entry moves.
    const x = t2([[1, 2, 3]]);
    const s = tf.softmax(x) as tf.Tensor2D;
    const R = t2([[0.5, 0, 1.5]]);
    const rx = softmaxTaylor(R, { scores: x, probs: s, normaliser: 'softmax' });
    expectValues(rx, [0.3199389, -0.978914, 0.5085539], 5);
    expect(values(rx).reduce((a, v) => a + v)).toBeCloseTo(-0.1504211, 5);
    const shifted = softmaxTaylor(R, { scores: t2([[11, 12, 13]]), probs: s, normaliser: 'softmax' });
    expect(values(shifted).reduce((a, v) => a + v)).toBeCloseTo(-0.1504211, 4);
    // A masked entry (s = 0, R = 0) gets exactly 0, however negative its score.
    const masked = softmaxTaylor(t2([[1, 0]]), { scores: t2([[0.3, -1e9]]), probs: t2([[1, 0]]), normaliser: 'softmax' });
    expectValues(masked, [0, 0]);
  });

  it('softmax Taylor rule for sparsemax: x ⊙ J(R ⊘ p), 0 off the support', () => {
    // sparsemax([1, 0.5, −3]) = [0.75, 0.25, 0]; J v = s ⊙ (v − mean over the support of v), s = 1[p > 0].
    // R = [0.75, 0.5, 0]: R/p = [1, 2, 0]; mean over support = 1.5; J = [−0.5, 0.5, 0]; R_x = [−0.5, 0.25, 0].
    const rx = softmaxTaylor(t2([[0.75, 0.5, 0]]), { scores: t2([[1, 0.5, -3]]), probs: t2([[0.75, 0.25, 0]]), normaliser: 'sparsemax' });
    expectValues(rx, [-0.5, 0.25, 0]);
  });

  it('uniform matmul rule: ε-rule on both operands, each carries all of R before its ½ share', () => {
    // a = [[1, 2]], b = [[3], [4]]: Z = 11, R = [[2]]; R_a = [1·3, 2·4]·2/11, R_b = [3·1, 4·2]ᵀ·2/11.
    const [ra, rb] = matmulEpsilon(t2([[1, 2]]), t2([[3], [4]]), t2([[2]]), 1e-9);
    expectValues(ra, [6 / 11, 16 / 11]);
    expectValues(rb, [6 / 11, 16 / 11]);
    // Each operand alone conserves R; the rule sets' ½ share makes the pair conservative.
    expect(ATTNLRP_RULES.matmulShare).toBe(0.5);
  });

  it('AH rule (CP-LRP): A constant, A·V linear in V, all of R to V by the ε-rule', () => {
    // A = [[0.25, 0.75], [1, 0]], V = [[2], [−4]]: AV = [[−2.5], [2]]; R = [[5], [1]].
    // R_V = V ⊙ Aᵀ(R ⊘ AV) = [2·(0.25·(−2) + 1·0.5), −4·(0.75·(−2) + 0)] = [0, 6]: Σ = 6 = ΣR.
    const [, rv] = matmulEpsilon(t2([[0.25, 0.75], [1, 0]]), t2([[2], [-4]]), t2([[5], [1]]), 1e-9);
    expectValues(rv, [0, 6]);
    expect(CP_LRP_RULES.attentionWeights).toBe('constant');
  });

  it('LayerNorm with constant σ: ε-rule on γ ⊙ (x − mean(x))/σ, conservative with β = 0', () => {
    // x = [1, 2, 6]: μ = 3, centred [−2, −1, 3], var = 14/3, σ = 2.1602469 (eps 0); γ = [1, 2, 0.5], β = 0.
    // y = γ ⊙ centred/σ = [−0.9258201, −0.9258201, 0.6943651]; R = [1, 1, 1]:
    // u = γ ⊙ R ⊘ (σ·y) = [1/−2, 2/−2, 0.5/1.5] = [−0.5, −1, 0.3333333]; mean(u) = −0.3888889;
    // R_x = x ⊙ (u − mean u) = [1·(−0.1111111), 2·(−0.6111111), 6·0.7222222] = [−0.1111111, −1.2222222, 4.3333333]; Σ = 3.
    const norm = makeLayerNorm('ln', Float32Array.from([1, 2, 0.5]), new Float32Array(3), 0);
    const x = t2([[1, 2, 6]]);
    const y = tf.mul(tf.div(tf.sub(x, 3), Math.sqrt(14 / 3)), norm.gamma) as tf.Tensor2D;
    const rx = layerNormConstantStd(t2([[1, 1, 1]]), { input: x, output: y, norm }, 1e-9);
    expectValues(rx, [-0.1111111, -1.2222222, 4.3333333], 5);
    expect(values(rx).reduce((s, v) => s + v)).toBeCloseTo(3, 5);
  });

  it("pooler activation by its gradient (CP-LRP, Ali et al.'s code): R_z = z ⊙ f'(z) ⊙ R ⊘ y", () => {
    // z = [0.5, −2, 0], y = tanh z, R = y ⊙ c with c = [2, 1, 3] (the gradient above):
    // R_z = z ⊙ (1 − y²) ⊙ c = [0.5·0.7864477·2, −2·0.0706508·1, 0] = [0.7864477, −0.1413016, 0].
    const z = t2([[0.5, -2, 0]]);
    const y = tf.tanh(z) as tf.Tensor2D;
    const R = tf.mul(y, t2([[2, 1, 3]])) as tf.Tensor2D;
    expectValues(activationGradient(R, { input: z, output: y, activation: 'tanh' }, 1e-9), [0.7864477, -0.1413016, 0], 5);
    // ReLU: z·1[z > 0] = relu(z), so it is the identity rule.
    const zr = t2([[0.5, -2]]);
    expectValues(activationGradient(t2([[1.5, 0]]), { input: zr, output: tf.relu(zr) as tf.Tensor2D, activation: 'relu' }, 1e-9), [1.5, 0]);
  });

  it('rule ids: --rules accepts attnlrp and cp-lrp; a γ or ε makes its own id (the context caches by id)', () => {
    expect(getRuleSet('attnlrp')).toBe(ATTNLRP_RULES);
    expect(getRuleSet('cp-lrp')).toBe(CP_LRP_RULES);
    expect(cpLrpRules({ gamma: 0.25 }).id).toBe('cp-lrp(gamma=0.25)');
    expect(attnLrpRules({ epsilon: 1e-3 }).id).toBe('attnlrp(eps=0.001)');
    expect(() => cpLrpRules({ gamma: -1 })).toThrow(/gamma/);
    expect(cpLrpRules({ pooler: 'identity', gamma: 0.5 }).id).toBe('cp-lrp(gamma=0.5,pooler=identity)');
    expect(cpLrpRules({ pooler: 'gradient' }).id).toBe('cp-lrp');
    expect(() => cpLrpRules({ pooler: 'tanh' as 'identity' })).toThrow(/pooler/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Zero-bias models: every Linear bias and LayerNorm β is 0, so the ε-rule's only leak is ε itself.

const VIT: ViTConfig = {
  imageSize: [32, 48], patchSize: 8, channels: 3, dim: 48, depth: 4, heads: 3, mlpDim: 96, numClasses: 7,
  qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls',
};
const DEIT: ViTConfig = { ...VIT, prefixTokens: 2, pooling: 'cls+dist' };

const BERT: BertConfig = {
  flavour: 'bert', vocabSize: 40, dim: 32, depth: 3, heads: 4, mlpDim: 64, maxPositions: 16, typeVocabSize: 2,
  lnEps: 1e-12, numClasses: 3, padTokenId: 0, poolerActivation: 'tanh',
};
const DISTILBERT: BertConfig = { ...BERT, flavour: 'distilbert', typeVocabSize: 0, poolerActivation: 'relu' };

/** A BERT-style classifier with random weights (std 0.2, embeddings 0.5, γ = 1 + N(0, 0.2²)) and every bias 0. */
function zeroBiasBert(cfg: BertConfig, seed: number): BertModel {
  const next = rng(seed);
  const weights = buildBertWeights(cfg, {
    linear: (out, inDim) => normals(out * inDim, 0.2, next),
    bias: (n) => new Float32Array(n),
    gamma: (n) => normals(n, 0.2, next).map((g) => 1 + g),
    beta: (n) => new Float32Array(n),
    embedding: (n) => normals(n, 0.5, next),
  });
  return new BertModel(`zero-bias-${cfg.flavour}`, cfg, weights, Array.from({ length: cfg.numClasses }, (_, i) => `class ${i}`));
}

/** Two sequences of 10: the second has 3 trailing padding positions (attention mask 0). */
function tokens(): TokenInput {
  const ids = [[1, 7, 12, 30, 5, 9, 22, 17, 3, 2], [1, 4, 33, 8, 19, 6, 2, 0, 0, 0]];
  const mask = ids.map((row, b) => row.map((_, i) => (b === 1 && i >= 7 ? 0 : 1)));
  return { kind: 'tokens', ids: tf.tensor2d(ids, undefined, 'int32'), attentionMask: tf.tensor2d(mask, undefined, 'int32') };
}

function disposeInput(input: ModelInput): void {
  if (input.kind === 'image') input.pixels.dispose();
  else tf.dispose([input.ids, input.attentionMask, ...(input.typeIds ? [input.typeIds] : [])]);
}

interface Pass {
  ledgers: readonly (readonly LedgerEntry[])[];
  logits: Float32Array;
  /** Relevance at the encoder input (the tokens after the embeddings), per sample. */
  tokenTotals: number[];
  /** Relevance on the input (pixels / tokens), per sample. */
  inputTotals: number[];
}

function pass(model: ViTModel | BertModel, input: ModelInput, targets: number[], rules: RuleSet): Pass {
  const fwd = model.forward(input);
  const rel = model.relevance(fwd, targets, rules, { toInput: true });
  const B = targets.length;
  const sums = (t: tf.Tensor) => {
    const total = tf.tidy(() => tf.sum(tf.reshape(t, [B, -1]), 1));
    const v = values(total);
    total.dispose();
    return v;
  };
  const out = { ledgers: rel.ledger, logits: Float32Array.from(fwd.logits.dataSync()), tokenTotals: sums(rel.tokens), inputTotals: sums(rel.input!) };
  tf.dispose([...tensorsOf(fwd), ...rel.attnCam, rel.tokens, rel.input!]);
  return out;
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/**
 * What AttnLRP's softmax rows absorbed (Σ in − out), and the tolerance of the identity
 * input total = logit − absorbed: 1e-5, plus the float32 resolution of those rows' totals (ledger.ts),
 * since `absorbed` is their difference — large where x ⊙ (R − s·ΣR) has big entries of both signs.
 */
function softmaxAccount(ledger: readonly LedgerEntry[], logit: number, kind = 'Softmax'): { absorbed: number; tol: number } {
  const report = conservationReport(ledger);
  let absorbed = 0;
  let resolution = 0;
  ledger.forEach((e, i) => {
    if (e.kind !== kind) return;
    absorbed += e.relevanceIn - e.relevanceOut;
    resolution += report[i]!.resolution * Math.abs(e.relevanceIn);
  });
  return { absorbed, tol: 1e-5 + resolution / Math.abs(logit) };
}

/**
 * The tolerance of an end-to-end identity input total = logit under a conservative rule set: 1e-5,
 * plus float32's resolution of the totals on the way. Every boundary conserves to within its own
 * resolution (conservationViolations), but a logit much smaller than the relevance it is a sum of
 * (terms of both signs, Σ|R| = `magnitude` in the ledger) cannot be resolved better than about
 * 2⁻²⁴·magnitude per total, and the path crosses a few such totals (4 of the largest are allowed).
 * DistilBERT's first sample has logit 0.10 against Σ|R| up to 26: 6e-6 of its relevance is
 * ~1.5e-5 of the logit, moved by swapping one correctly rounded erf for another.
 */
function conservedTolerance(ledger: readonly LedgerEntry[], logit: number): number {
  const magnitude = Math.max(0, ...ledger.map((e) => e.magnitude ?? 0));
  return 1e-5 + (4 * 2 ** -24 * magnitude) / Math.abs(logit);
}

// ---------------------------------------------------------------------------------------------------
// The models the rules make gradient × input of. With ε → 0 every rule here hands each input
// x ⊙ ĝ, ĝ the gradient of a modified model (derived rule by rule: an ε-rule on z = Wx or z = a + b
// turns R_z = z ⊙ ĝ_z into x ⊙ Wᵀĝ_z or a ⊙ ĝ_z, since R_z ⊘ z = ĝ_z — biases included):
//  - LayerNorm: σ detached (the rule is the ε-rule on the map that is linear once σ is constant);
//  - GELU, tanh, ReLU (identity rule): the derivative replaced by f(x)/x, so x ⊙ ĝ_x = f(x) ⊙ ĝ_f;
//    except CP-LRP's pooler activation, which keeps its plain derivative (Ali et al.'s code);
//  - AttnLRP: ∂/∂V halved (½ of A·V's relevance), ∂/∂Q and ∂/∂K quartered (½ of A·V's to A, then ½
//    of Q·Kᵀ's each); softmax unchanged (x ⊙ (R − s·ΣR) = x ⊙ Jᵀĝ_A when R = A ⊙ ĝ_A), and the
//    mask's and the scale's shares drop out as constants do;
//  - CP-LRP: A detached (nothing reaches Q, K), V with its full gradient.
// The start R = logit ⊙ one-hot is the seed ĝ = one-hot. The CLS token and position embeddings are
// constants: their shares are dropped, as gradient × input w.r.t. the pixels drops them.

type Mode = 'attnlrp' | 'cp-lrp';

/** x with its gradient multiplied by `factor` (0: detached). */
function scaleGrad<X extends tf.Tensor>(x: X, factor: number): X {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as tf.Tensor;
    return { value: t.clone(), gradFunc: (dy: tf.Tensor) => [factor === 0 ? tf.zerosLike(dy) : tf.mul(dy, factor)] };
  }) as (t: tf.Tensor) => tf.Tensor;
  return f(x) as X;
}

/** fn(x), with the identity rule's derivative fn(x)/x (`at0` where x is 0). */
function identityRuleGrad(fn: (x: tf.Tensor) => tf.Tensor, at0: number, x: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const y = fn(t);
    save([t, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [input, output] = saved as [tf.Tensor2D, tf.Tensor2D];
        const zero = tf.equal(input, 0);
        return [tf.mul(dy, tf.where(zero, tf.fill(input.shape, at0), tf.div(output, tf.where(zero, tf.onesLike(input), input))))];
      },
    };
  }) as (t: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}

const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

function lnSigmaDetached(ln: { gamma: tf.Tensor1D; beta: tf.Tensor1D; eps: number }, x: tf.Tensor2D): tf.Tensor2D {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const invStd = scaleGrad(tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), ln.eps)), 0);
  return tf.add(tf.mul(tf.mul(centred, invStd), ln.gamma), ln.beta) as tf.Tensor2D;
}

const lin = (layer: { wT: tf.Tensor2D; b: tf.Tensor1D | null }, x: tf.Tensor2D) =>
  (layer.b ? tf.add(tf.matMul(x, layer.wT), layer.b) : tf.matMul(x, layer.wT)) as tf.Tensor2D;

function attentionModified(
  layer: ViTModel['weights']['blocks'][number]['attn'], x: tf.Tensor2D, B: number, T: number, mode: Mode, mask?: tf.Tensor2D,
): tf.Tensor2D {
  const H = layer.heads;
  const qkv = lin(layer.qkv, x);
  const rows = Array.from({ length: B }, (_, b) => {
    const pieces = tf.split(tf.slice(qkv, [b * T, 0], [T, qkv.shape[1]]), 3 * H, 1) as tf.Tensor2D[];
    const heads = Array.from({ length: H }, (_, h) => {
      const [qs, ks, vs] = mode === 'attnlrp' ? [0.25, 0.25, 0.5] : [0, 0, 1];
      const q = scaleGrad(pieces[h]!, qs);
      const k = scaleGrad(pieces[H + h]!, ks);
      const v = scaleGrad(pieces[2 * H + h]!, vs);
      let scores = tf.mul(tf.matMul(q, tf.transpose(k)), layer.scale) as tf.Tensor2D;
      if (mask) scores = tf.add(scores, tf.slice(mask, [b, 0], [1, T]));
      return tf.matMul(normalise(layer.normaliser ?? 'softmax', scores), v);
    });
    return tf.concat(heads, 1);
  });
  return lin(layer.proj, tf.concat(rows, 0) as tf.Tensor2D);
}

/** The modified ViT from the block-0 input (or from the patches), to the target logits' sum. */
function vitModified(model: ViTModel, rec: ViTRecord, B: number, targets: number[], mode: Mode, from: 'tokens' | 'patches') {
  const W = model.weights;
  const T = model.tokens;
  const D = model.config.dim;
  const oneHot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.numClasses).toFloat();
  const f = (input: tf.Tensor) => {
    let x: tf.Tensor2D;
    if (from === 'tokens') x = input as tf.Tensor2D;
    else {
      const P = model.prefixTokens;
      const patchEmbeds = tf.reshape(lin(W.patchEmbed, input as tf.Tensor2D), [B, T - P, D]);
      const prefix = tf.broadcastTo(tf.reshape(W.prefix, [1, P, D]), [B, P, D]);
      x = tf.add(tf.reshape(tf.concat([prefix, patchEmbeds], 1), [B * T, D]), tf.tile(W.posEmbed, [B, 1])) as tf.Tensor2D;
    }
    for (const blk of W.blocks) {
      const mid = tf.add(x, attentionModified(blk.attn, lnSigmaDetached(blk.norm1, x), B, T, mode)) as tf.Tensor2D;
      const hidden = identityRuleGrad(gelu, 0.5, lin(blk.mlp.fc1, lnSigmaDetached(blk.norm2, mid)));
      x = tf.add(mid, lin(blk.mlp.fc2, hidden)) as tf.Tensor2D;
    }
    const byToken = tf.reshape(lnSigmaDetached(W.norm, x), [B, T, D]);
    const heads = W.heads.map((h, i) => lin(h, tf.reshape(tf.slice(byToken, [0, i, 0], [B, 1, D]), [B, D]) as tf.Tensor2D));
    const logits = heads.length === 1 ? heads[0]! : tf.div(tf.addN(heads), heads.length);
    return tf.sum(tf.mul(logits, oneHot));
  };
  const x = from === 'tokens' ? rec.blocks[0]!.input : rec.patches;
  return { x, grad: tf.grad(f)(x) };
}

/** The modified BERT from the embedding LayerNorm's input (or from the encoder input). */
function bertModified(model: BertModel, rec: BertRecord, B: number, targets: number[], mode: Mode, from: 'embeddings' | 'encoder') {
  const W = model.weights;
  const D = model.config.dim;
  const T = rec.embeddings.shape[0] / B;
  const oneHot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.numClasses).toFloat();
  const act = model.config.poolerActivation === 'tanh' ? (t: tf.Tensor) => tf.tanh(t) : (t: tf.Tensor) => tf.relu(t);
  const f = (input: tf.Tensor) => {
    let x = from === 'encoder' ? (input as tf.Tensor2D) : lnSigmaDetached(W.embeddingNorm, input as tf.Tensor2D);
    for (const layer of W.layers) {
      const n1 = lnSigmaDetached(layer.norm1, tf.add(attentionModified(layer.attn, x, B, T, mode, rec.mask), x) as tf.Tensor2D);
      const hidden = identityRuleGrad(gelu, 0.5, lin(layer.mlp.fc1, n1));
      x = lnSigmaDetached(layer.norm2, tf.add(lin(layer.mlp.fc2, hidden), n1) as tf.Tensor2D);
    }
    const first = tf.reshape(tf.slice(tf.reshape(x, [B, T, D]), [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
    const pooled = mode === 'cp-lrp' ? (act(lin(W.pooler, first)) as tf.Tensor2D) : identityRuleGrad(act, model.config.poolerActivation === 'tanh' ? 1 : 0, lin(W.pooler, first));
    return tf.sum(tf.mul(lin(W.classifier, pooled), oneHot));
  };
  const x = from === 'encoder' ? rec.embeddings : rec.embeddingSum;
  return { x, grad: tf.grad(f)(x) };
}

/** Relevance maps summed over channels, from patch-level relevance [B·N, C·p·p] (the patch grid row-major). */
function patchesToPixels(r: ArrayLike<number>, model: ViTModel, B: number): Float32Array {
  const p = model.config.patchSize;
  const C = model.config.channels;
  const [H, W] = model.config.imageSize;
  const [, gw] = model.grid;
  const N = model.grid[0] * gw;
  const map = new Float32Array(B * H * W);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const row = b * N + Math.floor(y / p) * gw + Math.floor(x / p);
        let s = 0;
        for (let c = 0; c < C; c++) s += r[row * C * p * p + c * p * p + (y % p) * p + (x % p)]!;
        map[b * H * W + y * W + x] = s;
      }
    }
  }
  return map;
}

const TARGETS = [2, 1];

interface Case {
  readonly name: string;
  readonly make: () => { model: ViTModel | BertModel; input: ModelInput };
}

const CASES: readonly Case[] = [
  { name: 'ViT', make: () => ({ model: randomViT(VIT, { seed: 7, weightStd: 0.2, zeroBias: true }), input: { kind: 'image', pixels: tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 3) as tf.Tensor4D } }) },
  { name: 'DeiT (two heads)', make: () => ({ model: randomViT(DEIT, { seed: 8, weightStd: 0.2, zeroBias: true }), input: { kind: 'image', pixels: tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 4) as tf.Tensor4D } }) },
  { name: 'BERT (post-LN, padded sequence)', make: () => ({ model: zeroBiasBert(BERT, 11), input: tokens() }) },
  { name: 'DistilBERT (no segments, ReLU pooler)', make: () => ({ model: zeroBiasBert(DISTILBERT, 12), input: tokens() }) },
];

/** Where the encoder input's relevance is read off the ledger: the first block's output side. */
function encoderInputTotal(ledger: readonly LedgerEntry[]): number {
  const row = ledger.find((e) => e.layer === 'blocks.0') ?? ledger.find((e) => e.layer === 'bert.encoder');
  return row!.relevanceOut;
}

describe('zero-bias models: relevance is conserved wherever the rules claim it', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      let model: ViTModel | BertModel;
      let input: ModelInput;
      beforeAll(() => ({ model, input } = c.make()));
      afterAll(() => {
        model.dispose();
        disposeInput(input);
      });

      it('CP-LRP: every boundary conserves, from the target logit down to the input tokens (and through the embedding LayerNorm), but a pooler tanh crossed by its gradient', () => {
        for (const rules of [CP_LRP_RULES, cpLrpRules({ pooler: 'identity' })]) {
          const p = pass(model, input, TARGETS, rules);
          // Ali et al.'s plain gradient through the pooler's tanh does not conserve; on ReLU it is the identity rule.
          const tanh = model instanceof BertModel && model.config.poolerActivation === 'tanh' && rules === CP_LRP_RULES;
          p.ledgers.forEach((ledger, b) => {
            const logit = p.logits[b * model.numClasses + TARGETS[b]!]!;
            // The start is the logit's value (LXT, Ali et al.), not the authors' one-hot.
            expect(ledger[0]!.relevanceIn).toBeCloseTo(logit, 6);
            // Tolerance: 1e-5, or float32's resolution of the boundary where its terms cancel (ledger.ts).
            expect(conservationViolations(ledger, 1e-5)).toEqual([]);
            // Only the tanh and the composites around it (bert, bert.pooler) are marked.
            ledger.forEach((e, i) => {
              let end = i + 1;
              while (end < ledger.length && ledger[end]!.depth > e.depth) end++;
              expect(Boolean(e.expectedDrift), `${rules.id}: ${e.layer}`).toBe(tanh && ledger.slice(i, end).some((x) => x.kind === 'Tanh'));
            });
            // A held constant: no relevance reaches the softmax or Q·Kᵀ, so they are not in the ledger.
            expect(ledger.some((e) => e.kind === 'Softmax')).toBe(false);
            const { absorbed, tol: tanhTol } = softmaxAccount(ledger, logit, 'Tanh');
            if (tanh) expect(Math.abs(absorbed / logit), 'the tanh really drifts').toBeGreaterThan(1e-3);
            const tol = conservedTolerance(ledger, logit) + (tanh ? tanhTol : 0);
            const reaching = logit - (tanh ? absorbed : 0);
            expect(relDiff(encoderInputTotal(ledger), reaching)).toBeLessThan(tol);
            expect(relDiff(p.tokenTotals[b]!, reaching)).toBeLessThan(tol);
            if (model instanceof BertModel) expect(relDiff(p.inputTotals[b]!, reaching)).toBeLessThan(tol);
          });
        }
      });

      it('AttnLRP: every boundary but the softmax conserves; the softmax rows, marked as expected drift, account for the rest', () => {
        const p = pass(model, input, TARGETS, ATTNLRP_RULES);
        p.ledgers.forEach((ledger, b) => {
          const logit = p.logits[b * model.numClasses + TARGETS[b]!]!;
          expect(ledger[0]!.relevanceIn).toBeCloseTo(logit, 6);
          expect(conservationViolations(ledger, 1e-5)).toEqual([]);
          // Only the softmax's own rows and the composites around them (blocks, attention) are marked.
          expect(ledger.filter((e) => e.kind === 'Softmax')).toHaveLength(model.depth);
          ledger.forEach((e, i) => {
            // The ledger is in pre-order: a composite's children follow it, one level deeper.
            let end = i + 1;
            while (end < ledger.length && ledger[end]!.depth > e.depth) end++;
            const holdsSoftmax = ledger.slice(i, end).some((x) => x.kind === 'Softmax');
            expect(Boolean(e.expectedDrift), e.layer).toBe(holdsSoftmax);
          });
          // The Taylor bias really absorbs relevance here (the marks are not vacuous)…
          expect(Math.max(...conservationReport(ledger).filter((d) => d.kind === 'Softmax').map((d) => d.drift))).toBeGreaterThan(1e-3);
          // …and it is all that goes missing between the logit and the input tokens.
          const { absorbed, tol } = softmaxAccount(ledger, logit);
          expect(relDiff(encoderInputTotal(ledger) + absorbed, logit)).toBeLessThan(tol);
          expect(relDiff(p.tokenTotals[b]! + absorbed, logit)).toBeLessThan(tol);
          if (model instanceof BertModel) expect(relDiff(p.inputTotals[b]! + absorbed, logit)).toBeLessThan(tol);
        });
      });

      it('the checks above see a leak: with ε = 1e-3 the stabiliser absorbs enough for the ledger to flag it', () => {
        const leaky = pass(model, input, TARGETS, cpLrpRules({ epsilon: 1e-3 }));
        expect(leaky.ledgers.some((l) => conservationViolations(l, 1e-5).length > 0)).toBe(true);
      });
    });
  }

  it('CP-LRP with LRP-γ (γ = 0.5) still conserves on a zero-bias model', () => {
    const model = randomViT(VIT, { seed: 7, weightStd: 0.2, zeroBias: true });
    const pixels = tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 3) as tf.Tensor4D;
    const p = pass(model, { kind: 'image', pixels }, TARGETS, cpLrpRules({ gamma: 0.5 }));
    p.ledgers.forEach((ledger, b) => {
      expect(conservationViolations(ledger, 1e-5)).toEqual([]);
      expect(relDiff(p.tokenTotals[b]!, p.logits[b * model.numClasses + TARGETS[b]!]!)).toBeLessThan(1e-5);
    });
    model.dispose();
    pixels.dispose();
  });
});

describe('each rule set is gradient × input of a modified model (ε → 0; biases allowed)', () => {
  // Both computations round differently (divisions by z here, Jacobian products there): on these
  // models they agree to ~1e-6 of the map's largest entry, 3e-5 at worst over the seeds tried; a
  // wrong modification (ViT below: AttnLRP's model for CP-LRP's rules) differs by more than 1e-2.
  const TOL = 1e-4;
  const ViTs = [
    { name: 'ViT with biases', make: () => randomViT(VIT, { seed: 21, weightStd: 0.2 }) },
    { name: 'DeiT, zero biases', make: () => randomViT(DEIT, { seed: 22, weightStd: 0.2, zeroBias: true }) },
    // Sparse normalisers: the same Taylor decomposition, x ⊙ J·(R ⊘ p), is their own backward pass.
    { name: 'ViT with sparsemax attention', make: () => randomViT({ ...VIT, attention: 'sparsemax' }, { seed: 23, weightStd: 0.2 }) },
    { name: 'ViT with 1.5-entmax attention', make: () => randomViT({ ...VIT, attention: 'entmax15' }, { seed: 24, weightStd: 0.2 }) },
  ];
  for (const v of ViTs) {
    for (const rules of [ATTNLRP_RULES, CP_LRP_RULES]) {
      it(`${v.name}, ${rules.id}: at the encoder input and at the pixels`, () => {
        const model = v.make();
        const pixels = tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 5) as tf.Tensor4D;
        const fwd = model.forward({ kind: 'image', pixels });
        const rel = model.relevance(fwd, TARGETS, rules, { toInput: true });
        const mode = rules.id as Mode;
        const tok = vitModified(model, fwd.record, 2, TARGETS, mode, 'tokens');
        expect(relativeError(rel.tokens.dataSync(), tf.mul(tok.x, tok.grad).dataSync())).toBeLessThan(TOL);
        const pat = vitModified(model, fwd.record, 2, TARGETS, mode, 'patches');
        expect(relativeError(rel.input!.dataSync(), patchesToPixels(tf.mul(pat.x, pat.grad).dataSync(), model, 2))).toBeLessThan(TOL);
        const other = vitModified(model, fwd.record, 2, TARGETS, mode === 'attnlrp' ? 'cp-lrp' : 'attnlrp', 'tokens');
        expect(relativeError(rel.tokens.dataSync(), tf.mul(other.x, other.grad).dataSync())).toBeGreaterThan(1e-2);
        tf.dispose([pixels, ...tensorsOf(fwd), ...rel.attnCam, rel.tokens, rel.input!, tok.grad, pat.grad, other.grad]);
        model.dispose();
      });
    }
  }
  for (const cfg of [BERT, DISTILBERT]) {
    for (const rules of [ATTNLRP_RULES, CP_LRP_RULES]) {
      it(`${cfg.flavour} (padded), ${rules.id}: at the encoder input and at the tokens`, () => {
        const model = zeroBiasBert(cfg, 31);
        const input = tokens();
        const fwd = model.forward(input);
        const rel = model.relevance(fwd, TARGETS, rules, { toInput: true });
        const mode = rules.id as Mode;
        const enc = bertModified(model, fwd.record, 2, TARGETS, mode, 'encoder');
        expect(relativeError(rel.tokens.dataSync(), tf.mul(enc.x, enc.grad).dataSync())).toBeLessThan(TOL);
        const emb = bertModified(model, fwd.record, 2, TARGETS, mode, 'embeddings');
        const perToken = tf.sum(tf.reshape(tf.mul(emb.x, emb.grad), [2, 10, -1]), 2);
        expect(relativeError(rel.input!.dataSync(), perToken.dataSync())).toBeLessThan(TOL);
        tf.dispose([perToken, ...tensorsOf(fwd), ...rel.attnCam, rel.tokens, rel.input!, enc.grad, emb.grad]);
        disposeInput(input);
        model.dispose();
      });
    }
  }
});

describe('the attnlrp and cp-lrp methods', () => {
  let vit: ViTModel;
  let bert: BertModel;
  beforeAll(() => {
    vit = randomViT(DEIT, { seed: 41, weightStd: 0.2 });
    bert = zeroBiasBert(BERT, 42);
  });
  afterAll(() => {
    vit.dispose();
    bert.dispose();
  });

  it('return input maps with the ledger, like lrp under the same rule set, and a batch gives the single maps', async () => {
    const pixels = tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 6) as tf.Tensor4D;
    for (const [method, rules] of [['attnlrp', 'attnlrp'], ['cp-lrp', 'cp-lrp']] as const) {
      const batch = await explain(vit, { kind: 'image', pixels }, { method, target: TARGETS });
      const viaLrp = await explain(vit, { kind: 'image', pixels }, { method: 'lrp', rules, target: TARGETS });
      for (let b = 0; b < 2; b++) {
        const e = batch[b]!;
        expect(e.method).toBe(method);
        expect(e.shape).toEqual([32, 48]);
        expect(e.space).toBe('pixel');
        expect(e.ledger!.length).toBeGreaterThan(50);
        expect(Array.from(e.map)).toEqual(Array.from(viaLrp[b]!.map));
        const one = tf.slice(pixels, [b, 0, 0, 0], [1, 3, 32, 48]) as tf.Tensor4D;
        const [single] = await explain(vit, { kind: 'image', pixels: one }, { method, target: TARGETS[b] });
        one.dispose();
        expect(relativeError(single!.map, e.map)).toBeLessThan(1e-5);
      }
    }
    pixels.dispose();
  });

  it('text: one value per token, padding included; cp-lrp takes gamma, attnlrp takes no option, both report their rule set', async () => {
    const input = tokens();
    const [a] = await explain(bert, input, { method: 'attnlrp', target: [1, 0] });
    const [c0] = await explain(bert, input, { method: 'cp-lrp', target: [1, 0] });
    const [c1] = await explain(bert, input, { method: 'cp-lrp', target: [1, 0], gamma: 0.25 });
    expect(a!.shape).toEqual([10]);
    expect(a!.space).toBe('token');
    // Each reports the rule set it ran (so later views, e.g. the per-block maps, reuse that pass).
    expect(a!.options).toEqual({ rules: 'attnlrp' });
    expect(c0!.options).toEqual({ rules: 'cp-lrp' });
    expect(c1!.options).toEqual({ rules: 'cp-lrp', gamma: 0.25 });
    expect(relativeError(c0!.map, c1!.map)).toBeGreaterThan(1e-3);
    // Zero biases: every map sums to its logit less what the pooler's tanh does not pass on (CP-LRP),
    // AttnLRP to the logit less the softmax's share.
    const logit = c0!.logits[1]!;
    for (const c of [c0!, c1!]) {
      const pooler = softmaxAccount(c.ledger!, logit, 'Tanh');
      expect(relDiff(c.map.reduce((s, x) => s + x, 0) + pooler.absorbed, logit)).toBeLessThan(1e-5 + pooler.tol);
    }
    const { absorbed, tol } = softmaxAccount(a!.ledger!, logit);
    expect(relDiff(a!.map.reduce((s, x) => s + x, 0) + absorbed, logit)).toBeLessThan(tol);
    disposeInput(input);
  });

  it('leave no tensor behind', async () => {
    const pixels = tf.randomNormal([1, 3, 32, 48], 0, 1, 'float32', 7) as tf.Tensor4D;
    const input = tokens();
    const before = tf.memory().numTensors;
    for (const method of ['attnlrp', 'cp-lrp']) {
      await explain(vit, { kind: 'image', pixels }, { method, target: 3 });
      await explain(bert, input, { method, target: 2, ...(method === 'cp-lrp' ? { gamma: 0.1 } : {}) });
    }
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
    disposeInput(input);
  });
});
