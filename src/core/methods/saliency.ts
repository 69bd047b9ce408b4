/**
 * Saliency (Simonyan et al. 2014): |∂y_t/∂x| on the model's input — max over colour channels for
 * images, summed over the hidden axis of the word embeddings for text.
 */
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';

export const saliency: ExplanationMethod = {
  id: 'saliency',
  title: 'Saliency (|gradient|)',
  reference: 'Simonyan, Vedaldi & Zisserman 2014',
  targetDependent: true,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const { maps, shape, space } = ctx.model.attributionMaps(ctx.gradients(targets).input, ctx.batch, 'abs');
    return targets.map((target, b) => result(ctx, b, { method: 'saliency', target, map: maps[b]!, shape, space, options }));
  },
};
