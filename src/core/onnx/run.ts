/**
 * Whole passes as one ONNX Runtime session per model: the forward pass (`predict`) and, for methods
 * that take input gradients of many samples at once (integrated gradients' path points, SmoothGrad's
 * noisy copies), the forward and hand-written backward pass together. Everything runs in native
 * code, every elementwise op vectorised and the products threaded, where tfjs-wasm pays ~10 µs per
 * op and runs its elementwise kernels on one core: on the shipped models a forward of 64 occluded
 * images took ~85 ms through tfjs ops and ~20 ms here. Explanations that read activations (the
 * relevance rules, attention methods) keep the tfjs forward and its records.
 *
 * The graphs hold their own copy of the weights, so only models up to MAX_WEIGHT_BYTES take this
 * path. A graph that fails to build or load sends the model back to its tfjs path for good.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { ortActive, runGraph } from '../ort-products.js';
import type { ViTModel } from '../models/vit.js';
import type { BertModel } from '../models/bert.js';
import type { ClassifierModel, ModelInput, TokenInput } from '../models/types.js';
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

const int64 = (t: Tensor) => BigInt64Array.from(t.dataSync() as Int32Array, (v) => BigInt(v));
// dataSync is already a copy out of the wasm heap (Float32Array.from would walk it element by element).
const floats = (t: Tensor) => t.dataSync() as Float32Array;

/** ViT and BERT-family models small enough for a graph to copy their weights. */
function eligible(model: ClassifierModel): boolean {
  return (model.family === 'vit' || model.family === 'bert') && small(model as unknown as { weights: object });
}

/** Whether the model's lean passes (predict, many-sample input gradients) run as native graphs here. */
export function hasNativePasses(model: ClassifierModel): boolean {
  return ortActive() && eligible(model);
}

const logitsOf = (y: ReturnType<typeof runGraph>) => y && tf.tensor2d(y['logits']!.data, [y['logits']!.dims[0]!, y['logits']!.dims[1]!]);

/** ViT / DeiT logits for pixels [B, C, H, W], or null where ONNX Runtime does not take them. */
export function vitPredictOnOrt(model: ViTModel, pixels: Tensor4D): Tensor2D | null {
  if (!eligible(model)) return null;
  return logitsOf(runGraph(model, 'predict', () => vitGraph(model), { pixels: { data: floats(pixels), dims: pixels.shape } }, ['logits']));
}

/** The ids, mask and segments of token input [B, T] (or of one sample repeated `copies` times) as graph feeds. */
function tokenFeeds(tokens: TokenInput, copies = 1) {
  const [B, T] = tokens.ids.shape;
  const repeat = <A extends Float32Array | BigInt64Array>(a: A): A => {
    if (copies === 1) return a;
    const out = new (a.constructor as new (n: number) => A)(a.length * copies);
    for (let i = 0; i < copies; i++) out.set(a as never, i * a.length);
    return out;
  };
  const dims = [B * copies, T];
  return {
    ids: { data: repeat(int64(tokens.ids)), dims },
    mask: { data: repeat(Float32Array.from(tokens.attentionMask.dataSync())), dims },
    types: { data: repeat(tokens.typeIds ? int64(tokens.typeIds) : new BigInt64Array(B * T)), dims },
  };
}

/** Softmax attention takes any length; the sparse maps' sort is built for one (a graph per length). */
const lengthOf = (model: BertModel, T: number) => ((model.config.attention ?? 'softmax') === 'softmax' ? null : T);

/** BERT-family logits for token ids [B, T] with their mask and segments, or null where ONNX Runtime does not take them. */
export function bertPredictOnOrt(model: BertModel, tokens: TokenInput): Tensor2D | null {
  if (!eligible(model)) return null;
  const fixed = lengthOf(model, tokens.ids.shape[1]);
  return logitsOf(runGraph(model, `predict-${fixed ?? 'any'}`, () => bertGraph(model, fixed), tokenFeeds(tokens), ['logits']));
}

/**
 * ∂(Σ w ⊙ logits)/∂x at n values x of the model's differentiable input (pixels [n, C, H, W]; for
 * text, word embeddings [n·T, D] of one sample's tokens), with the logits: the forward and backward
 * pass as one graph. `weights`: [n, classes], e_target or e_target − e_contrast per row. Null where
 * ONNX Runtime does not take the model (the caller runs model.backward).
 */
export function inputGradientOnOrt(model: ClassifierModel, input: ModelInput, x: Tensor, weights: Float32Array): { input: Tensor; logits: Float32Array } | null {
  if (!eligible(model)) return null;
  const C = model.numClasses;
  let y: ReturnType<typeof runGraph>;
  if (model.family === 'vit') {
    const vit = model as unknown as ViTModel;
    if (x.rank !== 4 || vit.weights.blocks.some((b) => b.mlp.activation === 'gelu-tanh')) return null;
    const n = x.shape[0]!;
    y = runGraph(vit, 'gradient', () => vitGraph(vit, true), { pixels: { data: floats(x), dims: x.shape }, weights: { data: weights, dims: [n, C] } }, ['logits', 'gradient']);
  } else {
    const bert = model as unknown as BertModel;
    if (input.kind !== 'tokens' || input.ids.shape[0] !== 1 || bert.weights.layers.some((l) => l.mlp.activation === 'gelu-tanh')) return null;
    const T = input.ids.shape[1];
    const D = bert.config.dim;
    const n = x.size / (T * D);
    const fixed = lengthOf(bert, T);
    const feeds = { ...tokenFeeds(input, n), words: { data: floats(x), dims: [n, T, D] }, weights: { data: weights, dims: [n, C] } };
    y = runGraph(bert, `gradient-${fixed ?? 'any'}`, () => bertGraph(bert, fixed, true), feeds, ['logits', 'gradient']);
  }
  return y && { input: tf.tensor(y['gradient']!.data, x.shape), logits: y['logits']!.data };
}
