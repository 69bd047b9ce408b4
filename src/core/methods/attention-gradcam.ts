/**
 * GradCAM on the last attention layer (the paper's "GradCAM" baseline), as each family's authors'
 * code computes it:
 * - ViT (Baselines.generate_cam_attn, before its min-max step): w_h = mean over the input tokens j of
 *   ∇A[h, CLS, j]; map_j = (E_h[A[h, CLS, j]·w_h])⁺. We return the raw map: the authors' min-max
 *   divides 0 by 0 when the map is all zeros, and display code normalises anyway.
 * - BERT (generate_attn_gradcam): w_h = mean of ∇A[h] over all (i, j); the whole T×T map
 *   (E_h[A[h]·w_h])⁺ is min-max normalised, then the CLS self-entry is set to 0; row CLS.
 * - Decoders (GPT-2) as ViT, on the last token's row; the mean runs over the real tokens only, since
 *   ∇A is not zero at masked (padding) keys and would otherwise make a padded batch differ.
 */
import type { ExplanationMethod } from './types.js';
import { perSample, result } from './common.js';

export const attentionGradcam: ExplanationMethod = {
  id: 'attention-gradcam',
  title: 'Attention GradCAM (last layer)',
  reference: 'Selvaraju et al. 2017, on attention as in Chefer et al. 2021 (generate_cam_attn / generate_attn_gradcam)',
  targetDependent: true,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const { heads: H, prefixTokens: P } = model;
    const T = ctx.tokens;
    const last = model.depth - 1;
    const grads = perSample(ctx.gradients(targets).attention[last]!, ctx.batch);
    const probs = ctx.attention(last);
    const wholeMap = model.conventions.gradcam === 'whole-map';
    const explained = ctx.explainedRows();
    const real = ctx.tokenMask();
    // A decoder's explained row sees only the keys up to itself (causal attention): the head weight
    // is the mean over those, so a position inside the text weighs as the text cut after it would.
    const causal = model.conventions.explainedToken === 'last';
    return targets.map((target, b) => {
      const g = grads[b]!;
      const a = probs[b]!;
      const r = explained[b]!;
      const keys = real[b]!;
      const rows = wholeMap ? T : 1;
      // The one row computed in the row mode, or the explained row's place in the whole map.
      const from = wholeMap ? 0 : r * T;
      const at = wholeMap ? r * T : 0;
      const cam = new Float64Array(rows * T);
      for (let h = 0; h < H; h++) {
        const base = h * T * T;
        let w = 0;
        if (wholeMap) {
          for (let i = 0; i < T * T; i++) w += g[base + i]!;
          w /= T * T;
        } else {
          let n = 0;
          for (let j = P; j < T; j++) {
            if (!keys[j] || (causal && j > r)) continue;
            w += g[base + from + j]!;
            n++;
          }
          w /= n;
        }
        for (let i = 0; i < rows * T; i++) cam[i]! += (a[base + from + i]! * w) / H;
      }
      for (let i = 0; i < cam.length; i++) cam[i] = Math.max(0, cam[i]!);
      if (wholeMap) {
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of cam) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        for (let i = 0; i < cam.length; i++) cam[i] = (cam[i]! - lo) / (hi - lo);
      }
      const { data, shape, space } = model.tokenRowToMap(cam.subarray(at, at + T), 'zero');
      return result(ctx, b, { method: 'attention-gradcam', target, map: data, shape, space, options });
    });
  },
};
