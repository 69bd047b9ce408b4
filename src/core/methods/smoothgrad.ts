/**
 * SmoothGrad (Smilkov, Thorat, Kim, Viégas & Wattenberg 2017, "SmoothGrad: removing noise by adding
 * noise"), as Captum computes it: `NoiseTunnel(Saliency(model)).attribute(x, nt_type, nt_samples=N,
 * stdevs=σ)`. Each of the N noisy copies x + ε_s, ε_s ~ N(0, σ²), gives the gradient g_s of the
 * target logit (y_target − y_contrast in a contrastive context); a_s = |g_s| (Saliency's default
 * abs=True) or g_s (`abs: false`); then, elementwise,
 *   smoothgrad     (1/N) Σ a_s
 *   smoothgrad_sq  (1/N) Σ a_s²
 *   vargrad        (1/N) Σ a_s² − ((1/N) Σ a_s)²
 * reduced to a map as saliency is — max over colour channels of |·| for images, Σ|·| over the hidden
 * axis of the word embeddings for text — so that at noise 0 the default is saliency. `abs: false`
 * with smoothgrad is |mean gradient| after that reduction: the paper authors' own library (PAIR
 * saliency, SmoothGrad with magnitude=False) averages signed gradients and takes |·| to display.
 *
 * σ is absolute in Captum; here it is noise level × (max(x) − min(x)) of that input (the paper's
 * convention), so Captum's stdevs is that product. Default noise level: 0.15 for images (the paper
 * finds 10–20 % best), 0.01 for text, where the noise goes on the word embeddings and their range is
 * set by a few outlying dimensions (AllenNLP Interpret's SmoothGradient: 0.01 × (max − min) of the
 * embeddings).
 *
 * The noise comes from a seeded generator, one stream per (seed, noisy copy), so a map is
 * reproducible and does not depend on the input's place in a batch or on how copies are chunked.
 */
import { tf, type Tensor } from '../tf.js';
import { disposeInput, type ModelInput } from '../models/types.js';
import { normals, rng } from '../models/random.js';
import { UsageError } from '../errors.js';
import { gradientsAt } from '../gradients.js';
import type { ExplanationMethod, MethodOptions } from './types.js';
import { result } from './common.js';
import { chunkSize } from './integrated-gradients.js';

export const SMOOTHGRAD_DEFAULTS = { samples: 16, noise: { image: 0.15, tokens: 0.01 }, seed: 0, ntType: 'smoothgrad', abs: true } as const;

/** Captum's NoiseTunnel types, by Captum's names. */
export type NoiseTunnelType = NonNullable<MethodOptions['ntType']>;
export const NT_TYPES: readonly NoiseTunnelType[] = ['smoothgrad', 'smoothgrad_sq', 'vargrad'];

/**
 * The noise of copy s: σ·N(0, 1) in the input's layout, from its own stream. Exported so that a test
 * can check it against the noise a peer implementation was fed.
 */
export function smoothgradNoise(size: number, sigma: number, seed: number, s: number): Float32Array {
  return normals(size, sigma, rng(streamSeed(seed, s)));
}

