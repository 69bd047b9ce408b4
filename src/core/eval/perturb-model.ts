/**
 * Perturbation tests on a model (Chefer et al. 2021, §5): rank the input's units by an explanation,
 * remove the most (positive test) or least (negative test) relevant 0 %, 10 %, …, 90 %, and score the
 * model on each perturbed input. All steps of one input run as one batch through the lean forward.
 *
 * Images: the map is upsampled to the pixels (as the authors do for patch maps) and pixels are
 * removed in all channels — set to 0 in normalised space ('zero', the authors' choice), to the
 * per-channel mean ('mean'), or to a blurred copy ('blur'). Text: tokens other than the specials and
 * padding are replaced by [MASK] or [UNK], or deleted. A decoder (GPT-2) has no [MASK] or [UNK] and
 * no [CLS]/[SEP]: every real token is a unit, and removal deletes it (see textRemovalFor).
 */
import { tf, type Tensor2D, type Tensor4D } from '../tf.js';
import { UsageError } from '../errors.js';
import type { ClassifierModel, ImageInput, TokenInput } from '../models/types.js';
import { disposeInput } from '../models/types.js';
import { BertModel } from '../models/bert.js';
import { GPT2Model } from '../models/gpt2.js';
import { upsampleBilinear } from '../image/overlay.js';
import { DEFAULT_FRACTIONS, removalSteps, type PerturbationTest } from './perturbation.js';

export type ImageRemoval = 'zero' | 'mean' | 'blur';
export type TextRemoval = 'mask' | 'unk' | 'delete';

/** What removing text tokens needs to know of the model. */
export interface TextSpecials {
  readonly mask: number | null;
  readonly unk: number | null;
  /** Fills the end of a sequence shortened by 'delete', under attention mask 0. */
  readonly pad: number;
  /**
   * Which real tokens are units: 'inner' (the default: all but the first and the last, BERT's [CLS]
   * and [SEP]) or 'all' (a decoder's text has no such tokens; its last token is a word too).
   */
  readonly units?: 'inner' | 'all';
}

/**
 * The removal a text model gets (the given one, or its default: [MASK] for BERT-style models, which
 * were trained with it; deletion for GPT-2, which has no [MASK] or [UNK]) and what it needs. A removal
 * the model has no token for is a UsageError, raised before any work.
 */
export function textRemovalFor(model: ClassifierModel, removal?: TextRemoval): { removal: TextRemoval; special: TextSpecials } {
  if (model instanceof GPT2Model) {
    const used = removal ?? 'delete';
    if (used !== 'delete') {
      throw new UsageError(`removal '${used}' puts a [MASK] or [UNK] token in place of a removed one, and GPT-2 model '${model.name}' has neither; use --removal delete (its default)`);
    }
    return { removal: used, special: { mask: null, unk: null, pad: model.config.eosTokenId ?? 0, units: 'all' } };
  }
  if (model instanceof BertModel) {
    const used = removal ?? 'mask';
    const special: TextSpecials = { mask: model.special.mask, unk: model.special.unk, pad: model.config.padTokenId, units: 'inner' };
    if ((used === 'mask' && special.mask === null) || (used === 'unk' && special.unk === null)) {
      throw new UsageError(`removal '${used}' needs the model's tokenizer (with a ${used === 'mask' ? '[MASK]' : '[UNK]'} token); use 'delete'`);
    }
    return { removal: used, special };
  }
  throw new UsageError(`model '${model.name}' takes images, not text`);
}

export interface PerturbationRun {
  readonly test: PerturbationTest;
  readonly fractions: readonly number[];
  /** Per step: the predicted class, and the softmax probability of the target. */
  readonly predictions: number[];
  readonly probabilities: number[];
}

function softmaxRows(logits: Float32Array, classes: number): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < logits.length / classes; r++) {
    const row = Array.from(logits.subarray(r * classes, (r + 1) * classes));
    const m = Math.max(...row);
    const e = row.map((x) => Math.exp(x - m));
    const s = e.reduce((a, b) => a + b, 0);
    rows.push(e.map((x) => x / s));
  }
  return rows;
}

function scoreBatch(model: ClassifierModel, batch: ImageInput | TokenInput, target: number) {
  const out = model.predict(batch);
  const logits = out.dataSync() as Float32Array;
  out.dispose();
  const probs = softmaxRows(logits, model.numClasses);
  return { predictions: probs.map((p) => p.indexOf(Math.max(...p))), probabilities: probs.map((p) => p[target]!) };
}

