/**
 * Perturbation tests for explanation maps.
 *
 * Chefer, Gur & Wolf (CVPR 2021), following their `pertubation_eval_from_hdf5.py`: rank the units of
 * the input (pixels or tokens) by relevance, zero out a growing fraction of them — 10 %, 20 %, …,
 * 90 % — and record the model's accuracy (or target-class probability) at each step.
 *   - positive test: the MOST relevant units go first. A faithful map makes the score collapse
 *     quickly, so LOWER area under the curve is better.
 *   - negative test: the LEAST relevant units go first. A faithful map keeps the score up, so HIGHER
 *     area under the curve is better.
 * For images the authors rank *pixels*, not patches: the 14×14 patch map is bilinearly upsampled to
 * 224×224 first. That upsampling is the caller's job; pass the per-pixel map here.
 *
 * Also the ERASER (DeYoung et al., ACL 2020) soft-score measures, comprehensiveness and sufficiency,
 * averaged over their default "AOPC" bins.
 *
 * Only the index bookkeeping and the arithmetic live here; running the model on perturbed inputs is
 * the caller's.
 */
import { UsageError } from '../errors.js';
import { trapezoid } from './stats.js';

export type PerturbationTest = 'positive' | 'negative';

/**
 * Fractions of units removed at each step: 0 (the unperturbed input) then 10 % … 90 %. Written out,
 * not accumulated, so 0.3 is 0.3 and not 0.30000000000000004.
 */
export const DEFAULT_FRACTIONS: readonly number[] = Object.freeze([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);

/** ERASER's default AOPC bins: the top 1, 5, 10, 20 and 50 % of tokens. */
export const ERASER_BINS: readonly number[] = Object.freeze([0.01, 0.05, 0.1, 0.2, 0.5]);

function checkTest(test: string): asserts test is PerturbationTest {
  if (test !== 'positive' && test !== 'negative') throw new UsageError(`perturbation test must be 'positive' or 'negative', got '${test}'`);
}

function checkFraction(f: number, what: string): void {
  if (!(f >= 0 && f <= 1)) throw new UsageError(`${what} must lie in [0, 1], got ${f}`);
}

/**
 * Order in which units are removed: indices sorted by relevance, descending for 'positive', ascending
 * for 'negative'; ties broken by index (stable) so results are deterministic. (The authors' torch.topk
 * leaves the order of ties unspecified, so on maps with many equal values — e.g. an upsampled map
 * that is flat inside a patch — their runs need not be reproducible exactly; this one is.)
 */
export function removalOrder(map: ArrayLike<number>, test: PerturbationTest): Int32Array {
  checkTest(test);
  const n = map.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const sign = test === 'positive' ? 1 : -1;
  // Compare rather than subtract so ±Infinity relevance (possible from a division by ~0) sorts too.
  order.sort((i, j) => {
    const a = map[i]!;
    const b = map[j]!;
    return a < b ? sign : a > b ? -sign : i - j;
  });
  return order;
}

export interface RemovalStepOptions {
  /**
   * How f·N becomes a count of units. 'floor' (default) truncates like the authors'
   * `int(base_size * step)`, so our curves are theirs; 'round' rounds half up. The two differ by at
   * most one unit, which is negligible for 224² pixels but not for a 16-token sentence.
   */
  count?: 'round' | 'floor';
}

/**
 * For each fraction f, the indices removed at that step: the first round(f·N) of the removal order
 * (f = 0 → none). Each step is a prefix of the same order, so later steps contain earlier ones.
 */
export function removalSteps(
  map: ArrayLike<number>,
  test: PerturbationTest,
  fractions: readonly number[] = DEFAULT_FRACTIONS,
  options: RemovalStepOptions = {},
): Int32Array[] {
  const round = options.count ?? 'floor';
  if (round !== 'round' && round !== 'floor') throw new UsageError(`count must be 'round' or 'floor', got '${String(round)}'`);
  for (const f of fractions) checkFraction(f, 'perturbation fraction');
  const order = removalOrder(map, test);
  const n = map.length;
  return fractions.map((f) => order.slice(0, round === 'floor' ? Math.floor(f * n) : Math.round(f * n)));
}

/**
 * AUC of a perturbation curve by the trapezoid rule with x = the fractions (0 … 0.9, so x = 0 is the
 * unperturbed score), × 100 — as the authors report it. With scores in [0, 1] the result lies in
 * [0, 90] for the default fractions. Positive test: lower is better; negative test: higher is better.
 */
export function perturbationAuc(fractions: readonly number[], scores: readonly number[]): number {
  if (fractions.length !== scores.length) {
    throw new UsageError(`perturbation AUC needs one score per fraction, got ${fractions.length} fractions and ${scores.length} scores`);
  }
  return trapezoid(fractions, scores) * 100;
}

function meanDrop(full: number, perturbed: readonly number[], what: string): number {
  if (perturbed.length === 0) throw new UsageError(`${what} needs at least one bin`);
  let s = 0;
  for (const p of perturbed) s += full - p;
  return s / perturbed.length;
}

/**
 * ERASER comprehensiveness (AOPC form): mean over the bins k of p(x) − p(x \ top-k %), where p is the
 * probability of the class predicted on the full input. Higher is better: removing what the map
 * calls important should hurt. `withoutTopK` holds the probability with each bin's top units removed
 * (see `topFraction`), usually one per `ERASER_BINS` entry.
 */
export function comprehensiveness(full: number, withoutTopK: readonly number[]): number {
  return meanDrop(full, withoutTopK, 'comprehensiveness');
}

/**
 * ERASER sufficiency (AOPC form): mean over the bins k of p(x) − p(top-k % only). Lower is better:
 * the important units alone should keep the prediction (it can be negative when they alone raise it).
 */
export function sufficiency(full: number, onlyTopK: readonly number[]): number {
  return meanDrop(full, onlyTopK, 'sufficiency');
}

/**
 * Indices of the top-k fraction by relevance: round(k·N) units, but at least 1 when k > 0 so the 1 %
 * bin of a short sentence still removes something; ties broken by index as in `removalOrder`.
 */
export function topFraction(map: ArrayLike<number>, k: number): Int32Array {
  checkFraction(k, 'top fraction k');
  const n = map.length;
  const count = k > 0 ? Math.min(n, Math.max(1, Math.round(k * n))) : 0;
  return removalOrder(map, 'positive').slice(0, count);
}
