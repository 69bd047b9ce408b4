/**
 * Rule sets: which rule each layer type gets (Zennit's "composites"). A rule set is data, so a new
 * one (AttnLRP, conservative LRP) is a new table, not a new code path: the family passes (vit.ts,
 * bert.ts) and the attention core (attention.ts) only know the graph and hand each rule what its
 * layer recorded in the forward pass.
 */
import type { Tensor, Tensor2D } from '../tf.js';
import type { Linear } from '../ops.js';
import { UsageError } from '../errors.js';
import { tf } from '../tf.js';
import {
  addEpsilon,
  addRenormalised,
  addZ,
  cloneAdd,
  cloneSum,
  identity,
  layerNormConstantStd,
  linearAlpha1Beta0,
  linearAlpha1Beta0Separate,
  linearEpsilon,
  linearGamma,
  activationGradient,
  patchZB,
  poolSelect,
  poolZ,
  safeDivide,
  softmaxTaylor,
  stabilise,
  type LayerNormRecord,
  type NormaliserRecord,
  type PoolerActivationRecord,
} from './rules.js';

/** What an elementwise activation (GELU) saw and produced. */
export interface ActivationRecord {
  readonly input: Tensor2D;
  readonly output: Tensor2D;
}

export interface RuleSet {
  readonly id: string;
  readonly description: string;
  /**
   * The relevance the pass starts from at the explained logit: 'one-hot' (1, as the authors'
   * generate_LRP), or 'logit' (its value, as LRP proper and LXT: relevance then sums to the logit).
   */
  readonly start: 'one-hot' | 'logit';
  /**
   * Linear layers (qkv, proj, fc1, fc2, head). `y` is the layer's output x·W + b as the forward pass
   * recorded it, when the caller has it: a rule that needs it reads it instead of recomputing it.
   */
  readonly linear: (layer: Linear, x: Tensor2D, R: Tensor2D, y?: Tensor2D) => Tensor2D;
  /** The first layer, on the pixels (patch-embedding convolution). */
  readonly patchEmbed: (layer: Linear, patches: Tensor2D, R: Tensor2D, batch: number) => Tensor2D;
  /** Residual and embedding Adds: [R of x₁, R of x₂]. */
  readonly add: (x1: Tensor2D, x2: Tensor2D, R: Tensor2D, batch: number) => [Tensor2D, Tensor2D];
  readonly clone: (x: Tensor2D, branches: readonly Tensor2D[]) => Tensor2D;
  /**
   * The attention products Z = a·b (A·V and Q·Kᵀ): the rule's ratio S = R ⊘ Z (the authors'
   * safeDivide, or the ε-rule's stabilised division). Each operand then receives all of R as
   * a ⊙ (S·bᵀ) and b ⊙ (aᵀ·S) (rules.ts: matmulGradInput, matmulEpsilon), before its share. Given as
   * the ratio alone so the attention pass can apply it to every head at once.
   */
  readonly matmulRatio: (R: Tensor, Z: Tensor) => Tensor;
  /** The share of a matmul's relevance each operand keeps (the authors halve both; AttnLRP's uniform rule too). */
  readonly matmulShare: number;
  /**
   * How relevance treats the attention weights A: 'propagate' (A is an operand of A·V; its share
   * goes on through the normaliser and Q·Kᵀ to q and k), or 'constant' (CP-LRP's AH rule: A is held
   * fixed, A·V is linear in V, all of R goes to V and nothing to A, the normaliser, q or k).
   */
  readonly attentionWeights: 'propagate' | 'constant';
  readonly pool: (pooled: Tensor2D, R: Tensor2D) => Tensor2D;
  readonly layerNorm: (R: Tensor2D, ln: LayerNormRecord) => Tensor2D;
  readonly gelu: (R: Tensor2D, act: ActivationRecord) => Tensor2D;
  /** The activation between a text classifier's pooler dense layer and its classifier (tanh, ReLU). */
  readonly poolerActivation: (R: Tensor2D, act: PoolerActivationRecord) => Tensor2D;
  /**
   * Whether that rule claims conservation. The identity does; the gradient rule does on ReLU only,
   * and the ledger marks the pooler's tanh (and the composites around it) as expected to drift.
   */
  readonly poolerActivationConserves: boolean;
  /** The attention normaliser (softmax, sparsemax, 1.5-entmax), one (sample, head) at a time. */
  readonly softmax: (R: Tensor2D, rec: NormaliserRecord) => Tensor2D;
  /**
   * Whether the softmax rule claims conservation. The ledger marks the softmax boundaries of a rule
   * set that does not (and the blocks around them) as expected to drift.
   */
  readonly softmaxConserves: boolean;
  /**
   * Whether every rule is linear in the relevance it receives, the forward pass held fixed. Then a
   * whole pass is a linear map of its start, and a contrastive start (e_A − e_B, or z_A·e_A − z_B·e_B)
   * gives exactly the difference of the two single-target passes. The paper's renormalised Add is
   * not: it rescales each branch to |A|/(|A|+|B|) of ΣR — homogeneous in R, not additive — and for
   * e_A − e_B, whose ΣR is 0, it sends nothing at all past the first residual Add.
   */
  readonly linearInRelevance: boolean;
}

