/**
 * The paper's method (Chefer, Gur & Wolf, CVPR 2021, eq. 13–14): per layer
 * Ā = E_h[(∇A ⊙ R^(A))⁺], then the rollout C = (Ā_L + I)·…·(Ā_s + I) — identity added, rows not
 * normalised for ViT as ViT_LRP.compute_rollout_attention, normalised for BERT as its
 * ExplanationGenerator — and the CLS row over the input tokens.
 */
import { tf } from '../tf.js';
import { getRuleSet, PAPER_RULES } from '../relevance/rulesets.js';
import type { ExplanationMethod } from './types.js';
import { computePerSample, result } from './common.js';
import { addIdentity, rolloutRow, rowNormalise } from './matrix.js';

export const transformerAttribution: ExplanationMethod = {
  id: 'transformer-attribution',
  title: 'Transformer attribution (Chefer et al.)',
  reference: 'Chefer, Gur & Wolf, "Transformer Interpretability Beyond Attention Visualization", CVPR 2021',
  targetDependent: true,
  signed: false,
  options: ['startLayer', 'rules'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const T = ctx.tokens;
    const start = options.startLayer ?? 0;
    ctx.checkLayer(start, 'start layer');
    const rules = getRuleSet(options.rules, PAPER_RULES);
    const grads = ctx.gradients(targets);
    const rel = ctx.relevance(rules, targets);
    const perLayer = rel.attnCam.map((cam, l) =>
      computePerSample(() => tf.mean(tf.relu(tf.mul(grads.attention[l]!, cam)), 1), ctx.batch),
    );
    const rows = ctx.explainedRows();
    return targets.map((target, b) => {
      const layers = perLayer.map((maps) => {
        const m = addIdentity(Float64Array.from(maps[b]!), T);
        return model.conventions.attributionRolloutRowNormalise ? rowNormalise(m, T) : m;
      });
      // The authors' BERT code replaces the CLS self-entry by the row's minimum; ViT maps drop CLS anyway.
      const { data, shape, space } = model.tokenRowToMap(rolloutRow(layers, T, start, rows[b]!), 'row-min');
      return result(ctx, b, { method: 'transformer-attribution', target, map: data, shape, space, ledger: rel.ledger[b], options: { startLayer: start, rules: rules.id } });
    });
  },
};
