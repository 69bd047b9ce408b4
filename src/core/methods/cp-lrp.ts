/**
 * Conservative propagation, CP-LRP (Ali et al., ICML 2022, "XAI for Transformers: Better
 * Explanations through Conservative Propagation"): attention weights held constant (AH rule: relevance
 * through the values only), LayerNorm's σ held constant (LN-rule), LRP-0 (ε-stabilised) on Linear
 * layers or LRP-γ with `gamma` > 0 — relevance from the logit's value down to the input, as `lrp`.
 * With γ = 0 it is gradient × input of the model with A and σ detached, and it conserves at every
 * boundary of a zero-bias model but the pooler's tanh, which it crosses by the plain gradient as Ali
 * et al.'s forward_and_explain does (`pooler: 'identity'`: the identity rule there). `lrp --rules
 * cp-lrp` is the γ = 0 case.
 */
import { CP_LRP_RULES, cpLrpRules } from '../relevance/rulesets.js';
import type { ExplanationMethod } from './types.js';
import { inputRelevanceMaps } from './lrp.js';

export const cpLrp: ExplanationMethod = {
  id: 'cp-lrp',
  title: 'CP-LRP (conservative propagation, to the input)',
  reference: 'Ali et al. 2022 (ICML)',
  targetDependent: true,
  signed: true,
  options: ['gamma', 'pooler'],
  async attribute(ctx, targets, options) {
    const gamma = options.gamma ?? 0;
    const pooler = options.pooler ?? 'gradient';
    // Each variant is its own rule set (its id carries γ and the pooler rule), so the context caches one pass per variant.
    const rules = gamma === 0 && pooler === 'gradient' ? CP_LRP_RULES : cpLrpRules({ gamma, pooler });
    const reported = { rules: CP_LRP_RULES.id, ...(options.gamma !== undefined ? { gamma } : {}), ...(options.pooler !== undefined ? { pooler } : {}) };
    return inputRelevanceMaps(ctx, targets, rules, 'cp-lrp', reported);
  },
};
