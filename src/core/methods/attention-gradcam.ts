/**
 * GradCAM on the last attention layer (the paper's "GradCAM" baseline, the authors'
 * Baselines.generate_cam_attn before its min-max step): w_h = mean over the input tokens j of
 * ∇A[h, CLS, j]; map_j = (E_h[A[h, CLS, j]·w_h])⁺. We return the raw map; the authors' min-max
 * normalisation divides 0 by 0 when the map is all zeros, and display code normalises anyway.
 */
import type { ExplanationMethod } from './types.js';
import { perSample, result } from './common.js';

export const attentionGradcam: ExplanationMethod = {
  id: 'attention-gradcam',
  title: 'Attention GradCAM (last layer)',
  reference: 'Selvaraju et al. 2017, on attention as in Chefer et al. 2021 (Baselines.generate_cam_attn)',
  targetDependent: true,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const { heads: H, tokens: T, prefixTokens: P } = model;
    const last = model.depth - 1;
    const grads = perSample(ctx.gradients(targets).attention[last]!, ctx.batch);
    const probs = ctx.attention(last);
    return targets.map((target, b) => {
      const g = grads[b]!;
      const a = probs[b]!;
      const cam = new Float64Array(T);
      for (let h = 0; h < H; h++) {
        const cls = h * T * T; // row 0 of head h
        let w = 0;
        for (let j = P; j < T; j++) w += g[cls + j]!;
        w /= T - P;
        for (let j = 0; j < T; j++) cam[j]! += (a[cls + j]! * w) / H;
      }
      for (let j = 0; j < T; j++) cam[j] = Math.max(0, cam[j]!);
      const { data, shape, space } = model.tokenRowToMap(cam);
      return result(ctx, b, { method: 'attention-gradcam', target, map: data, shape, space, options });
    });
  },
};