/** A separable Gaussian blur of each channel (σ in pixels), for the 'blur' removal. */
function blurred(pixels: Float32Array, c: number, h: number, w: number, sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const ks = kernel.reduce((a, b) => a + b, 0);
  const tmp = new Float32Array(pixels.length);
  const out = new Float32Array(pixels.length);
  const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let k = -r; k <= r; k++) s += kernel[k + r]! * pixels[base + y * w + clamp(x + k, w)]!;
        tmp[base + y * w + x] = s / ks;
      }
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let k = -r; k <= r; k++) s += kernel[k + r]! * tmp[base + clamp(y + k, h) * w + x]!;
        out[base + y * w + x] = s / ks;
      }
  }
  return out;
}

export function perturbImage(
  model: ClassifierModel,
  input: ImageInput,
  map: ArrayLike<number>,
  mapShape: readonly number[],
  target: number,
  test: PerturbationTest,
  removal: ImageRemoval = 'zero',
  fractions: readonly number[] = DEFAULT_FRACTIONS,
): PerturbationRun {
  const [b, c, h, w] = input.pixels.shape;
  if (b !== 1) throw new UsageError('perturbation tests take one input at a time');
  if (mapShape.length !== 2) throw new UsageError(`an image perturbation test needs a 2-D map, got shape [${mapShape.join(', ')}]`);
  const pixelMap = mapShape[0] === h && mapShape[1] === w ? map : upsampleBilinear(map, [mapShape[0]!, mapShape[1]!], h, w);
  const pixels = input.pixels.dataSync() as Float32Array;
  const plane = h * w;
  let fill: (ch: number, i: number) => number;
  if (removal === 'zero') fill = () => 0;
  else if (removal === 'mean') {
    const means = Array.from({ length: c }, (_, ch) => pixels.subarray(ch * plane, (ch + 1) * plane).reduce((a, x) => a + x, 0) / plane);
    fill = (ch) => means[ch]!;
  } else {
    const soft = blurred(pixels, c, h, w, Math.max(h, w) / 32);
    fill = (ch, i) => soft[ch * plane + i]!;
  }
  const steps = removalSteps(pixelMap, test, fractions);
  const batch = new Float32Array(steps.length * c * plane);
  steps.forEach((removed, s) => {
    const off = s * c * plane;
    batch.set(pixels, off);
    for (const i of removed) for (let ch = 0; ch < c; ch++) batch[off + ch * plane + i] = fill(ch, i);
  });
  const perturbed: ImageInput = { kind: 'image', pixels: tf.tensor4d(batch, [steps.length, c, h, w]) as Tensor4D };
  const scored = scoreBatch(model, perturbed, target);
  disposeInput(perturbed);
  return { test, fractions, ...scored };
}

/**
 * Text: units are the real tokens between [CLS] and [SEP] (positions 1 … n−2 of the unpadded
 * sequence), or every real token (`special.units` 'all', decoders); `map` has one value per position.
 */
export function perturbText(
  model: ClassifierModel,
  input: TokenInput,
  map: ArrayLike<number>,
  target: number,
  test: PerturbationTest,
  removal: TextRemoval,
  special: TextSpecials,
  fractions: readonly number[] = DEFAULT_FRACTIONS,
): PerturbationRun {
  const [b, T] = input.ids.shape;
  if (b !== 1) throw new UsageError('perturbation tests take one input at a time');
  const ids = Array.from(input.ids.dataSync());
  const mask = Array.from(input.attentionMask.dataSync());
  const real = mask.reduce((n, m) => n + (m ? 1 : 0), 0);
  const units = special.units === 'all' ? mask.flatMap((m, p) => (m ? [p] : [])) : Array.from({ length: Math.max(0, real - 2) }, (_, i) => i + 1);
  const unitMap = units.map((p) => map[p]!);
  const replacement = removal === 'mask' ? special.mask : removal === 'unk' ? special.unk : null;
  if (removal !== 'delete' && replacement === null) throw new UsageError(`removal '${removal}' needs the model's tokenizer; use 'delete'`);
  const rows = removalSteps(unitMap, test, fractions).map((removed) => {
    const gone = new Set(Array.from(removed, (k) => units[k]!));
    if (removal !== 'delete') return { ids: ids.map((id, p) => (gone.has(p) ? replacement! : id)), mask };
    const keep = ids.map((_, p) => p).filter((p) => !gone.has(p));
    const pad = T - keep.length;
    return { ids: [...keep.map((p) => ids[p]!), ...Array(pad).fill(special.pad)], mask: [...keep.map((p) => mask[p]!), ...Array(pad).fill(0)] };
  });
  const perturbed: TokenInput = {
    kind: 'tokens',
    ids: tf.tensor2d(rows.flatMap((r) => r.ids), [rows.length, T], 'int32') as Tensor2D,
    attentionMask: tf.tensor2d(rows.flatMap((r) => r.mask), [rows.length, T], 'int32') as Tensor2D,
  };
  const scored = scoreBatch(model, perturbed, target);
  disposeInput(perturbed);
  return { test, fractions, ...scored };
}
