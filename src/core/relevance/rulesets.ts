/**
 * Rule sets: which rule each layer type gets (Zennit's "composites"). A rule set is data, so a new
 * one (AttnLRP, conservative LRP) is a new table, not a new code path.
 */
import type { Tensor2D } from '../tf.js';
import type { Linear } from '../ops.js';
import { UsageError } from '../errors.js';
import {
  addRenormalised,
  addZ,
  cloneSum,
  identity,
  linearAlpha1Beta0,
  linearAlpha1Beta0Separate,
  matmulGradInput,
  patchZB,
  poolZ,
} from './rules.js';

export interface RuleSet {
  readonly id: string;
  readonly description: string;
  /** Linear layers (qkv, proj, fc1, fc2, head). */
  readonly linear: (layer: Linear, x: Tensor2D, R: Tensor2D) => Tensor2D;
  /** The first layer, on the pixels (patch-embedding convolution). */
  readonly patchEmbed: (layer: Linear, patches: Tensor2D, R: Tensor2D, batch: number) => Tensor2D;
  /** Residual and embedding Adds: [R of x₁, R of x₂]. */
  readonly add: (x1: Tensor2D, x2: Tensor2D, R: Tensor2D, batch: number) => [Tensor2D, Tensor2D];
  readonly clone: (x: Tensor2D, branches: readonly Tensor2D[]) => Tensor2D;
  /** The attention products A·V and Q·Kᵀ. */
  readonly matmul: (a: Tensor2D, b: Tensor2D, R: Tensor2D) => [Tensor2D, Tensor2D];
  /** The share of a matmul's relevance each operand keeps (the authors halve both). */
  readonly matmulShare: number;
  readonly pool: (pooled: Tensor2D, R: Tensor2D) => Tensor2D;
  readonly layerNorm: (R: Tensor2D) => Tensor2D;
  readonly gelu: (R: Tensor2D) => Tensor2D;
  readonly softmax: (R: Tensor2D) => Tensor2D;
}

/** Chefer, Gur & Wolf (CVPR 2021), layers_ours.py: conservative down to the first block. */
export const PAPER_RULES: RuleSet = {
  id: 'paper',
  description: "Chefer et al.'s rules: LRP-α1β0 with a shared denominator, renormalised Add, halved attention matmuls",
  linear: linearAlpha1Beta0,
  patchEmbed: patchZB,
  add: addRenormalised,
  clone: cloneSum,
  matmul: matmulGradInput,
  matmulShare: 0.5,
  pool: poolZ,
  layerNorm: identity,
  gelu: identity,
  softmax: identity,
};

/** The paper's "LRP" and "partial LRP" baselines, layers_lrp.py: not conservative (see RULES.md). */
export const BASELINE_RULES: RuleSet = {
  ...PAPER_RULES,
  id: 'baseline',
  description: 'the original-LRP baseline of Chefer et al.: separately normalised α1β0 Linear, plain z-rule Add',
  linear: linearAlpha1Beta0Separate,
  add: (x1, x2, R) => addZ(x1, x2, R),
};

export const RULE_SETS: readonly RuleSet[] = [PAPER_RULES, BASELINE_RULES];

export function getRuleSet(id: string | undefined, fallback: RuleSet = PAPER_RULES): RuleSet {
  if (id === undefined) return fallback;
  const r = RULE_SETS.find((x) => x.id === id);
  if (!r) throw new UsageError(`unknown rule set '${id}' (available: ${RULE_SETS.map((x) => x.id).join(', ')})`);
  return r;
}