/** Chefer, Gur & Wolf (CVPR 2021), layers_ours.py: conservative down to the first block. */
export const PAPER_RULES: RuleSet = {
  id: 'paper',
  description: "Chefer et al.'s rules: LRP-α1β0 with a shared denominator, renormalised Add, halved attention matmuls",
  start: 'one-hot',
  linear: linearAlpha1Beta0,
  patchEmbed: patchZB,
  add: addRenormalised,
  clone: cloneSum,
  matmulRatio: safeDivide,
  matmulShare: 0.5,
  attentionWeights: 'propagate',
  pool: poolZ,
  layerNorm: identity,
  gelu: identity,
  poolerActivation: identity,
  poolerActivationConserves: true,
  softmax: identity,
  softmaxConserves: true,
  linearInRelevance: false,
};

/** The paper's "LRP" and "partial LRP" baselines, layers_lrp.py: not conservative (see RULES.md). */
export const BASELINE_RULES: RuleSet = {
  ...PAPER_RULES,
  id: 'baseline',
  description: 'the original-LRP baseline of Chefer et al.: separately normalised α1β0 Linear, plain z-rule Add',
  linear: linearAlpha1Beta0Separate,
  add: (x1, x2, R) => addZ(x1, x2, R),
  // The plain z-rule Add and the separately normalised Linear are both linear in R.
  linearInRelevance: true,
};

/**
 * The ε both rule sets use by default. It only has to stabilise: along a chain of ε-rules the
 * relevance R_j reaching an output is itself proportional to that output z_j, so R_j/z_j stays finite
 * however small z_j is, and ε only turns 0/0 into 0 where z_j is exactly 0 (LXT's efficient,
 * gradient-based implementation has no ε at all there). Each ε-rule leaks Σ_j R_j·ε/(|z_j| + ε); at
 * LXT's explicit default 1e-6 that reached 1e-5–1e-4 of the logit on the zero-bias test models, above
 * float32's own resolution, so 1e-9: no float32 denominator above ~0.03 changes at all.
 */
export const DEFAULT_EPSILON = 1e-9;

/** The ε-rule's ratio R ⊘ (Z + ε·sign Z) (rules.ts: matmulEpsilon). */
function epsilonRatio(R: Tensor, Z: Tensor, epsilon: number): Tensor {
  return tf.tidy(() => tf.div(R, stabilise(Z, epsilon)));
}

export interface AttnLrpOptions {
  readonly epsilon?: number;
}

/**
 * AttnLRP (Achtibat et al., ICML 2024), as LXT implements it: ε-rule on Linear layers and Adds
 * (proportional to each summand), the softmax by its Taylor decomposition at the input, the uniform
 * rule on A·V and Q·Kᵀ (ε-rule, then ½ to each operand), GELU by the identity rule, LayerNorm with
 * σ constant. It starts from the logit value (LXT: "we set the relevance R_i to z_i"; in its
 * gradient form, z_i.backward() then x ⊙ x.grad), so on a zero-bias model relevance sums to the
 * logit — except what the softmax's Taylor bias absorbs, which the ledger marks as expected drift.
 * The pixels get the ε-rule through the patch embedding (LXT's default chain, gradient × input at
 * the input); the CLS token and position embedding are constants, so their shares are dropped.
 */
export function attnLrpRules(options: AttnLrpOptions = {}): RuleSet {
  const eps = options.epsilon ?? DEFAULT_EPSILON;
  return {
    id: eps === DEFAULT_EPSILON ? 'attnlrp' : `attnlrp(eps=${eps})`,
    description: 'AttnLRP (Achtibat et al. 2024): ε-rule, softmax Taylor rule, uniform attention matmuls, LN with constant σ, GELU identity',
    start: 'logit',
    linear: (layer, x, R, y) => linearEpsilon(layer, x, R, eps, y),
    patchEmbed: (layer, patches, R) => linearEpsilon(layer, patches, R, eps),
    add: (x1, x2, R) => addEpsilon(x1, x2, R, eps),
    clone: cloneAdd,
    matmulRatio: (R, Z) => epsilonRatio(R, Z, eps),
    matmulShare: 0.5,
    attentionWeights: 'propagate',
    pool: poolSelect,
    layerNorm: (R, ln) => layerNormConstantStd(R, ln, eps),
    gelu: identity,
    poolerActivation: identity,
    poolerActivationConserves: true,
    softmax: softmaxTaylor,
    softmaxConserves: false,
    linearInRelevance: true,
  };
}

