/** Saliency (Simonyan et al. 2014): max over colour channels of |∂y_t/∂x|. */
import { tf } from '../tf.js';
import type { ExplanationMethod } from './types.js';
import { computePerSample, result } from './common.js';

export const saliency: ExplanationMethod = {
  id: 'saliency',
  title: 'Saliency (|gradient|)',
  reference: 'Simonyan, Vedaldi & Zisserman 2014',
  targetDependent: true,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const grad = ctx.gradients(targets).input;
    const [, , h, w] = grad.shape;
    const maps = computePerSample(() => tf.max(tf.abs(grad), 1), ctx.batch);
    return targets.map((target, b) => result(ctx, b, { method: 'saliency', target, map: maps[b]!, shape: [h, w], space: 'pixel', options }));
  },
};
