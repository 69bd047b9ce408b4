/**
 * Whole passes as one ONNX Runtime session per model: the forward pass (`predict`) and, for methods
 * that take input gradients of many samples at once (integrated gradients' path points, SmoothGrad's
 * noisy copies), the forward and backward pass together. The graphs are traced from the one layer
 * definition (nn/, families/) by engine/trace.ts, so they cannot drift from the eager pass.
 * Explanations that read activations (the relevance rules, attention methods) keep the tfjs forward
 * and its records.
 *
 * Weights are graph inputs fed from a host copy. While the model classes still hold tfjs weights that
 * copy doubles them, so only models up to MAX_WEIGHT_BYTES take this path.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { ortActive } from '../ort-products.js';
import type { ViTModel } from '../models/vit.js';
import type { BertModel } from '../models/bert.js';
import type { ClassifierModel, ModelInput, TokenInput } from '../models/types.js';
import type { HostTensor, Params } from '../engine/ops.js';
import { runTraced } from '../engine/trace.js';
import { inputGradientPass, predictPass, type Network } from '../passes/passes.js';
import { vitFromModel } from '../families/vit/vit.js';
import { bertFromModel, bertInputs, type BertShape } from '../families/bert/bert.js';

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

/** ViT and BERT-family models small enough for a graph to copy their weights. */
function eligible(model: ClassifierModel): boolean {
  return (model.family === 'vit' || model.family === 'bert') && small(model as unknown as { weights: object });
}

/** Whether the model's lean passes (predict, many-sample input gradients) run as native graphs here. */
export function hasNativePasses(model: ClassifierModel): boolean {
  return ortActive() && eligible(model);
}

interface Table {
  readonly network: Network;
  readonly params: Params;
  readonly bert?: BertShape;
}

const tables = new WeakMap<object, Table>();

function tableOf(model: ViTModel | BertModel): Table {
  let t = tables.get(model);
  if (!t) {
    if (model.family === 'vit') t = vitFromModel(model);
    else {
      const b = bertFromModel(model);
      t = { network: b.network, params: b.params, bert: b.shape };
    }
    tables.set(model, t);
  }
  return t;
}

const host = (t: Tensor): HostTensor => ({ data: t.dataSync() as Float32Array, shape: t.shape });
const logitsOf = (y: Record<string, HostTensor>) => tf.tensor2d(y['logits']!.data, y['logits']!.shape as [number, number]);

/** ViT / DeiT logits for pixels [B, C, H, W], or null where ONNX Runtime does not take them. */
export function vitPredictOnOrt(model: ViTModel, pixels: Tensor4D): Tensor2D | null {
  if (!hasNativePasses(model)) return null;
  const t = tableOf(model);
  return logitsOf(runTraced(model, 'predict', t.params, { x: host(pixels) }, predictPass(t.network)));
}

/** BERT-family logits for token ids [B, T] with their mask and segments, or null where ONNX Runtime does not take them. */
export function bertPredictOnOrt(model: BertModel, tokens: TokenInput): Tensor2D | null {
  if (!hasNativePasses(model)) return null;
  const t = tableOf(model);
  const inputs = bertInputs(t.bert!, tokens);
  return logitsOf(runTraced(model, 'predict', t.params, { ...inputs, x: inputs['ids']! }, predictPass(t.network)));
}

/**
 * ∂(Σ w ⊙ logits)/∂x at n values x of the model's differentiable input (pixels [n, C, H, W]; for
 * text, word embeddings [n·T, D] of one sample's tokens), with the logits: the forward and backward
 * pass as one graph. `weights`: [n, classes], e_target or e_target − e_contrast per row. Null where
 * ONNX Runtime does not take the model (the caller runs model.backward).
 */
export function inputGradientOnOrt(model: ClassifierModel, input: ModelInput, x: Tensor, weights: Float32Array): { input: Tensor; logits: Float32Array } | null {
  if (!hasNativePasses(model)) return null;
  const C = model.numClasses;
  let y: Record<string, HostTensor>;
  if (model.family === 'vit') {
    const vit = model as unknown as ViTModel;
    if (x.rank !== 4) return null;
    const t = tableOf(vit);
    y = runTraced(vit, 'gradient', t.params, { x: host(x), seed: { data: weights, shape: [x.shape[0]!, C] } }, inputGradientPass(t.network));
  } else {
    const bert = model as unknown as BertModel;
    if (input.kind !== 'tokens' || input.ids.shape[0] !== 1) return null;
    const T = input.ids.shape[1];
    const D = bert.config.dim;
    const n = x.size / (T * D);
    const t = tableOf(bert);
    const feeds = { ...bertInputs(t.bert!, input, n), x: { data: x.dataSync() as Float32Array, shape: [n, T, D] }, seed: { data: weights, shape: [n, C] } };
    y = runTraced(bert, 'gradient', t.params, feeds, inputGradientPass(t.network));
  }
  return { input: tf.tensor(y['gradient']!.data, x.shape), logits: y['logits']!.data };
}
