/**
 * Gradient × input (Shrikumar et al. 2016) on the model's input — the normalised pixels (summed over
 * colour channels) or the word embeddings (summed over the hidden axis).
 */
import { tf } from '../tf.js';
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';

export const gradientInput: ExplanationMethod = {
  id: 'gradient-input',
  title: 'Gradient × input',
  reference: 'Shrikumar et al. 2016',
  targetDependent: true,
  signed: true,
  options: [],
  async attribute(ctx, targets, options) {
    const grad = ctx.gradients(targets).input;
    const x = ctx.model.gradientInput(ctx.input);
    const product = tf.mul(grad, x);
    const { maps, shape, space } = ctx.model.attributionMaps(product, ctx.batch, 'signed');
    tf.dispose([x, product]);
    return targets.map((target, b) => result(ctx, b, { method: 'gradient-input', target, map: maps[b]!, shape, space, options }));
  },
};
