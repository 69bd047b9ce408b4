/**
 * Whole passes as one ONNX Runtime session per model: the forward pass (`predict`) and, for methods
 * that take input gradients of many samples at once (integrated gradients' path points, SmoothGrad's
 * noisy copies), the forward and backward pass together. The graphs are traced from the one layer
 * definition (nn/, families/) by engine/trace.ts, so they cannot drift from the eager pass; a model
 * hands its definition over as a NativeForm, so nothing here knows a model family.
 * Explanations that read activations (the relevance rules, attention methods) keep the tfjs forward
 * and its records.
 *
 * Weights are graph inputs fed from a host copy. While the model classes still hold tfjs weights that
 * copy doubles them, so only models up to MAX_WEIGHT_BYTES take this path.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { ortActive } from '../ort-products.js';
import type { ClassifierModel, ModelInput } from '../models/types.js';
import type { HostTensor } from '../engine/ops.js';
import { runTraced } from '../engine/trace.js';
import { inputGradientPass, predictPass } from '../passes/passes.js';

const MAX_WEIGHT_BYTES = 64 * 2 ** 20;

const weightBytes = new WeakMap<object, number>();

function bytesOf(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof tf.Tensor) return value.size * 4;
  if (!value || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  return Object.values(value).reduce((s: number, v) => s + bytesOf(v, seen), 0);
}

function small(model: ClassifierModel): boolean {
  let bytes = weightBytes.get(model);
  if (bytes === undefined) weightBytes.set(model, (bytes = bytesOf((model as { weights?: unknown }).weights)));
  return bytes <= MAX_WEIGHT_BYTES;
}

/** Whether the model's lean passes (predict, many-sample input gradients) run as native graphs here. */
export function hasNativePasses(model: ClassifierModel): boolean {
  return ortActive() && model.nativeForm !== undefined && small(model);
}

const logitsOf = (y: Record<string, HostTensor>) => tf.tensor2d(y['logits']!.data, y['logits']!.shape as [number, number]);

/** The logits of `input` from the traced forward pass, or null where ONNX Runtime does not take the model. */
export function predictOnOrt(model: ClassifierModel, input: ModelInput): Tensor2D | null {
  if (!hasNativePasses(model)) return null;
  const f = model.nativeForm!();
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
  const f = model.nativeForm!();
  const g = f.gradientFeeds(input, x);
  if (!g) return null;
  const y = runTraced(model, 'gradient', f.params, { ...g.feeds, seed: { data: weights, shape: [g.copies, model.numClasses] } }, inputGradientPass(f.network));
  return { input: tf.tensor(y['gradient']!.data, x.shape), logits: y['logits']!.data };
}
