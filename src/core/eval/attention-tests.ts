/**
 * Jain & Wallace (NAACL 2019), "Attention is not Explanation", for transformers:
 *
 * - Permutation: shuffle a layer's attention weights over the input's positions (the same
 *   permutation for every head and query row; the classifier reads the CLS row, so that is what
 *   matters) and record the total-variation distance between the original and the permuted output
 *   distributions. Small distances mean the output does not depend on *which* position got which
 *   weight.
 * - Adversarial attention: search for attention distributions of the row the prediction is read from
 *   ([CLS], or a decoder's last token) as different as possible from
 *   the original (mean Jensen–Shannon divergence over heads) while the output moves less than ε in
 *   total variation — gradient ascent on the heads' attention logits with a penalty beyond ε.
 *
 * Both act on the last layer by default.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { UsageError } from '../errors.js';
import type { ClassifierModel, ModelInput } from '../models/types.js';
import { batchSize, disposeInput } from '../models/types.js';
import { rng } from '../models/random.js';
import { median } from './stats.js';
import { totalVariation } from './agreement.js';
import { tensorsOf } from '../context.js';

/** n copies of a one-sample input, as one batch. */
function repeatInput(input: ModelInput, n: number): ModelInput {
  if (input.kind === 'image') return { kind: 'image', pixels: tf.tile(input.pixels, [n, 1, 1, 1]) };
  return {
    kind: 'tokens',
    ids: tf.tile(input.ids, [n, 1]),
    attentionMask: tf.tile(input.attentionMask, [n, 1]),
    ...(input.typeIds ? { typeIds: tf.tile(input.typeIds, [n, 1]) } : {}),
  };
}

function probabilities(model: ClassifierModel, input: ModelInput, options?: Parameters<ClassifierModel['predict']>[1]): number[][] {
  const out = tf.tidy(() => tf.softmax(model.predict(input, options)));
  const flat = out.dataSync();
  const C = out.shape[1]!;
  out.dispose();
  return Array.from({ length: flat.length / C }, (_, r) => Array.from(flat.subarray(r * C, (r + 1) * C)));
}

/** Positions that take part: every token but padding (text), every token (images). */
function realPositions(input: ModelInput, T: number): number[] {
  if (input.kind === 'image') return Array.from({ length: T }, (_, i) => i);
  const mask = input.attentionMask.dataSync();
  return Array.from({ length: T }, (_, i) => i).filter((i) => mask[i]! > 0);
}

export interface PermutationResult {
  /** Total variation between the original and each permuted output distribution. */
  readonly tvd: number[];
  readonly median: number;
}

export function attentionPermutation(
  model: ClassifierModel,
  input: ModelInput,
  options: { permutations?: number; seed?: number; layer?: number; chunk?: number } = {},
): PermutationResult {
  if (batchSize(input) !== 1) throw new UsageError('the permutation test takes one input at a time');
  const n = options.permutations ?? 100;
  const layer = options.layer ?? model.depth - 1;
  const T = model.tokensOf(input);
  const positions = realPositions(input, T);
  const next = rng(options.seed ?? 0);
  // The permuted passes run the tfjs forward (a whole-model ONNX Runtime graph takes no edits): the
  // original goes the same way, through an identity edit, so an identity permutation moves nothing.
  const original = probabilities(model, input, { attentionEdit: { layer, edit: (a) => a } })[0]!;
  const tvd: number[] = [];
  const chunk = options.chunk ?? 16;
  for (let s = 0; s < n; s += chunk) {
    const k = Math.min(chunk, n - s);
    // Each copy gets its own permutation of the real positions; padding stays where it is.
    const perms = Array.from({ length: k }, () => {
      const shuffled = [...positions];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const index = Array.from({ length: T }, (_, i) => i);
      positions.forEach((p, i) => (index[p] = shuffled[i]!));
      return tf.tensor1d(index, 'int32');
    });
    const batch = repeatInput(input, k);
    const probs = probabilities(model, batch, { attentionEdit: { layer, edit: (a, b) => tf.gather(a, perms[b]!, 1) as Tensor2D } });
    for (const p of probs) tvd.push(totalVariation(original, p));
    tf.dispose(perms);
    disposeInput(batch);
  }
  return { tvd, median: median(tvd) };
}

