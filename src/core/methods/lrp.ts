/**
 * Full LRP to the pixels: relevance through every block, the position-embedding Add (its share
 * dropped) and the patch embedding (zᴮ rule), summed over colour channels. With the paper's rules
 * this is the authors' `full` method; with `rules: 'baseline'` it is the paper's "LRP" baseline.
 */
import { getRuleSet, PAPER_RULES } from '../relevance/rulesets.js';
import { UsageError } from '../errors.js';
import type { ExplanationMethod } from './types.js';
import { perSample, result } from './common.js';

export const lrp: ExplanationMethod = {
  id: 'lrp',
  title: 'LRP (full, to the pixels)',
  reference: 'Bach et al. 2015; rules of Chefer et al. 2021 (paper) or their LRP baseline (baseline)',
  targetDependent: true,
  signed: true,
  options: ['rules'],
  async attribute(ctx, targets, options) {
    const rules = getRuleSet(options.rules, PAPER_RULES);
    const rel = ctx.relevance(rules, targets, true);
    if (!rel.pixels) throw new UsageError(`model '${ctx.model.name}' has no pixel input for full LRP`);
    const [, h, w] = rel.pixels.shape;
    const maps = perSample(rel.pixels, ctx.batch);
    return targets.map((target, b) =>
      result(ctx, b, { method: 'lrp', target, map: maps[b]!, shape: [h, w], space: 'pixel', ledger: rel.ledger[b], options: { rules: rules.id } }),
    );
  },
};
