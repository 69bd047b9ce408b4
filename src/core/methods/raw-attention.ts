/**
 * Raw attention: the last layer's attention probabilities, averaged over heads, read from the CLS
 * row (a decoder's: the last token's). The authors' `last_layer_attn` (`attn_last_layer` in their
 * scripts).
 */
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';
import { meanOverHeads, row } from './matrix.js';

export const rawAttention: ExplanationMethod = {
  id: 'raw-attention',
  title: 'Raw attention (last layer)',
  reference: 'Chefer et al. 2021, baseline "raw attention"; Jain & Wallace 2019',
  targetDependent: false,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const T = ctx.tokens;
    const rows = ctx.explainedRows();
    return ctx.attention(model.depth - 1).map((probs, b) => {
      const a = meanOverHeads(probs, model.heads, T);
      const { data, shape, space } = model.tokenRowToMap(row(a, T, rows[b]!), 'zero');
      return result(ctx, b, { method: 'raw-attention', target: targets[b]!, map: data, shape, space, options });
    });
  },
};
