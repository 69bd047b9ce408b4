/**
 * Tensor ops every model and rule shares, written for TensorFlow.js-wasm's fast path: 2-D matMul with
 * no transpose flags is ~25× faster there than a batched or transposed one, so every product is 2-D
 * and transposes are explicit (their cost is linear, the naive kernel's is not).
 */
import { tf, type Tensor, type Tensor1D, type Tensor2D } from './tf.js';
import { matMulSplit } from './parallel.js';

/**
 * a·bᵀ for a [m, n] and b [k, n], on the fast path. Either b is transposed (k·n elements moved), or
 * the product is taken the other way round, (b·aᵀ)ᵀ, which moves a and the result (m·n + m·k): for
 * a weight matrix b and a few rows a (dy·Wᵀ in a backward pass, S·Wᵀ in a relevance rule) that is
 * several times less than transposing the weight on every call, and the weight is not copied at
 * all (it is the product's left operand, which the kernel reads in place; a right operand is
 * repacked on every call that does not reuse the same tensor).
 */
export function matmulBT(a: Tensor2D, b: Tensor2D): Tensor2D {
  const [m, n] = a.shape;
  const k = b.shape[0];
  return tf.tidy(() =>
    k * n <= m * (n + k) ? tf.matMul(a, tf.transpose(b)) : (tf.transpose(matMulSplit(b, tf.transpose(a) as Tensor2D, 'rows')) as Tensor2D),
  );
}

/** a·b for 2-D operands, with gradients that also stay on the 2-D, no-transpose-flag path. */
export const matmul = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [Tensor2D, Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [sa, sb] = saved as [Tensor2D, Tensor2D];
      return [matmulBT(dy as Tensor2D, sb), tf.tidy(() => tf.matMul(tf.transpose(sa), dy as Tensor2D))];
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
    const y = matMulSplit(input, layer.wT, 'columns');
    return {
      value: layer.b ? tf.add(y, layer.b) : y,
      // dy·Wᵀ without transposing W: (W·dyᵀ)ᵀ moves only activation-sized tensors.
      gradFunc: (dy: Tensor) => [matmulBT(dy as Tensor2D, layer.wT)],
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

/**
 * The gradient through a LayerNorm, from its recorded input x and the gradient dy at its output:
 * with x̂ = (x − μ)/σ and g = dy ⊙ γ, dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))/σ, row by row. For
 * hand-written backward passes (models that give their gradients without a tape).
 */
export function layerNormBackward(ln: LayerNorm, x: Tensor2D, dy: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const inv = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), ln.eps));
    const xhat = tf.mul(centred, inv);
    const g = tf.mul(dy, ln.gamma);
    const inner = tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true)));
    return tf.mul(inner, inv) as Tensor2D;
  });
}

/** The gradient through exact GELU at its recorded input x: dy ⊙ (Φ(x) + x·φ(x)). */
export function geluBackward(x: Tensor, dy: Tensor): Tensor {
  return tf.tidy(() => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return tf.mul(dy, tf.add(cdf, tf.mul(x, pdf)));
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
