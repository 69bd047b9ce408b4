/**
 * Meister et al. (ACL 2021), "Is Sparse Attention more Interpretable?": how much of the
 * representation at position i after layer l is attributable to its co-indexed input unit (token i,
 * or the patch under token i) rather than to the others. Attribution is gradient × input of
 * ½‖h_i⁽ˡ⁾‖², summed in absolute value per input unit (pixels of a patch and colours, or the hidden
 * axis of a word embedding); the score for position i is its own unit's share of the total.
 *
 * The T positions are T independent copies of the input in one batch, copy b differentiating the
 * representation at its own position b: one backward pass per layer instead of T.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { UsageError } from '../errors.js';
import type { ClassifierModel, ModelInput } from '../models/types.js';
import { batchSize } from '../models/types.js';
import { ViTModel } from '../models/vit.js';

export interface TokenIdentity {
  /** Per layer: the mean over positions of the co-indexed unit's share. */
  readonly layers: number[];
  /** Per layer, per position (units in map order: patches, or every token including specials): the share. */
  readonly perPosition: number[][];
}

/** Per-copy attributions of shape [n, units]: sums of |grad × input| within each unit. */
function unitShares(model: ClassifierModel, attribution: Tensor, n: number): Float32Array[] {
  const { maps, shape } = model.attributionMaps(attribution, n, 'abs-sum');
  if (!(model instanceof ViTModel)) return maps;
  // Pixels → patches: sum each patch's pixels.
  const [h, w] = shape as [number, number];
  const p = model.config.patchSize;
  const [gh, gw] = model.grid;
  return maps.map((m) => {
    const out = new Float32Array(gh * gw);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[Math.floor(y / p) * gw + Math.floor(x / p)]! += m[y * w + x]!;
    return out;
  });
}

export function coIndexedAttribution(model: ClassifierModel, input: ModelInput, options: { positions?: number[] } = {}): TokenIdentity {
  if (batchSize(input) !== 1) throw new UsageError('the co-indexed attribution takes one input at a time');
  const T = model.tokensOf(input);
  const P = model instanceof ViTModel ? model.prefixTokens : 0;
  // Positions with an input unit of their own: patch tokens (ViT), every token (text).
  let positions = options.positions ?? Array.from({ length: T - P }, (_, i) => i + P);
  if (input.kind === 'tokens') {
    const mask = input.attentionMask.dataSync();
    positions = positions.filter((i) => mask[i]! > 0);
  }
  const n = positions.length;
  const x0 = model.gradientInput(input);
  const x = tf.tidy(() => tf.concat(Array(n).fill(x0), 0));
  const layers: number[] = [];
  const perPosition: number[][] = [];
  for (let l = 0; l < model.depth; l++) {
    const f = (value: Tensor) => {
      const fwd = model.forward(input, { inputValue: value });
      const h = model.hiddenStates(fwd)[l]!;
      // Copy b's own position b, picked with a one-hot mask: gather's gradient has no wasm kernel.
      const pick = tf.oneHot(tf.tensor1d(positions, 'int32'), T).toFloat().reshape([n, T, 1]);
      const rows = tf.sum(tf.mul(tf.reshape(h, [n, T, -1]), pick), 1) as Tensor2D;
      return tf.mul(tf.sum(tf.square(rows)), 0.5);
    };
    const grad = tf.grad(f)(x);
    const attribution = tf.mul(grad, x);
    const shares = unitShares(model, attribution, n);
    tf.dispose([grad, attribution]);
    const row = shares.map((u, b) => {
      const own = u[positions[b]! - P]!;
      const total = u.reduce((a, v) => a + v, 0);
      return total > 0 ? own / total : NaN;
    });
    perPosition.push(row);
    const finite = row.filter(Number.isFinite);
    layers.push(finite.reduce((a, v) => a + v, 0) / finite.length);
  }
  tf.dispose([x0, x]);
  return { layers, perPosition };
}
