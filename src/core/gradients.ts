/**
 * Gradients of target logits, ∂y_t/∂x and ∂y_t/∂A, in one backward pass. Models with a hand-written
 * backward pass (model.backward: ViT, BERT) differentiate a recorded forward pass directly — the
 * context's own, when it has one. The others go through tf.grads: TensorFlow.js has no hooks on
 * intermediate tensors, so ∂/∂A is taken there through a zero "probe" added to A in the forward.
 *
 * A target may be contrastive: with a contrast class c per input, the differentiated output is
 * y_t − y_c ("why ' Paris' rather than ' Rome'"). Its gradient is ∇y_t − ∇y_c by linearity, taken in
 * the same single backward pass by weighting the logits with e_t − e_c instead of e_t.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from './tf.js';
import { ortActive } from './ort-products.js';
import { inputGradientOnOrt } from './onnx/run.js';
import type { ClassifierModel, ForwardResult, ModelInput } from './models/types.js';
import { tensorsOf } from './tensors.js';
import { oneHotTargets, targetWeights } from './targets.js';

export { oneHotTargets, targetWeights } from './targets.js';

export interface GradientResult {
  /** ∂y_t/∂A per layer, [B, H, T, T] (empty unless asked for). */
  readonly attention: readonly Tensor4D[];
  /** ∂y_t/∂x for the model's differentiable input x (pixels, or word embeddings for text). */
  readonly input: Tensor;
  /** The logits of this forward pass, [B, C] as numbers. */
  readonly logits: Float32Array;
}

/**
 * Each input's own target logit is differentiated; inputs in a batch do not interact, so the
 * gradient of the batch sum keeps them apart. `x` is the differentiable input (defaults to
 * model.gradientInput(input)); its batch may be n × the input's when the input has one sample.
 * `onForward` receives the forward pass so a caller can keep it instead of running another.
 * `contrast`, one class per target, makes each differentiated output y_target − y_contrast.
 */
export function gradientsAt(
  model: ClassifierModel,
  input: ModelInput,
  targets: readonly number[],
  withAttention: boolean,
  options: {
    x?: Tensor;
    /**
     * Receives the forward pass so a caller can keep it instead of running another; returns true
     * when it does keep it (then it owns its tensors).
     */
    onForward?: (fwd: ForwardResult) => boolean | void;
    contrast?: readonly number[] | null;
    /** A recorded forward pass of this input to differentiate, where the model can (model.backward). */
    forward?: ForwardResult;
    /**
     * Run the forward pass (of `x`) on the batched attention path, every sample and head in one 3-D
     * product, and differentiate it batched too: for many samples at once with ONNX Runtime's
     * products (see batchedGradients). Only where the model has a hand-written backward pass.
     */
    batched?: boolean;
  } = {},
): GradientResult {
  if (model.backward) return backwardAt(model, input, targets, withAttention, options);
  // Many samples' input gradients alone: the traced forward and backward pass, as for backwardAt.
  if (!withAttention && options.x && !options.onForward) {
    const seed = targetWeights(targets, model.numClasses, options.contrast);
    const native = inputGradientOnOrt(model, input, options.x, seed.dataSync() as Float32Array);
    seed.dispose();
    if (native) return { input: native.input, attention: [], logits: native.logits };
  }
  const B = targets.length;
  const T = model.tokensOf(input);
  const H = model.heads;
  const perLayer = withAttention ? B * H : 0;
  const x = options.x ?? model.gradientInput(input);
  const probes = Array.from({ length: model.depth * perLayer }, () => tf.zeros([T, T]) as Tensor2D);
  const oneHot = targetWeights(targets, model.numClasses, options.contrast);
  let logits: Tensor | null = null;
  const f = (...args: Tensor[]) => {
    const [value, ...ps] = args as [Tensor, ...Tensor2D[]];
    const layers = Array.from({ length: model.depth }, (_, l) => ps.slice(l * perLayer, (l + 1) * perLayer));
    const fwd = model.forward(input, { inputValue: value, ...(withAttention ? { probes: layers } : {}) });
    logits = tf.keep(fwd.logits.clone());
    options.onForward?.(fwd);
    return tf.sum(tf.mul(fwd.logits, oneHot));
  };
  const [inputGrad, ...perHead] = tf.grads(f)([x, ...probes]);
  const values = (logits as Tensor | null)!.dataSync() as Float32Array;
  const attention = Array.from({ length: withAttention ? model.depth : 0 }, (_, l) =>
    tf.tidy(() => tf.reshape(tf.stack(perHead.slice(l * perLayer, (l + 1) * perLayer)), [B, H, T, T]) as Tensor4D),
  );
  tf.dispose([...probes, ...perHead, oneHot, logits!]);
  if (!options.x) x.dispose();
  return { input: inputGrad!, attention, logits: values };
}

/**
 * gradientsAt for a model with a hand-written backward pass: the forward pass given (the context's)
 * or one run here, then model.backward — no tape, no probes.
 */
function backwardAt(
  model: ClassifierModel,
  input: ModelInput,
  targets: readonly number[],
  withAttention: boolean,
  options: { x?: Tensor; onForward?: (fwd: ForwardResult) => boolean | void; contrast?: readonly number[] | null; forward?: ForwardResult; batched?: boolean },
): GradientResult {
  const seed = targetWeights(targets, model.numClasses, options.contrast) as Tensor2D;
  // Many samples' input gradients alone: the forward and backward pass as one ONNX Runtime graph.
  if (!withAttention && options.x && !options.onForward) {
    const native = inputGradientOnOrt(model, input, options.x, seed.dataSync() as Float32Array);
    if (native) {
      seed.dispose();
      return { input: native.input, attention: [], logits: native.logits };
    }
  }
  const given = options.x ? undefined : options.forward;
  let fwd: ForwardResult;
  try {
    // Many samples at once (options.x of n path points or noisy copies) take the batched path where that is faster (batchedGradients).
    const batched = options.batched ?? (options.x !== undefined && batchedGradients(model, targets.length));
    fwd = given ?? model.forward(input, { ...(options.x ? { inputValue: options.x } : {}), ...(batched ? { batchedAttention: true } : {}) });
  } catch (err) {
    seed.dispose();
    throw err;
  }
  const kept = given !== undefined || options.onForward?.(fwd) === true;
  try {
    const g = model.backward!(fwd, seed, { attention: withAttention });
    return { input: g.input, attention: g.attention, logits: fwd.logits.dataSync() as Float32Array };
  } finally {
    seed.dispose();
    if (!kept) tf.dispose(tensorsOf(fwd));
  }
}

/** One-hot rows for the targets, [B, C] float32. */
/**
 * Whether a gradient over n samples at once (integrated gradients' path points, SmoothGrad's noisy
 * copies) should take the batched path: with ONNX Runtime taking the products, one 3-D product per
 * site costs one call where the per-head path makes n·H (on `image-softmax`, 16 samples: 16,000
 * kernel calls per IG); on tfjs-wasm alone the 3-D kernel is the slow one, so not there.
 */
export function batchedGradients(model: ClassifierModel, n: number): boolean {
  return n > 1 && !!model.backward && ortActive();
}

