/**
 * `predict` as one ONNX Runtime session per model: the whole forward pass in native code, every
 * elementwise op vectorised and the products threaded, where tfjs-wasm pays ~10 µs per op and runs
 * its elementwise kernels on one core. On the shipped models a forward of 64 occluded images took
 * ~85 ms through tfjs ops and ~20 ms here. Used where only the logits are wanted (occlusion's
 * variants, perturbation curves, predictions); explanations that need the activations keep the
 * tfjs forward, whose records the relevance rules read.
 *
 * The graph holds its own copy of the weights, so only models up to MAX_WEIGHT_BYTES take this path.
 * Any failure to build or load a graph sends the model back to its tfjs path for good.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { runGraph } from '../ort-products.js';
import type { ViTModel } from '../models/vit.js';
import type { BertModel } from '../models/bert.js';
import type { TokenInput } from '../models/types.js';
import { vitGraph } from './vit.js';
import { bertGraph } from './bert.js';

const MAX_WEIGHT_BYTES = 64 * 2 ** 20;

const weightBytes = new WeakMap<object, number>();

function bytesOf(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof tf.Tensor) return value.size * 4;
  if (!value || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  return Object.values(value).reduce((s: number, v) => s + bytesOf(v, seen), 0);
}

function small(model: { weights: object }): boolean {
  let bytes = weightBytes.get(model);
  if (bytes === undefined) weightBytes.set(model, (bytes = bytesOf(model.weights)));
  return bytes <= MAX_WEIGHT_BYTES;
}

const logits = (y: { data: Float32Array; dims: number[] }) => tf.tensor2d(y.data, [y.dims[0]!, y.dims[1]!]);

/** ViT / DeiT logits for pixels [B, C, H, W], or null where ONNX Runtime does not take them. */
export function vitPredictOnOrt(model: ViTModel, pixels: Tensor4D): Tensor2D | null {
  if (!small(model)) return null;
  const y = runGraph(model, 'predict', () => vitGraph(model), { pixels: { data: pixels.dataSync() as Float32Array, dims: pixels.shape } }, 'logits');
  return y && logits(y);
}

const int64 = (t: Tensor) => BigInt64Array.from(t.dataSync(), (v) => BigInt(v));

/** BERT-family logits for token ids [B, T] with their mask and segments, or null where ONNX Runtime does not take them. */
export function bertPredictOnOrt(model: BertModel, tokens: TokenInput): Tensor2D | null {
  if (!small(model)) return null;
  const [B, T] = tokens.ids.shape;
  // Softmax attention takes any length; the sparse maps' sort is built for one (a graph per length).
  const fixed = (model.config.attention ?? 'softmax') === 'softmax' ? null : T;
  const feeds = {
    ids: { data: int64(tokens.ids), dims: [B, T] },
    mask: { data: Float32Array.from(tokens.attentionMask.dataSync()), dims: [B, T] },
    types: { data: tokens.typeIds ? int64(tokens.typeIds) : new BigInt64Array(B * T), dims: [B, T] },
  };
  const y = runGraph(model, `predict-${fixed ?? 'any'}`, () => bertGraph(model, fixed), feeds, 'logits');
  return y && logits(y);
}
