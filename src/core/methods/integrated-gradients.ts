/**
 * Integrated gradients (Sundararajan et al. 2017): (x − x′) ⊙ ∫₀¹ ∇y_t(x′ + α(x − x′)) dα, with the
 * all-zero baseline x′ in normalised input space (Captum's default; the dataset-mean image for
 * mean/std-normalised models), the integral by `steps`-point Gauss–Legendre quadrature (Captum's
 * default; exact for polynomials of degree 2·steps − 1, where a trapezoid rule of the same cost is
 * visibly off on sharp models), summed over colour channels. Completeness — Σ map = y_t(x) − y_t(x′)
 * — holds to the quadrature error.
 */
import { tf } from '../tf.js';
import { disposeInput } from '../models/types.js';
import { UsageError } from '../errors.js';
import { gradientsAt } from '../gradients.js';
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';

/**
 * Interpolated inputs per forward/backward pass. The backward keeps every head's T×T attention
 * alive, so the chunk shrinks with T²·H·depth: all 50 default steps in one pass for the shipped
 * models (a 16-step cap had short texts spend half their time in per-op overhead: 83 → 47 ms),
 * 1 for ViT-B/16 (whose single gradient pass already takes ~1 GB of wasm's 4 GB heap).
 */
export function chunkSize(tokens: number, heads: number, depth: number): number {
  return Math.max(1, Math.min(64, Math.floor(4e6 / (tokens ** 2 * heads * depth))));
}

export const integratedGradients: ExplanationMethod = {
  id: 'integrated-gradients',
  title: 'Integrated gradients',
  reference: 'Sundararajan, Taly & Yan 2017',
  targetDependent: true,
  signed: true,
  options: ['steps'],
  async attribute(ctx, targets, options) {
    const steps = options.steps ?? 50;
    if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`steps must be a positive integer, got ${steps}`);
    const { model } = ctx;
    const chunk = chunkSize(ctx.tokens, model.heads, model.depth);
    const total = steps * targets.length;
    // Each node costs O(steps) to find (the Legendre recurrence), so with very many steps the
    // search itself is a long computation: cancellable node by node.
    const slowNodes = steps > 20_000;
    const out = [];
    for (const [b, target] of targets.entries()) {
      const sample = model.sampleOf(ctx.input, b);
      const x = model.gradientInput(sample);
      const x0 = model.gradientBaseline(sample);
      const diff = tf.sub(x, x0);
      let acc = tf.zerosLike(x);
      try {
        for (let s0 = 0; s0 < steps; s0 += chunk) {
          const n = Math.min(chunk, steps - s0);
          // The quadrature nodes of this chunk only: memory does not grow with the steps.
          const alphas: number[] = [];
          const weights: number[] = [];
          for (let k = s0; k < s0 + n; k++) {
            const node = gaussLegendreNode(steps, k);
            alphas.push(node.alpha);
            weights.push(node.weight);
            if (slowNodes) await ctx.pass();
          }
          // The path points stacked along the batch axis (axis 0 for pixels and for [T, D] embeddings),
          // x0 + α·(x − x0) for all α in two broadcast ops.
          const path = tf.tidy(() =>
            tf.reshape(tf.add(tf.reshape(x0, [1, -1]), tf.mul(tf.reshape(diff, [1, -1]), tf.tensor2d(alphas, [n, 1]))), [n * x.shape[0]!, ...x.shape.slice(1)]),
          );
          const g = gradientsAt(model, sample, Array(n).fill(target), false, { x: path, contrast: ctx.contrast ? Array(n).fill(ctx.contrast[b]) : null });
          const next = tf.tidy(() =>
            tf.add(acc, tf.reshape(tf.sum(tf.mul(tf.reshape(g.input, [n, -1]), tf.tensor2d(weights, [n, 1])), 0), x.shape)),
          );
          tf.dispose([path, g.input, acc]);
          acc = next;
          options.onProgress?.(b * steps + s0 + n, total);
          await ctx.pass({ method: 'integrated-gradients', done: b * steps + s0 + n, total, unit: 'steps' });
        }
        const attribution = tf.mul(diff, acc);
        const { maps, shape, space } = model.attributionMaps(attribution, 1, 'signed');
        attribution.dispose();
        out.push(result(ctx, b, { method: 'integrated-gradients', target, map: maps[0]!, shape, space, options: { steps } }));
      } finally {
        tf.dispose([x, x0, diff, acc]);
        disposeInput(sample);
      }
    }
    return out;
  },
};

/**
 * Gauss–Legendre nodes and weights on [0, 1]: the roots of the Legendre polynomial P_n by Newton's
 * method from Chebyshev starting points (Numerical Recipes' gauleg), mapped from [−1, 1].
 */
export function gaussLegendre(n: number): { alphas: number[]; weights: number[] } {
  const alphas = new Array<number>(n);
  const weights = new Array<number>(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    const { z, w } = legendreRoot(n, i);
    alphas[i] = (1 - z) / 2;
    alphas[n - 1 - i] = (1 + z) / 2;
    weights[i] = weights[n - 1 - i] = w / 2;
  }
  return { alphas, weights };
}

/** Node k of the n-point rule on [0, 1], the same numbers as gaussLegendre(n) at index k, alone. */
export function gaussLegendreNode(n: number, k: number): { alpha: number; weight: number } {
  const low = k < Math.ceil(n / 2);
  const i = low ? k : n - 1 - k;
  const { z, w } = legendreRoot(n, i);
  // The middle node of an odd rule is written twice by gaussLegendre, the (1 + z) / 2 form last.
  return { alpha: low && k !== n - 1 - k ? (1 - z) / 2 : (1 + z) / 2, weight: w / 2 };
}

/** The i-th root z of P_n (from the right) and its weight on [−1, 1]. */
function legendreRoot(n: number, i: number): { z: number; w: number } {
  let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
  let dp = 0;
  for (let iter = 0; iter < 100; iter++) {
    let p0 = 1;
    let p1 = 0;
    for (let j = 1; j <= n; j++) {
      const p2 = p1;
      p1 = p0;
      p0 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j;
    }
    dp = (n * (z * p0 - p1)) / (z * z - 1);
    const dz = p0 / dp;
    z -= dz;
    if (Math.abs(dz) < 1e-15) break;
  }
  return { z, w: 2 / ((1 - z * z) * dp * dp) };
}
