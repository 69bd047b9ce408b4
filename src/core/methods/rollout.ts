/**
 * Attention rollout (Abnar & Zuidema 2020) as the authors' `Baselines.generate_rollout` computes it:
 * per layer, attention averaged over heads plus the identity (for the skip connection), each row
 * normalised to sum to 1; the product from `startLayer` to the top; the CLS row (a decoder's: the
 * last token's).
 */
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';
import { addIdentity, meanOverHeads, rolloutRow, rowNormalise } from './matrix.js';

export const rollout: ExplanationMethod = {
  id: 'rollout',
  title: 'Attention rollout',
  reference: 'Abnar & Zuidema 2020, as in Chefer et al. 2021 (Baselines.generate_rollout)',
  targetDependent: false,
  signed: false,
  options: ['startLayer'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const T = ctx.tokens;
    const start = options.startLayer ?? 0;
    ctx.checkLayer(start, 'start layer');
    const rows = ctx.explainedRows();
    const perLayer = Array.from({ length: model.depth }, (_, l) => ctx.attention(l));
    return targets.map((target, b) => {
      const layers = perLayer.map((probs) => rowNormalise(addIdentity(meanOverHeads(probs[b]!, model.heads, T), T), T));
      const { data, shape, space } = model.tokenRowToMap(rolloutRow(layers, T, start, rows[b]!), 'zero');
      return result(ctx, b, { method: 'rollout', target, map: data, shape, space, options: { startLayer: start } });
    });
  },
};
