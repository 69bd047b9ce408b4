/**
 * Tensor ops every model and rule shares, written for TensorFlow.js-wasm's fast path: 2-D matMul with
 * no transpose flags is ~25× faster there than a batched or transposed one, so every product is 2-D
 * and transposes are explicit (their cost is linear, the naive kernel's is not).
 */
import { tf, type Tensor, type Tensor1D, type Tensor2D } from './tf.js';

/** a·b for 2-D operands, with gradients that also stay on the 2-D, no-transpose-flag path. */
export const matmul = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [Tensor2D, Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [sa, sb] = saved as [Tensor2D, Tensor2D];
      return [tf.tidy(() => tf.matMul(dy as Tensor2D, tf.transpose(sb))), tf.tidy(() => tf.matMul(tf.transpose(sa), dy as Tensor2D))];
    },
  };
}) as (a: Tensor2D, b: Tensor2D) => Tensor2D;

/**
 * tf.tidy for functions returning typed records of tensors (interfaces, not index-signature
 * containers): tidy walks any nested object at run time, only its type is narrower.
 */
export function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

/** A fully connected layer. `wT` is the PyTorch weight transposed once at load, [in, out]. */
export interface Linear {
  readonly name: string;
  readonly wT: Tensor2D;
  readonly b: Tensor1D | null;
}

/**
 * x·Wᵀ + b. Weights are constants to every method here, so the gradient is taken for x alone: a
 * generic matmul gradient would also build ∂/∂W for every layer (344 MB on ViT-B/16) only to drop it.
 */
export function linear(layer: Linear, x: Tensor2D): Tensor2D {
  // While training, weights are variables and need their gradients: the generic 2-D product gives both.
  if (layer.wT instanceof tf.Variable) {
    const y = matmul(x, layer.wT);
    return layer.b ? tf.add(y, layer.b) : y;
  }
  const f = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as Tensor2D;
    const y = tf.matMul(input, layer.wT);
    return {
      value: layer.b ? tf.add(y, layer.b) : y,
      // tidy: otherwise the transposed weight lives until the whole backward pass ends.
      gradFunc: (dy: Tensor) => [tf.tidy(() => tf.matMul(dy as Tensor2D, tf.transpose(layer.wT)))],
    };
  }) as (x: Tensor2D) => Tensor2D;
  return f(x);
}

export interface LayerNorm {
  readonly name: string;
  readonly gamma: Tensor1D;
  readonly beta: Tensor1D;
  readonly eps: number;
}

export function layerNorm(ln: LayerNorm, x: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, ln.eps))), ln.gamma), ln.beta);
  });
}

/** Exact GELU, x·Φ(x) with erf, as torch.nn.GELU() and HF's "gelu" compute it. */
export function gelu(x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/**
 * GELU's tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): HF's "gelu_new" (also
 * "gelu_pytorch_tanh", "gelu_fast"), which GPT-2 was trained with. It differs from the erf form by up
 * to ~1e-3, far above the 1e-4 a logit comparison tolerates, so each model gets the one it was
 * trained with.
 */
export function geluTanh(x: Tensor): Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/**
 * Rows of an embedding table. While training (the table is a variable) the gradient is
 * oneHot(ids)ᵀ·dy, a 2-D product: gather's own gradient needs UnsortedSegmentSum, which wasm lacks.
 */
export function embeddingLookup(table: Tensor2D, ids: Tensor): Tensor2D {
  const flat = tf.reshape(ids, [-1]);
  if (!(table instanceof tf.Variable)) return tf.gather(table, flat) as Tensor2D;
  const f = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [Tensor2D, tf.GradSaveFunc];
    // Saved so the ids outlive the forward pass's tidy until the backward pass needs them.
    save([flat]);
    return {
      value: tf.gather(t, flat) as Tensor2D,
      gradFunc: (dy: Tensor, saved: Tensor[]) => [
        tf.tidy(() => matmul(tf.transpose(tf.oneHot(saved[0] as tf.Tensor1D, t.shape[0]).toFloat()) as Tensor2D, dy as Tensor2D)),
      ],
    };
  }) as (t: Tensor2D) => Tensor2D;
  return f(table);
}