export interface CpLrpOptions {
  /** LRP-γ on the Linear layers and the patch embedding (0: LRP-0/ε, the default). */
  readonly gamma?: number;
  readonly epsilon?: number;
  /**
   * The pooler's activation (BERT's tanh): 'gradient' (the default: its plain gradient, as Ali et
   * al.'s code takes it) or 'identity' (relevance passed unchanged, as through GELU). The two agree
   * on ReLU (DistilBERT).
   */
  readonly pooler?: CpLrpPooler;
}

export const CP_LRP_POOLERS = ['gradient', 'identity'] as const;
export type CpLrpPooler = (typeof CP_LRP_POOLERS)[number];

/**
 * Conservative propagation, CP-LRP (Ali et al., ICML 2022): the AH rule (attention weights held
 * constant, so relevance flows through the values only) and the LN-rule (σ held constant; Ali et
 * al.'s evaluated variant `detach_KQ_LNorm_Norm`, which keeps the centring: the one of their two
 * variants that conserves), LRP-0 (ε-stabilised) or sign-aware LRP-γ on Linear layers, ε-rule on Adds, GELU
 * identity, and the plain gradient through a text pooler's tanh, as their forward_and_explain takes
 * it (`pooler: 'identity'` for the identity rule there). Starts from the logit value as their code
 * does (`Rout = logits[:, cl]`). With γ = 0 it is gradient × input of the model with A and σ
 * detached (and GELU's derivative replaced by GELU(x)/x); on a zero-bias model it conserves
 * everywhere except across that tanh.
 */
export function cpLrpRules(options: CpLrpOptions = {}): RuleSet {
  const eps = options.epsilon ?? DEFAULT_EPSILON;
  const gamma = options.gamma ?? 0;
  const pooler = options.pooler ?? 'gradient';
  if (!(Number.isFinite(gamma) && gamma >= 0)) throw new UsageError(`gamma must be a number ≥ 0, got ${gamma}`);
  if (!CP_LRP_POOLERS.includes(pooler)) throw new UsageError(`pooler must be one of ${CP_LRP_POOLERS.join(', ')}, got '${String(pooler)}'`);
  const suffix = [gamma !== 0 ? `gamma=${gamma}` : '', eps !== DEFAULT_EPSILON ? `eps=${eps}` : '', pooler !== 'gradient' ? `pooler=${pooler}` : ''].filter(Boolean).join(',');
  return {
    id: suffix ? `cp-lrp(${suffix})` : 'cp-lrp',
    description: `CP-LRP (Ali et al. 2022): attention weights constant (AH rule), LN with constant σ, LRP-0/ε or LRP-γ on Linear layers, ${pooler === 'gradient' ? 'gradient' : 'identity rule'} through the pooler's tanh`,
    start: 'logit',
    linear: (layer, x, R, y) => linearGamma(layer, x, R, gamma, eps, y),
    patchEmbed: (layer, patches, R) => linearGamma(layer, patches, R, gamma, eps),
    add: (x1, x2, R) => addEpsilon(x1, x2, R, eps),
    clone: cloneAdd,
    matmulRatio: (R, Z) => epsilonRatio(R, Z, eps),
    matmulShare: 1,
    attentionWeights: 'constant',
    pool: poolSelect,
    layerNorm: (R, ln) => layerNormConstantStd(R, ln, eps),
    gelu: identity,
    poolerActivation: pooler === 'gradient' ? (R, act) => activationGradient(R, act, eps) : identity,
    poolerActivationConserves: pooler === 'identity',
    softmax: identity,
    softmaxConserves: true,
    linearInRelevance: true,
  };
}

export const ATTNLRP_RULES: RuleSet = attnLrpRules();
export const CP_LRP_RULES: RuleSet = cpLrpRules();

export const RULE_SETS: readonly RuleSet[] = [PAPER_RULES, BASELINE_RULES, ATTNLRP_RULES, CP_LRP_RULES];

export function getRuleSet(id: string | undefined, fallback: RuleSet = PAPER_RULES): RuleSet {
  if (id === undefined) return fallback;
  const r = RULE_SETS.find((x) => x.id === id);
  if (!r) throw new UsageError(`unknown rule set '${id}' (available: ${RULE_SETS.map((x) => x.id).join(', ')})`);
  return r;
}

/**
 * The rule set a method's explanation was computed with, from the options it reports (`rules`, and
 * `gamma` and `pooler` for CP-LRP's variants), so later views of the same pass (the per-block R^(A) maps)
 * find it in the context's cache rather than running another one.
 */
export function ruleSetOf(options: { readonly rules?: string; readonly gamma?: number; readonly pooler?: CpLrpPooler }): RuleSet {
  if (options.rules === CP_LRP_RULES.id && ((options.gamma !== undefined && options.gamma !== 0) || (options.pooler !== undefined && options.pooler !== 'gradient'))) {
    return cpLrpRules({ gamma: options.gamma, pooler: options.pooler });
  }
  return getRuleSet(options.rules);
}
