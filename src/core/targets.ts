import { tf, type Tensor } from './tf.js';

export function oneHotTargets(targets: readonly number[], classes: number): Tensor {
  return tf.tidy(() => tf.oneHot(tf.tensor1d([...targets], 'int32'), classes).toFloat());
}

/** Per input, the weights the logits are summed with: e_t, or e_t − e_c for a contrastive target; [B, C]. */
export function targetWeights(targets: readonly number[], classes: number, contrast?: readonly number[] | null): Tensor {
  if (!contrast) return oneHotTargets(targets, classes);
  if (contrast.length !== targets.length) throw new Error(`${contrast.length} contrast classes for ${targets.length} targets`);
  return tf.tidy(() => tf.sub(oneHotTargets(targets, classes), oneHotTargets(contrast, classes)));
}
