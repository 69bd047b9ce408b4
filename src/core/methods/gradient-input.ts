/**
 * Gradient × input (Shrikumar et al. 2016), summed over colour channels, on the normalised pixels
 * the model sees.
 */
import { tf } from '../tf.js';
import type { ExplanationMethod } from './types.js';
import { computePerSample, result } from './common.js';

export const gradientInput: ExplanationMethod = {
  id: 'gradient-input',
  title: 'Gradient × input',
  reference: 'Shrikumar et al. 2016',
  targetDependent: true,
  signed: true,
  options: [],
  async attribute(ctx, targets, options) {
    const grad = ctx.gradients(targets).input;
    const [, , h, w] = grad.shape;
    const maps = computePerSample(() => tf.sum(tf.mul(grad, ctx.input.pixels), 1), ctx.batch);
    return targets.map((target, b) => result(ctx, b, { method: 'gradient-input', target, map: maps[b]!, shape: [h, w], space: 'pixel', options }));
  },
};
