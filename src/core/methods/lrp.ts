/**
 * Full LRP to the input: for ViT, relevance through every block, the position-embedding Add (its
 * share dropped) and the patch embedding (zᴮ rule) to the pixels, summed over colour channels; for
 * text, the relevance at the encoder input summed over the hidden axis, one value per token (the
 * authors' generate_full_lrp also zeroes CLS; we keep it, so the map shows where relevance went). With the paper's rules
 * this is the authors' `full` method; with `rules: 'baseline'` it is the paper's "LRP" baseline.
 */
import { getRuleSet, PAPER_RULES, type RuleSet } from '../relevance/rulesets.js';
import { UsageError } from '../errors.js';
import type { ExplainContext } from '../context.js';
import type { Explanation, ExplanationMethod, MethodOptions } from './types.js';
import { perSample, result } from './common.js';

/**
 * The relevance a rule set's pass puts on the model's input (pixels, or tokens summed over the
 * hidden axis), one map per input, each with its ledger: what `lrp` and the rule-set methods
 * (`attnlrp`, `cp-lrp`) return.
 */
export function inputRelevanceMaps(
  ctx: ExplainContext,
  targets: readonly number[],
  rules: RuleSet,
  method: string,
  options: MethodOptions,
): Explanation[] {
  const rel = ctx.relevance(rules, targets, true);
  if (!rel.input) throw new UsageError(`model '${ctx.model.name}' gives no input-level relevance`);
  const shape = rel.input.shape.slice(1);
  const maps = perSample(rel.input, ctx.batch);
  const space = shape.length === 2 ? 'pixel' : 'token';
  return targets.map((target, b) => result(ctx, b, { method, target, map: maps[b]!, shape, space, ledger: rel.ledger[b], options }));
}

export const lrp: ExplanationMethod = {
  id: 'lrp',
  title: 'LRP (full, to the pixels)',
  reference: 'Bach et al. 2015; rules of Chefer et al. 2021 (paper) or their LRP baseline (baseline)',
  targetDependent: true,
  signed: true,
  options: ['rules'],
  async attribute(ctx, targets, options) {
    const rules = getRuleSet(options.rules, PAPER_RULES);
    return inputRelevanceMaps(ctx, targets, rules, 'lrp', { rules: rules.id });
  },
};
