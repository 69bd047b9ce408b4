/**
 * Localisation measures: how well an explanation map picks out a ground-truth region (an object
 * segmentation, the words of a rationale, the object a CLEVR question is about).
 *
 * Masks have the map's length. Their values are 0/1, or fractions in [0, 1] (a patch's share of
 * foreground pixels, when a pixel mask has been pooled to patches); wherever a binary mask is needed —
 * which is every measure here — a unit counts as foreground when its value is > 0.5, i.e. when most
 * of it is foreground.
 *
 * Plain TypeScript on number arrays: no TensorFlow.js and no Node imports.
 */
import { UsageError } from '../errors.js';
import { removalOrder } from './perturbation.js';

function checkSameLength(map: ArrayLike<number>, mask: ArrayLike<number>, what: string): void {
  if (map.length !== mask.length) throw new UsageError(`${what}: the map has ${map.length} units but the mask ${mask.length}`);
  if (map.length === 0) throw new UsageError(`${what}: the map is empty`);
}

function binarise(mask: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i]! > 0.5 ? 1 : 0;
  return out;
}

/**
 * Average precision as sklearn's `average_precision_score`: Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct score
 * thresholds from the highest down — step-wise, no interpolation, tied scores entering together.
 * Labels > 0.5 are positives. With no positives the result is 0, which is what sklearn returns
 * (after warning that recall is undefined).
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (scores.length !== labels.length) throw new UsageError(`average precision: ${scores.length} scores but ${labels.length} labels`);
  const n = scores.length;
  const positive = binarise(labels);
  let totalPositives = 0;
  for (let i = 0; i < n; i++) totalPositives += positive[i]!;
  if (totalPositives === 0) return 0;
  const order = removalOrder(scores, 'positive');
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  for (let k = 0; k < n; ) {
    const s = scores[order[k]!]!;
    // One threshold admits every unit with this score at once, so a tie is one step of the curve.
    // (do … while so a NaN score, equal to nothing, still advances.)
    do {
      if (positive[order[k]!]) tp++;
      else fp++;
      k++;
    } while (k < n && scores[order[k]!] === s);
    const recall = tp / totalPositives;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

export interface SegmentationScores {
  /** Fraction of units whose predicted class (map above its mean → foreground) matches the mask. */
  pixelAccuracy: number;
  /** |pred ∩ truth| / |pred ∪ truth| for the foreground; NaN when both are empty (0/0). */
  iouForeground: number;
  /** The same for the background; NaN when both are empty. */
  iouBackground: number;
  /** Mean of the two IoUs. */
  mIoU: number;
  /** Average precision of the normalised map as a foreground score. */
  ap: number;
  /**
   * The AP the authors' script actually computes (`get_ap_scores`): one AP over both channels
   * concatenated, scores [1 − map, map] against one-hot targets [background, foreground]. It is
   * what their reported mAP averages over images, and is not the same number as `ap`.
   */
  apBothClasses: number;
  /**
   * Raw counts, indexed [background, foreground] as in the script. The authors' pixel accuracy and
   * mIoU are dataset-level — Σ correct / Σ total, and per class Σ intersection / Σ union, then the
   * mean over the two classes — not the mean of per-image values; sum these to reproduce them.
   */
  counts: { correct: number; total: number; intersection: [number, number]; union: [number, number] };
}

/**
 * Chefer et al.'s segmentation test (`imagenet_seg_eval.py`): the map min-max normalised to [0, 1],
 * thresholded at its mean → binary prediction (strictly above the mean is foreground); pixel
 * accuracy, IoU of foreground and background classes, their mean (mIoU), and average precision (AP)
 * of the continuous normalised map as a score for the foreground.
 *
 * For images the authors upsample the patch map to pixels first (bilinear, ×16); that is the
 * caller's job. A constant map has no min-max normalisation (0/0): as in the script, where the NaNs
 * are zeroed, it predicts background everywhere and scores 0 in both AP channels.
 */
