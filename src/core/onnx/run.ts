/**
 * Whole passes as one ONNX Runtime session per model: the forward pass (`predict`) and, for methods
 * that take input gradients of many samples at once (integrated gradients' path points, SmoothGrad's
 * noisy copies), the forward and backward pass together. The graphs are traced from the one layer
 * definition (nn/, families/) by engine/trace.ts, so they cannot drift from the eager pass; a model
 * hands its definition over as a NativeForm, so nothing here knows a model family.
 * Explanations that read activations (the relevance rules, attention methods) keep the tfjs forward
 * and its records.
 *
 * Weights are graph inputs fed from a host copy, made the first time a lean pass runs. While the model
 * classes still hold tfjs weights that copy doubles them, so a model takes this path only where the
 * copy is a small part of the memory this process can have (HOST_COPY_SHARE): ViT-B/16, BERT-base and
 * GPT-2 small do on a 24 GB machine; a 7B model in float32 does not. Relevance passes and attention
 * methods never make the copy.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { ortActive } from '../ort-products.js';
import type { ClassifierModel, ModelInput } from '../models/types.js';
import type { HostTensor } from '../engine/ops.js';
import { runTraced } from '../engine/trace.js';
import { memoryLimit } from '../memory.js';
import { inputGradientPass, predictPass } from '../passes/passes.js';

const HOST_COPY_SHARE = 1 / 8;

const weightBytes = new WeakMap<object, number>();

function bytesOf(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof tf.Tensor) return value.size * 4;
  if (!value || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  return Object.values(value).reduce((s: number, v) => s + bytesOf(v, seen), 0);
}

/** Below this the host copy is cheap enough to make just for a context's logits. */
const CHEAP_COPY_BYTES = 64 * 2 ** 20;
let limit: number | undefined;
/** Models whose host copy exists (a native pass has run). */
const copied = new WeakSet<object>();

function bytesOfWeights(model: ClassifierModel): number {
  let bytes = weightBytes.get(model);
  if (bytes === undefined) weightBytes.set(model, (bytes = bytesOf((model as { weights?: unknown }).weights)));
  return bytes;
}

function small(model: ClassifierModel): boolean {
  limit ??= memoryLimit().bytes;
  return bytesOfWeights(model) <= limit * HOST_COPY_SHARE;
}

/** Whether the model's lean passes (predict, many-sample input gradients) run as native graphs here. */
export function hasNativePasses(model: ClassifierModel): boolean {
  return ortActive() && model.nativeForm !== undefined && small(model);
}

/**
 * Whether a context should take its logits from the lean native pass rather than the recorded
 * forward: only where that costs no large host copy of the weights (small models, or one already
 * made), so a relevance method on ViT-B/16 does not pay for a copy and a forward it never uses.
 */
export function hasCheapNativePredict(model: ClassifierModel): boolean {
  return hasNativePasses(model) && (copied.has(model) || bytesOfWeights(model) <= CHEAP_COPY_BYTES);
}

function formOf(model: ClassifierModel) {
  copied.add(model);
  return model.nativeForm!();
}

const logitsOf = (y: Record<string, HostTensor>) => tf.tensor2d(y['logits']!.data, y['logits']!.shape as [number, number]);

/** The logits of `input` from the traced forward pass, or null where ONNX Runtime does not take the model. */
export function predictOnOrt(model: ClassifierModel, input: ModelInput): Tensor2D | null {
  if (!hasNativePasses(model)) return null;
  const f = formOf(model);
  return logitsOf(runTraced(model, 'predict', f.params, f.predictFeeds(input), predictPass(f.network)));
}

/**
 * ∂(Σ w ⊙ logits)/∂x at n values x of the model's differentiable input (pixels [n, C, H, W]; for
 * text, word embeddings [n·T, D] of one sample's tokens), with the logits: the forward and backward
 * pass as one graph. `weights`: [n, classes], e_target or e_target − e_contrast per row. Null where
 * ONNX Runtime does not take the model (the caller runs model.backward).
 */
export function inputGradientOnOrt(model: ClassifierModel, input: ModelInput, x: Tensor, weights: Float32Array): { input: Tensor; logits: Float32Array } | null {
  if (!hasNativePasses(model)) return null;
  const f = formOf(model);
  const g = f.gradientFeeds(input, x);
  if (!g) return null;
  const y = runTraced(model, 'gradient', f.params, { ...g.feeds, seed: { data: weights, shape: [g.copies, model.numClasses] } }, inputGradientPass(f.network));
  return { input: tf.tensor(y['gradient']!.data, x.shape), logits: y['logits']!.data };
}
