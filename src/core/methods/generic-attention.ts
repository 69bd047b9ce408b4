/**
 * Generic attention explainability (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model
 * Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers"), self-attention case:
 * per layer Ā = E_h[(∇A ⊙ A)⁺] — the gradient of the target logit w.r.t. the attention
 * probabilities times the probabilities themselves, no LRP — and R ← R + Ā·R from R = I, in forward
 * order; the map is R's CLS row (a decoder's: the last token's). As the authors' code (Transformer-MM-Explainability,
 * `generate_relevance` for ViT, `GeneratorOurs` for text): no row normalisation; for text the CLS
 * self-entry is set to 0 (`R_t_t[0,0] = 0`); for ViT the prefix tokens are dropped (`R[0, 1:]`).
 */
import { tf } from '../tf.js';
import type { ExplanationMethod } from './types.js';
import { computePerSample, result } from './common.js';

export const genericAttention: ExplanationMethod = {
  id: 'generic-attention',
  title: 'Generic attention explainability (Chefer et al. 2021b)',
  reference: 'Chefer, Gur & Wolf, "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021',
  targetDependent: true,
  signed: false,
  options: ['startLayer'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const T = ctx.tokens;
    const start = options.startLayer ?? 0;
    ctx.checkLayer(start, 'start layer');
    const grads = ctx.gradients(targets);
    const fwd = ctx.forward();
    const rows = ctx.explainedRows();
    const perLayer: Float32Array[][] = [];
    for (let l = start; l < model.depth; l++) {
      perLayer.push(computePerSample(() => tf.mean(tf.relu(tf.mul(grads.attention[l]!, fwd.attention[l]!.probs)), 1), ctx.batch));
    }
    return targets.map((target, b) => {
      const r = rowOfUpdates(perLayer.map((maps) => maps[b]!), T, rows[b]!);
      const { data, shape, space } = model.tokenRowToMap(r, 'zero');
      return result(ctx, b, { method: 'generic-attention', target, map: data, shape, space, options: { startLayer: start } });
    });
  },
};

/**
 * Row `index` of R after R ← R + Ā_l·R for l = first..last, starting from I. R = (I + Ā_last)…(I + Ā_first),
 * so that row is e_indexᵀ(I + Ā_last)…(I + Ā_first): a row vector carried down from the top layer, which
 * costs T² per layer instead of the T³ of the full matrix products.
 */
export function rowOfUpdates(layers: readonly ArrayLike<number>[], T: number, index: number): Float64Array {
  let v = new Float64Array(T);
  v[index] = 1;
  for (let l = layers.length - 1; l >= 0; l--) {
    const a = layers[l]!;
    const next = Float64Array.from(v);
    for (let i = 0; i < T; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const rowStart = i * T;
      for (let j = 0; j < T; j++) next[j]! += vi * a[rowStart + j]!;
    }
    v = next;
  }
  return v;
}