export function segmentationScores(map: ArrayLike<number>, mask: ArrayLike<number>): SegmentationScores {
  checkSameLength(map, mask, 'segmentation scores');
  const n = map.length;
  const truth = binarise(mask);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, map[i]!);
    hi = Math.max(hi, map[i]!);
  }
  const constant = !(hi > lo);
  const norm = new Float64Array(n);
  if (!constant) for (let i = 0; i < n; i++) norm[i] = (map[i]! - lo) / (hi - lo);
  let threshold = 0;
  for (let i = 0; i < n; i++) threshold += norm[i]!;
  threshold /= n;

  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < n; i++) {
    const pred = !constant && norm[i]! > threshold;
    if (pred) {
      if (truth[i]) tp++;
      else fp++;
    } else if (truth[i]) fn++;
    else tn++;
  }
  const iouForeground = tp / (tp + fp + fn);
  const iouBackground = tn / (tn + fp + fn);

  const bothScores = new Float64Array(2 * n);
  const bothLabels = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    bothScores[i] = constant ? 0 : 1 - norm[i]!;
    bothScores[n + i] = norm[i]!;
    bothLabels[i] = 1 - truth[i]!;
    bothLabels[n + i] = truth[i]!;
  }

  return {
    pixelAccuracy: (tp + tn) / n,
    iouForeground,
    iouBackground,
    mIoU: (iouForeground + iouBackground) / 2,
    ap: averagePrecision(norm, truth),
    apBothClasses: averagePrecision(bothScores, bothLabels),
    counts: { correct: tp + tn, total: n, intersection: [tn, tp], union: [tn + fp + fn, tp + fp + fn] },
  };
}

/** Index of the first maximum, ignoring NaNs; −1 if there is none. */
function argmax(map: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < map.length; i++) {
    const v = map[i]!;
    if (Number.isNaN(v)) continue;
    if (best < 0 || v > map[best]!) best = i;
  }
  return best;
}

export interface PointingGameOptions {
  /** [h, w] of a row-major 2-D map; needed for a tolerance. */
  shape?: [number, number];
  /** Radius in units: a hit when any mask unit lies within this Euclidean distance of the maximum. */
  tolerance?: number;
}

/**
 * Pointing game (Zhang et al. 2016): 1 if the unit of maximum relevance lies inside the mask (ties:
 * the first max), else 0. Optional tolerance in units for 2-D maps: a `shape` [h, w] and `tolerance`
 * radius in units → hit if any mask unit within the radius (Euclidean) of the max. Zhang et al. used
 * 15 pixels, to forgive small misalignments of the annotation. An empty mask can never be hit (0).
 */
export function pointingGame(map: ArrayLike<number>, mask: ArrayLike<number>, options: PointingGameOptions = {}): number {
  checkSameLength(map, mask, 'pointing game');
  const tolerance = options.tolerance ?? 0;
  if (!(tolerance >= 0)) throw new UsageError(`pointing game tolerance must be ≥ 0, got ${tolerance}`);
  const truth = binarise(mask);
  const top = argmax(map);
  if (top < 0) return 0;
  if (truth[top]) return 1;
  if (tolerance === 0) return 0;

  const shape = options.shape;
  if (!shape) throw new UsageError('pointing game: a tolerance needs the map shape [h, w]');
  const [h, w] = shape;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0) || h * w !== map.length) {
    throw new UsageError(`pointing game: shape [${h}, ${w}] does not fit a map of ${map.length} units`);
  }
  const r0 = Math.floor(top / w);
  const c0 = top % w;
  const reach = Math.floor(tolerance);
  const t2 = tolerance * tolerance;
  for (let r = Math.max(0, r0 - reach); r <= Math.min(h - 1, r0 + reach); r++) {
    for (let c = Math.max(0, c0 - reach); c <= Math.min(w - 1, c0 + reach); c++) {
      if (truth[r * w + c] && (r - r0) ** 2 + (c - c0) ** 2 <= t2) return 1;
    }
  }
  return 0;
}

/**
 * Relevance mass accuracy (Arras et al. 2022, CLEVR-XAI): Σ positive relevance inside the mask /
 * Σ positive relevance overall (0 if no positive relevance). Negative relevance is left out because
 * it is evidence *against* the class, not a place the map points to.
 */
export function relevanceMassAccuracy(map: ArrayLike<number>, mask: ArrayLike<number>): number {
  checkSameLength(map, mask, 'relevance mass accuracy');
  const truth = binarise(mask);
  let inside = 0;
  let total = 0;
  for (let i = 0; i < map.length; i++) {
    const r = map[i]!;
    if (!(r > 0)) continue;
    total += r;
    if (truth[i]) inside += r;
  }
  return total > 0 ? inside / total : 0;
}

/**
 * Relevance rank accuracy (Arras et al. 2022, CLEVR-XAI): with K = number of mask units, the fraction
 * of the top-K units by relevance that lie inside the mask (ties broken by index, as in
 * `removalOrder`). A random map scores K/N on average. NaN for an empty mask (K = 0), where the
 * measure is undefined.
 */
export function relevanceRankAccuracy(map: ArrayLike<number>, mask: ArrayLike<number>): number {
  checkSameLength(map, mask, 'relevance rank accuracy');
  const truth = binarise(mask);
  let k = 0;
  for (let i = 0; i < truth.length; i++) k += truth[i]!;
  if (k === 0) return NaN;
  const order = removalOrder(map, 'positive');
  let hits = 0;
  for (let j = 0; j < k; j++) hits += truth[order[j]!]!;
  return hits / k;
}