export interface AdversarialResult {
  /** Mean JSD over heads between the adversarial and the original CLS-row attention (natural log, ≤ ln 2). */
  readonly jsd: number;
  /** Total variation of the output distribution at that point (≤ ε when feasible). */
  readonly tvd: number;
  readonly feasible: boolean;
}

function jsdRows(p: Tensor2D, q: Tensor2D): Tensor {
  return tf.tidy(() => {
    const eps = 1e-12;
    const m = tf.div(tf.add(p, q), 2);
    const kl = (a: Tensor2D) => tf.sum(tf.mul(a, tf.log(tf.div(tf.add(a, eps), tf.add(m, eps)))), 1);
    return tf.mul(tf.add(kl(p), kl(q)), 0.5);
  });
}

export function adversarialAttention(
  model: ClassifierModel,
  input: ModelInput,
  options: { epsilon?: number; steps?: number; lr?: number; layer?: number } = {},
): AdversarialResult {
  if (batchSize(input) !== 1) throw new UsageError('the adversarial attention test takes one input at a time');
  const epsilon = options.epsilon ?? 0.01;
  const layer = options.layer ?? model.depth - 1;
  const T = model.tokensOf(input);
  const H = model.heads;
  // The row the prediction is read from: [CLS] for encoders, the last real token for decoders.
  const real = realPositions(input, T);
  const r = (model.conventions.explainedToken ?? 'first') === 'first' ? 0 : real[real.length - 1]!;
  const fwd = model.forward(input);
  const original = tf.tidy(() => tf.softmax(fwd.logits)) as Tensor2D;
  // The original explained rows of every head, [H, T].
  const alpha = tf.tidy(() => tf.reshape(tf.slice(fwd.attention[layer]!.probs, [0, 0, r, 0], [1, H, 1, T]), [H, T])) as Tensor2D;
  tf.dispose(tensorsOf(fwd));
  const keep = tf.tidy(() => {
    const m = new Float32Array(T).fill(0);
    for (const p of real) m[p] = 1;
    return tf.tensor2d(m, [1, T]);
  });
  // Logits that reproduce the original rows; padding is held at −∞ through the mask.
  const init = tf.tidy(() => tf.log(tf.add(alpha, 1e-6)));
  const z = tf.variable(init, true);
  // tf.variable keeps the initial tensor registered alongside the variable: free it ourselves.
  init.dispose();
  const rows = () => {
    const e = tf.mul(tf.exp(tf.sub(z, tf.max(z, 1, true))), keep);
    return tf.div(e, tf.sum(e, 1, true)) as Tensor2D;
  };
  const optimizer = tf.train.adam(options.lr ?? 0.05);
  let best: AdversarialResult = { jsd: 0, tvd: 0, feasible: true };
  for (let step = 0; step < (options.steps ?? 100); step++) {
    let measured: [number, number] = [0, 0];
    const cost = optimizer.minimize(() => {
      const newRows = rows();
      const edit = (a: Tensor2D, _b: number, h: number) =>
        tf.concat([...(r > 0 ? [tf.slice(a, [0, 0], [r, T])] : []), tf.slice(newRows, [h, 0], [1, T]), ...(r < T - 1 ? [tf.slice(a, [r + 1, 0], [T - r - 1, T])] : [])], 0) as Tensor2D;
      const out = model.forward(input, { attentionEdit: { layer, edit } }).logits;
      const p = tf.softmax(out);
      const tv = tf.mul(tf.sum(tf.abs(tf.sub(p, original))), 0.5);
      const js = tf.mean(jsdRows(newRows, alpha));
      measured = [js.dataSync()[0]!, tv.dataSync()[0]!];
      // Maximise divergence; beyond ε, moving the output costs far more than diverging gains.
      return tf.sub(tf.mul(tf.relu(tf.sub(tv, epsilon)), 100), js) as tf.Scalar;
    }, true, [z]);
    cost?.dispose();
    const [js, tv] = measured;
    if (tv <= epsilon && js > best.jsd) best = { jsd: js, tvd: tv, feasible: true };
  }
  tf.dispose([z, keep, alpha, original]);
  optimizer.dispose();
  return best;
}
