/**
 * Partial LRP (Voita et al. 2019), the paper's baseline: the last layer's attention relevance R^(A),
 * clamped at 0 and averaged over heads, CLS row. The paper computes it with the original-LRP rules
 * (`rules: 'baseline'`, the default here); `rules: 'paper'` gives the authors' `last_layer`.
 */
import { BASELINE_RULES, getRuleSet } from '../relevance/rulesets.js';
import type { ExplanationMethod } from './types.js';
import { positiveHeadMean, result } from './common.js';
import { row } from './matrix.js';

export const partialLrp: ExplanationMethod = {
  id: 'partial-lrp',
  title: 'Partial LRP (last-layer attention relevance)',
  reference: 'Voita et al. 2019, as the baseline in Chefer et al. 2021',
  targetDependent: true,
  signed: false,
  options: ['rules'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const rules = getRuleSet(options.rules, BASELINE_RULES);
    // Only the last layer's R^(A) is read: the pass stops there.
    const rel = ctx.relevance(rules, targets, false, { fromLayer: model.depth - 1 });
    const maps = positiveHeadMean(rel.attnCam[model.depth - 1]!, ctx.batch);
    const rows = ctx.explainedRows();
    return targets.map((target, b) => {
      const { data, shape, space } = model.tokenRowToMap(row(Float64Array.from(maps[b]!), ctx.tokens, rows[b]!), 'zero');
      return result(ctx, b, { method: 'partial-lrp', target, map: data, shape, space, ledger: rel.ledger[b], options: { rules: rules.id } });
    });
  },
};
