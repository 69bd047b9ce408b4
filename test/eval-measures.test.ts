/**
 * Evaluation measures (src/core/eval): every expected number is worked out by hand in the comment
 * beside it, or is a value documented by numpy / scipy / sklearn for the same input. Plus a chance
 * check: random maps must score what chance predicts on the localisation measures.
 */
import { describe, it, expect } from 'vitest';
import {
  mean, median, quantile, iqr, summarise, trapezoid, rankdata,
  removalOrder, removalSteps, perturbationAuc, comprehensiveness, sufficiency, topFraction, DEFAULT_FRACTIONS, ERASER_BINS,
  segmentationScores, averagePrecision, pointingGame, relevanceMassAccuracy, relevanceRankAccuracy,
  kendallTau, agreementMatrix, totalVariation, jensenShannon,
} from '../src/core/eval/index.js';

/** mulberry32: the same "random" maps on every run, so a failure can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const list = (xs: ArrayLike<number>) => Array.from(xs);

describe('stats', () => {
  // sorted [1, 3, 4, 7, 10], n = 5, numpy 'linear': h = (n − 1)·q = 4q
  const xs = [7, 1, 3, 10, 4];

  it('quantile interpolates linearly like numpy', () => {
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile(xs, 1)).toBe(10);
    expect(quantile(xs, 0.25)).toBe(3); // h = 1 → x[1] = 3
    expect(quantile(xs, 0.75)).toBe(7); // h = 3 → x[3] = 7
    expect(quantile(xs, 0.1)).toBeCloseTo(1.8, 12); // h = 0.4 → 1 + 0.4·(3 − 1) = 1.8
    expect(quantile(xs, 0.9)).toBeCloseTo(8.8, 12); // h = 3.6 → 7 + 0.6·(10 − 7) = 8.8
    // Even count [1, 2, 3, 4], h = 3q: q=.25 → h=.75 → 1 + .75·1 = 1.75; q=.75 → h=2.25 → 3.25
    expect(quantile([4, 1, 3, 2], 0.25)).toBe(1.75);
    expect(quantile([4, 1, 3, 2], 0.75)).toBe(3.25);
    expect(() => quantile(xs, 1.5)).toThrow(/\[0, 1\]/);
  });

  it('median, iqr and mean', () => {
    expect(median(xs)).toBe(4); // middle of five
    expect(median([4, 1, 3, 2])).toBe(2.5); // h = 1.5 → 2 + .5·(3 − 2)
    expect(iqr(xs)).toBe(4); // 7 − 3
    expect(iqr([4, 1, 3, 2])).toBe(1.5); // 3.25 − 1.75
    expect(mean(xs)).toBe(5); // 25 / 5
    expect(mean([])).toBeNaN();
  });

  it('summarise', () => {
    expect(summarise(xs)).toEqual({ n: 5, mean: 5, median: 4, q1: 3, q3: 7, iqr: 4, min: 1, max: 10 });
    expect(summarise(new Float32Array([2]))).toEqual({ n: 1, mean: 2, median: 2, q1: 2, q3: 2, iqr: 0, min: 2, max: 2 });
    const empty = summarise([]);
    expect(empty.n).toBe(0);
    for (const key of ['mean', 'median', 'q1', 'q3', 'iqr', 'min', 'max'] as const) expect(empty[key]).toBeNaN();
  });

  it('trapezoid', () => {
    // (0,0)–(1,2)–(3,2): ½·1·(0 + 2) + ½·2·(2 + 2) = 1 + 4 = 5
    expect(trapezoid([0, 1, 3], [0, 2, 2])).toBe(5);
    expect(trapezoid([0], [7])).toBe(0);
    expect(() => trapezoid([0, 1], [1])).toThrow();
  });

  it('rankdata averages tied ranks, 1-based (scipy)', () => {
    // scipy docs: rankdata([0, 2, 3, 2]) = [1, 2.5, 4, 2.5] — the two 2s share ranks 2 and 3
    expect(list(rankdata([0, 2, 3, 2]))).toEqual([1, 2.5, 4, 2.5]);
    // three 5s share ranks 2, 3, 4 → 3
    expect(list(rankdata([5, 1, 5, 9, 5]))).toEqual([3, 1, 3, 5, 3]);
  });
});

describe('perturbation test', () => {
  it('AUC of a known curve', () => {
    // scores [1, .9, .8, .6, .5, .4, .3, .2, .1, .1] at x = 0, .1, …, .9. Trapezoids of width .1:
    // (1+.9)/2 + (.9+.8)/2 + (.8+.6)/2 + (.6+.5)/2 + (.5+.4)/2 + (.4+.3)/2 + (.3+.2)/2 + (.2+.1)/2 + (.1+.1)/2
    // = .95 + .85 + .70 + .55 + .45 + .35 + .25 + .15 + .10 = 4.35; × .1 = .435; × 100 = 43.5
    const scores = [1, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1];
    expect(perturbationAuc(DEFAULT_FRACTIONS, scores)).toBeCloseTo(43.5, 10);
    // A score of 1 throughout is the largest possible: 0.9 · 1 · 100 = 90
    expect(perturbationAuc(DEFAULT_FRACTIONS, new Array(10).fill(1))).toBeCloseTo(90, 10);
    expect(() => perturbationAuc(DEFAULT_FRACTIONS, [1, 0.5])).toThrow(/one score per fraction/);
  });

  it('default fractions and ERASER bins', () => {
    expect(DEFAULT_FRACTIONS).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(ERASER_BINS).toEqual([0.01, 0.05, 0.1, 0.2, 0.5]);
  });

  it('removal order breaks ties by index', () => {
    const map = [0.2, 0.5, 0.2, 0.9, 0.5, 0.1];
    // positive: .9 (3), then the .5s in index order (1, 4), the .2s (0, 2), .1 (5)
    expect(list(removalOrder(map, 'positive'))).toEqual([3, 1, 4, 0, 2, 5]);
    // negative: .1 (5), the .2s (0, 2), the .5s (1, 4), .9 (3) — not the reverse of the positive order
    expect(list(removalOrder(map, 'negative'))).toEqual([5, 0, 2, 1, 4, 3]);
    expect(list(removalOrder(new Float32Array([1, -Infinity, Infinity]), 'positive'))).toEqual([2, 0, 1]);
  });

  it('removal step sizes for N = 16 and N = 10', () => {
    const map16 = Array.from({ length: 16 }, (_, i) => (i * 7) % 16);
    // f·16 = 0, 1.6, 3.2, 4.8, 6.4, 8, 9.6, 11.2, 12.8, 14.4
    // rounded:  0, 2, 3, 5, 6, 8, 10, 11, 13, 14
    // truncated like the authors' int(): 0, 1, 3, 4, 6, 8, 9, 11, 12, 14
    // The default truncates, as the authors' script does.
    const steps = removalSteps(map16, 'positive');
    expect(steps.map((s) => s.length)).toEqual([0, 1, 3, 4, 6, 8, 9, 11, 12, 14]);
    expect(removalSteps(map16, 'positive', DEFAULT_FRACTIONS, { count: 'round' }).map((s) => s.length)).toEqual([0, 2, 3, 5, 6, 8, 10, 11, 13, 14]);
    // Every step is a prefix of the removal order, so later steps contain the earlier ones.
    const order = list(removalOrder(map16, 'positive'));
    for (const s of steps) expect(list(s)).toEqual(order.slice(0, s.length));
    // The most relevant unit of map16 is value 15 at i = 9 (9·7 = 63 = 3·16 + 15): first to go.
    expect(steps[2]![0]).toBe(9);

    // N = 10: f·10 = 0, 1, …, 9 both ways (0.3·10 is 3.0000000000000004 in floats, still 3 when truncated).
    const map10 = [5, 3, 8, 1, 9, 2, 7, 4, 6, 0];
    expect(removalSteps(map10, 'negative').map((s) => s.length)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(removalSteps(map10, 'negative', DEFAULT_FRACTIONS, { count: 'floor' }).map((s) => s.length)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // negative test removes the smallest first: 0 (i 9), 1 (i 3), 2 (i 5)
    expect(list(removalSteps(map10, 'negative', [0.3])[0]!)).toEqual([9, 3, 5]);
    expect(() => removalSteps(map10, 'positive', [1.2])).toThrow(/\[0, 1\]/);
  });

  it('ERASER comprehensiveness and sufficiency', () => {
    // full .9; without top-k: drops .05, .2, .4, .6, .8 → sum 2.05 → mean .41
    expect(comprehensiveness(0.9, [0.85, 0.7, 0.5, 0.3, 0.1])).toBeCloseTo(0.41, 12);
    // only top-k: drops .7, .5, .3, .1, −.05 → sum 1.55 → mean .31
    expect(sufficiency(0.9, [0.2, 0.4, 0.6, 0.8, 0.95])).toBeCloseTo(0.31, 12);
    expect(() => comprehensiveness(0.9, [])).toThrow();
  });

  it('topFraction keeps at least one unit', () => {
    // N = 20, relevance = index, so the top units are 19, 18, …
    const map = Array.from({ length: 20 }, (_, i) => i);
    // k·20 = .2, 1, 2, 4, 10 → at least 1 → 1, 1, 2, 4, 10
    expect(ERASER_BINS.map((k) => topFraction(map, k).length)).toEqual([1, 1, 2, 4, 10]);
    expect(list(topFraction(map, 0.2))).toEqual([19, 18, 17, 16]);
    expect(topFraction(map, 0).length).toBe(0);
    expect(topFraction(map, 1).length).toBe(20);
  });
});

describe('localisation', () => {
  it('averagePrecision matches sklearn', () => {
    // sklearn docs: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333333333333333
    // by score: .8 (+) P=1 R=.5; .4 (−) R unchanged; .35 (+) P=2/3 R=1; .1 (−) R unchanged
    // AP = .5·1 + .5·(2/3) = 5/6
    expect(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.8333333333333333, 15);
    // Tied scores are one threshold: all tied → P = 2/4 at R = 1 → AP = .5
    expect(averagePrecision([3, 3, 3, 3], [1, 0, 1, 0])).toBe(0.5);
    // No positives: sklearn returns 0
    expect(averagePrecision([0.2, 0.9], [0, 0])).toBe(0);
  });

  it('segmentation scores on a crafted map', () => {
    // map → min-max (x − (−1)) / (3 − (−1)) = [1, .75, .5, .5, .125, .125, .125, 0, 0, 0]
    // mean = (1 + .75 + .5 + .5 + 3·.125) / 10 = 3.125 / 10 = .3125 → predicted foreground: units 0–3
    // truth foreground: units 2–5 → tp {2,3} = 2, fp {0,1} = 2, fn {4,5} = 2, tn {6,7,8,9} = 4
    const map = [3, 2, 1, 1, -0.5, -0.5, -0.5, -1, -1, -1];
    const mask = [0, 0, 1, 1, 1, 1, 0, 0, 0, 0];
    const s = segmentationScores(map, mask);
    expect(s.pixelAccuracy).toBeCloseTo(0.6, 15); // (2 + 4) / 10
    expect(s.iouForeground).toBeCloseTo(1 / 3, 15); // 2 / (2 + 2 + 2)
    expect(s.iouBackground).toBeCloseTo(0.5, 15); // 4 / (4 + 2 + 2)
    expect(s.mIoU).toBeCloseTo(5 / 12, 15); // (1/3 + 1/2) / 2
    // AP of the normalised map for the foreground (P = 4 positives), thresholds from the top:
    // 1 (−), .75 (−): R = 0; .5 (+,+): tp 2 fp 2 → R .5, P .5 → +.25
    // .125 (+,+,−): tp 4 fp 3 → R 1, P 4/7 → +.5·4/7 = 2/7; 0 (−,−,−): R unchanged.  AP = 1/4 + 2/7 = 15/28
    expect(s.ap).toBeCloseTo(15 / 28, 14);
    // The authors' AP over [1 − map, map] vs [bg, fg] one-hot: 20 scores, 10 positives.
    // bg scores 1 − norm = [0, .25, .5, .5, .875×3, 1×3], bg labels [1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    //  1:    bg 7,8,9 (+,+,+), fg 0 (−)  → tp 3 fp 1  → R .3, P 3/4  → .3·3/4 = .225
    //  .875: bg 4,5,6 (−,−,+)            → tp 4 fp 3  → R .4, P 4/7  → .1·4/7 = 2/35
    //  .75:  fg 1 (−)                    → tp 4 fp 4  → R unchanged
    //  .5:   bg 2,3 (−,−), fg 2,3 (+,+)  → tp 6 fp 6  → R .6, P 1/2  → .2·1/2 = .1
    //  .25:  bg 1 (+)                    → tp 7 fp 6  → R .7, P 7/13 → .1·7/13 = 7/130
    //  .125: fg 4,5,6 (+,+,−)            → tp 9 fp 7  → R .9, P 9/16 → .2·9/16 = .1125
    //  0:    bg 0 (+), fg 7,8,9 (−,−,−)  → tp 10 fp 10 → R 1, P 1/2  → .1·1/2 = .05
    // Σ = .225 + .1 + .1125 + .05 + 2/35 + 7/130 = 39/80 + 2/35 + 7/130 = 4357/7280
    expect(s.apBothClasses).toBeCloseTo(4357 / 7280, 14);
    expect(s.counts).toEqual({ correct: 6, total: 10, intersection: [4, 2], union: [8, 6] });
  });

  it('IoU when prediction and truth overlap in 2 of 4 foreground pixels (4×4)', () => {
    // A 0/1 map normalises to itself; mean 4/16 = .25, so the four 1s are the predicted foreground.
    // pred {0, 1, 4, 5} (top-left 2×2), truth {1, 2, 5, 6}: tp {1, 5} = 2, fp {0, 4} = 2, fn {2, 6} = 2, tn = 16 − 6 = 10
    const pred = new Float32Array(16);
    for (const i of [0, 1, 4, 5]) pred[i] = 1;
    const truth = new Float32Array(16);
    for (const i of [1, 2, 5, 6]) truth[i] = 1;
    const s = segmentationScores(pred, truth);
    expect(s.iouForeground).toBeCloseTo(1 / 3, 15); // 2 / 6
    expect(s.iouBackground).toBeCloseTo(5 / 7, 15); // 10 / (10 + 2 + 2)
    expect(s.mIoU).toBeCloseTo((1 / 3 + 5 / 7) / 2, 15);
    expect(s.pixelAccuracy).toBe(0.75); // (2 + 10) / 16
  });

  it('a constant map predicts background everywhere, as the authors\' NaN handling does', () => {
    // truth 4 of 10: tp 0, fp 0, fn 4, tn 6 → IoU fg 0/4 = 0, IoU bg 6/10, accuracy .6
    const mask = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
    const s = segmentationScores(new Array(10).fill(2), mask);
    expect(s.iouForeground).toBe(0);
    expect(s.iouBackground).toBeCloseTo(0.6, 15);
    expect(s.pixelAccuracy).toBeCloseTo(0.6, 15);
    expect(s.ap).toBeCloseTo(0.4, 15); // one tied threshold: P = 4/10 at R = 1
    expect(s.apBothClasses).toBe(0.5); // 20 zero scores, 10 positives
  });

  it('fractional patch masks count as foreground above one half', () => {
    // [.6, .5, .51, .2] → [1, 0, 1, 0]
    const map = [0.1, 0.9, 0.3, 0.2];
    expect(pointingGame(map, [0.6, 0.5, 0.51, 0.2])).toBe(0); // max at unit 1, which is exactly .5: background
    expect(relevanceRankAccuracy(map, [0.6, 0.5, 0.51, 0.2])).toBe(0.5); // K = 2, top-2 {1, 2}: only 2 inside
  });

  describe('pointing game on a 4×4 map', () => {
    // mask: the top-left 2×2 block, units 0, 1, 4, 5 (row-major, unit = 4·row + col)
    const mask = new Float32Array(16);
    for (const i of [0, 1, 4, 5]) mask[i] = 1;
    const peakAt = (i: number) => {
      const map = new Float32Array(16).fill(0.1);
      map[i] = 1;
      return map;
    };
    const shape: [number, number] = [4, 4];

    it('hit', () => {
      expect(pointingGame(peakAt(5), mask)).toBe(1);
    });
    it('miss', () => {
      // (3, 3) to the nearest mask unit (1, 1): √(4 + 4) ≈ 2.83 — beyond tolerance 1 too
      expect(pointingGame(peakAt(15), mask)).toBe(0);
      expect(pointingGame(peakAt(15), mask, { shape, tolerance: 1 })).toBe(0);
    });
    it('hit with tolerance 1', () => {
      // unit 6 = (1, 2): one step right of mask unit 5 = (1, 1), distance 1
      expect(pointingGame(peakAt(6), mask)).toBe(0);
      expect(pointingGame(peakAt(6), mask, { shape, tolerance: 1 })).toBe(1);
      // unit 10 = (2, 2): diagonal to (1, 1), distance √2 ≈ 1.41 — outside radius 1, inside 1.5
      expect(pointingGame(peakAt(10), mask, { shape, tolerance: 1 })).toBe(0);
      expect(pointingGame(peakAt(10), mask, { shape, tolerance: 1.5 })).toBe(1);
    });
    it('ties go to the first maximum; a tolerance needs the shape', () => {
      const map = new Float32Array(16);
      map[3] = 1; // (0, 3), outside
      map[5] = 1; // inside, but second
      expect(pointingGame(map, mask)).toBe(0);
      expect(() => pointingGame(map, mask, { tolerance: 1 })).toThrow(/shape/);
      expect(() => pointingGame(map, mask, { shape: [3, 5], tolerance: 1 })).toThrow(/does not fit/);
    });
  });

  it('relevance mass accuracy counts positive relevance only', () => {
    // positive relevance: 3 (u0), 1 (u2), 4 (u4) → total 8; inside the mask {0, 1, 4}: 3 + 4 = 7
    // (u1's −2 is inside but negative, so it neither adds nor subtracts) → 7/8
    const map = [3, -2, 1, 0, 4, -1];
    expect(relevanceMassAccuracy(map, [1, 1, 0, 0, 1, 0])).toBe(0.875);
    expect(relevanceMassAccuracy(map, [0.9, 0.7, 0.5, 0, 0.51, 0.2])).toBe(0.875); // same mask after > .5
    expect(relevanceMassAccuracy([-1, 0, -3], [1, 0, 0])).toBe(0);
    expect(() => relevanceMassAccuracy(map, [1, 0])).toThrow(/6 units but the mask 2/);
  });

  it('relevance rank accuracy', () => {
    // K = 3 (mask {0, 3, 4}); top-3 by relevance: u0 .9, u2 .8, u4 .7 → inside: u0, u4 → 2/3
    expect(relevanceRankAccuracy([0.9, 0.1, 0.8, 0.3, 0.7, 0.2], [1, 0, 0, 1, 1, 0])).toBeCloseTo(2 / 3, 15);
    // ties by index: top-3 of [1, 1, 1, 0, 0, 0] are u0, u1, u2; mask {1, 2, 3} → 2/3
    expect(relevanceRankAccuracy([1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0])).toBeCloseTo(2 / 3, 15);
    expect(relevanceRankAccuracy([1, 2, 3], [0, 0, 0])).toBeNaN();
  });

  it('random maps score chance', () => {
    // Mask covers units 0–15 of 64 (25 %). A random map's top-16 is a random 16-subset, so its expected
    // rank accuracy is 16/64 = .25 (hypergeometric s.d. per map ≈ .094, so ≈ .0021 over 2000 maps);
    // its maximum is uniform over the 64 units, so it points into the mask with probability .25
    // (s.d. of the mean over 2000 maps √(.25·.75/2000) ≈ .0097).
    const mask = new Float32Array(64);
    mask.fill(1, 0, 16);
    const random = rng(20240611);
    let rank = 0;
    let point = 0;
    const trials = 2000;
    const map = new Float32Array(64);
    for (let t = 0; t < trials; t++) {
      for (let i = 0; i < 64; i++) map[i] = random();
      rank += relevanceRankAccuracy(map, mask);
      point += pointingGame(map, mask);
    }
    expect(Math.abs(rank / trials - 0.25)).toBeLessThan(0.02);
    expect(Math.abs(point / trials - 0.25)).toBeLessThan(0.03);
  });
});

describe('agreement', () => {
  /** Kendall τ-b straight from the definition, O(n²): the reference for the O(n log n) version. */
  function tauBruteForce(a: number[], b: number[]): number {
    let c = 0, d = 0, tiesA = 0, tiesB = 0;
    const n0 = (a.length * (a.length - 1)) / 2;
    for (let i = 0; i < a.length; i++) {
      for (let j = i + 1; j < a.length; j++) {
        const s = Math.sign(a[i]! - a[j]!) * Math.sign(b[i]! - b[j]!);
        if (a[i] === a[j]) tiesA++;
        if (b[i] === b[j]) tiesB++;
        if (s > 0) c++;
        else if (s < 0) d++;
      }
    }
    return (c - d) / Math.sqrt((n0 - tiesA) * (n0 - tiesB));
  }

  it('Kendall τ of known rankings', () => {
    expect(kendallTau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])).toBe(1);
    expect(kendallTau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])).toBe(-1);
    // scipy docs: kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) = −0.47140452079103173.
    // By hand: of the 10 pairs, concordant (0,4), (3,4) = 2; discordant (0,1), (0,2), (1,2), (1,3),
    // (2,3), (2,4) = 6; (1,4) tied in a only; (0,3) tied in both. n₁ = 2 ties in a, n₂ = 1 in b:
    // τ_b = (2 − 6) / √((10 − 2)(10 − 1)) = −4/√72
    expect(kendallTau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])).toBeCloseTo(-0.47140452079103173, 14);
    // [1, 2, 3, 4] vs [1, 1, 2, 2]: pairs (0,1), (2,3) tied in b, the other 4 concordant:
    // τ_b = 4 / √(6 · (6 − 2)) = 4/√24
    expect(kendallTau([1, 2, 3, 4], [1, 1, 2, 2])).toBeCloseTo(4 / Math.sqrt(24), 14);
    expect(kendallTau([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(kendallTau([1], [1])).toBeNaN();
  });

  it('Kendall τ agrees with the O(n²) definition on random tied data', () => {
    const random = rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 2 + Math.floor(random() * 60);
      const a = Array.from({ length: n }, () => Math.floor(random() * 5));
      const b = Array.from({ length: n }, () => Math.floor(random() * 5));
      if (new Set(a).size < 2 || new Set(b).size < 2) continue;
      expect(kendallTau(a, b)).toBeCloseTo(tauBruteForce(a, b), 12);
    }
  });

  it('agreement matrix', () => {
    // a, b reversed → −1; c swaps the last two of a → 1 discordant of 6 pairs: (5 − 1)/6 = 2/3; b vs c: −2/3
    const { names, tau } = agreementMatrix({ a: [1, 2, 3, 4], b: [4, 3, 2, 1], c: new Float32Array([1, 2, 4, 3]) });
    expect(names).toEqual(['a', 'b', 'c']);
    const expected = [
      [1, -1, 2 / 3],
      [-1, 1, -2 / 3],
      [2 / 3, -2 / 3, 1],
    ];
    tau.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i]![j]!, 14)));
    expect(() => agreementMatrix({ a: [1, 2], b: [1, 2, 3] })).toThrow(/units/);
  });

  it('total variation', () => {
    // ½ (|.5 − .25| + |.5 − .25| + |0 − .5|) = ½ · 1 = .5
    expect(totalVariation([0.5, 0.5, 0], [0.25, 0.25, 0.5])).toBe(0.5);
    expect(totalVariation([1, 0], [0, 1])).toBe(1);
    expect(totalVariation([0.3, 0.7], [0.3, 0.7])).toBe(0);
  });

  it('Jensen–Shannon divergence', () => {
    // m = [.5, .5]: KL([1,0] ‖ m) = 1·ln 2 = KL([0,1] ‖ m) → JSD = ½(ln 2 + ln 2) = ln 2
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(Math.LN2, 15);
    // p = [.5, .5], q = [1, 0], m = [.75, .25]:
    // KL(p ‖ m) = .5 ln(.5/.75) + .5 ln(.5/.25) = .5 ln(2/3) + .5 ln 2 = .5 ln(4/3)
    // KL(q ‖ m) = 1 · ln(1/.75) = ln(4/3); JSD = ½(.5 + 1) ln(4/3) = .75 ln(4/3)
    expect(jensenShannon([0.5, 0.5], [1, 0])).toBeCloseTo(0.75 * Math.log(4 / 3), 15);
    expect(jensenShannon([0.2, 0.3, 0.5], [0.2, 0.3, 0.5])).toBe(0);
  });
});