export const smoothgrad: ExplanationMethod = {
  id: 'smoothgrad',
  title: 'SmoothGrad',
  reference: 'Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by adding noise", 2017',
  targetDependent: true,
  signed: false,
  options: ['samples', 'noise', 'seed', 'ntType', 'abs'],
  async attribute(ctx, targets, options) {
    const samples = options.samples ?? SMOOTHGRAD_DEFAULTS.samples;
    const seed = options.seed ?? SMOOTHGRAD_DEFAULTS.seed;
    const ntType: NoiseTunnelType = options.ntType ?? SMOOTHGRAD_DEFAULTS.ntType;
    const abs = options.abs ?? SMOOTHGRAD_DEFAULTS.abs;
    if (!NT_TYPES.includes(ntType)) throw new UsageError(`ntType must be one of ${NT_TYPES.join(', ')}, got '${ntType}'`);
    if (typeof abs !== 'boolean') throw new UsageError(`abs must be true or false, got ${String(abs)}`);
    if (!Number.isInteger(samples) || samples < 1) throw new UsageError(`samples must be a positive integer, got ${samples}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`seed must be an integer from 0 to 4294967295, got ${seed}`);
    if (options.noise !== undefined && !(Number.isFinite(options.noise) && options.noise >= 0)) {
      throw new UsageError(`noise must be a number ≥ 0, got ${options.noise}`);
    }
    const { model } = ctx;
    // Noisy copies per backward pass: as many as integrated gradients batches (memory-bound by T²·H·depth).
    const chunk = chunkSize(ctx.tokens, model.heads, model.depth);
    const out = [];
    for (const [b, target] of targets.entries()) {
      const sample = model.sampleOf(ctx.input, b);
      const noise = options.noise ?? SMOOTHGRAD_DEFAULTS.noise[sample.kind];
      const x = model.gradientInput(sample);
      // Σ a_s and Σ a_s², elementwise, as Captum's NoiseTunnel accumulates them.
      let sum = tf.zerosLike(x);
      let sumSq = tf.zerosLike(x);
      try {
        const sigma = noise * valueRange(x, sample);
        const per = x.size;
        const rows = x.shape[0]!;
        const rest = x.shape.slice(1);
        for (let s0 = 0; s0 < samples; s0 += chunk) {
          const n = Math.min(chunk, samples - s0);
          const buffer = new Float32Array(n * per);
          if (sigma > 0) for (let s = 0; s < n; s++) buffer.set(smoothgradNoise(per, sigma, seed, s0 + s), s * per);
          // The copies stacked along the batch axis (axis 0 for pixels and for [T, D] embeddings).
          const noisy = tf.tidy(() => tf.reshape(tf.add(tf.tensor(buffer, [n, ...x.shape]), x), [n * rows, ...rest]));
          const contrast = ctx.contrast ? Array<number>(n).fill(ctx.contrast[b]!) : null;
          const g = gradientsAt(model, sample, Array<number>(n).fill(target), false, { x: noisy, contrast });
          const [nextSum, nextSq] = tf.tidy(() => {
            const grads = tf.reshape(g.input, [n, ...x.shape]);
            const a = abs ? tf.abs(grads) : grads;
            return [tf.add(sum, tf.sum(a, 0)), tf.add(sumSq, tf.sum(tf.square(a), 0))];
          });
          tf.dispose([noisy, g.input, sum, sumSq]);
          sum = nextSum!;
          sumSq = nextSq!;
          options.onProgress?.(b * samples + s0 + n, samples * targets.length);
          await ctx.pass({ method: 'smoothgrad', done: b * samples + s0 + n, total: samples * targets.length, unit: 'samples' });
        }
        const smoothed = tf.tidy(() => {
          const mean = tf.mul(sum, 1 / samples);
          const meanSq = tf.mul(sumSq, 1 / samples);
          return ntType === 'smoothgrad' ? mean : ntType === 'smoothgrad_sq' ? meanSq : tf.sub(meanSq, tf.mul(mean, mean));
        });
        const { maps, shape, space } = model.attributionMaps(smoothed, 1, 'abs');
        smoothed.dispose();
        out.push(result(ctx, b, { method: 'smoothgrad', target, map: maps[0]!, shape, space, options: { samples, noise, seed, ntType, abs } }));
      } finally {
        tf.dispose([x, sum, sumSq]);
        disposeInput(sample);
      }
    }
    return out;
  },
};

/**
 * max(x) − min(x) of one sample's gradient input: all pixels, or the word embeddings of its real
 * tokens — padding is left out so a padded text gets the noise it would get alone.
 */
function valueRange(x: Tensor, sample: ModelInput): number {
  const values = x.dataSync();
  let lo = Infinity;
  let hi = -Infinity;
  if (sample.kind === 'tokens') {
    const mask = sample.attentionMask.dataSync();
    const width = values.length / mask.length;
    for (let t = 0; t < mask.length; t++) {
      if (mask[t] === 0) continue;
      for (let k = t * width; k < (t + 1) * width; k++) {
        lo = Math.min(lo, values[k]!);
        hi = Math.max(hi, values[k]!);
      }
    }
  } else {
    for (let k = 0; k < values.length; k++) {
      lo = Math.min(lo, values[k]!);
      hi = Math.max(hi, values[k]!);
    }
  }
  return hi > lo ? hi - lo : 0;
}

/** The seed of noisy copy s: a 32-bit mix of the user's seed and s, so each copy draws its own stream. */
function streamSeed(seed: number, s: number): number {
  return (Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(s + 1, 0x85ebca6b)) >>> 0;
}
