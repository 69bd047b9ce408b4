/**
 * AttnLRP (Achtibat et al., ICML 2024, "AttnLRP: Attention-Aware Layer-Wise Relevance Propagation
 * for Transformers"; reference implementation LXT): the ε-rule on Linear layers and Adds, the softmax
 * by its Taylor decomposition at the input, the uniform rule (½ each) on A·V and Q·Kᵀ, LayerNorm with
 * σ constant, GELU by the identity rule — relevance from the logit's value down to the input: pixels
 * (summed over colour channels) or tokens (summed over the hidden axis), as `lrp`. The ledger marks
 * the softmax boundaries, whose Taylor bias term absorbs relevance by design, as expected drift;
 * on a zero-bias model every other boundary conserves. Same as `lrp --rules attnlrp`.
 */
import { ATTNLRP_RULES } from '../relevance/rulesets.js';
import type { ExplanationMethod } from './types.js';
import { inputRelevanceMaps } from './lrp.js';

export const attnlrp: ExplanationMethod = {
  id: 'attnlrp',
  title: 'AttnLRP (attention-aware LRP, to the input)',
  reference: 'Achtibat et al. 2024 (ICML), LXT',
  targetDependent: true,
  signed: true,
  options: [],
  async attribute(ctx, targets) {
    return inputRelevanceMaps(ctx, targets, ATTNLRP_RULES, 'attnlrp', { rules: ATTNLRP_RULES.id });
  },
};
