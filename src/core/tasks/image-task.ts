/**
 * Synthetic "selective-dependence" image classification (after Pandey et al., "On the Interpretability of
 * Attention Networks"): the label is a function of a known set of pixels only, so an explanation can be scored
 * against an exact ground-truth mask.
 *
 * ## Task definition (the contract explanations are scored against)
 *
 * Every sample is a `size`×`size` RGB image (default 64×64):
 *
 * - **Background** — never informative, chosen independently of the label: either a linear gradient between
 *   two colours along a random direction, or two-colour stripes at a random angle and period, plus per-pixel
 *   luminance noise. Every background channel is clamped to [30, 170] and every background colour has
 *   R ≤ min(G, B) + 15, so no background pixel is red.
 * - **Objects** — 3–5 shapes of kind `circle`, `square`, `triangle` (pointing up) or `cross` (a plus sign),
 *   each with an integer bounding-box side `size` uniform in [round(10·S/64), round(18·S/64)] (10–18 px at
 *   S = 64), placed uniformly at random fully inside the image, at least 1 px from the border, with at least
 *   2 px between the bounding boxes of any two objects (so objects never overlap or touch). Each object is one
 *   flat colour (per-object jitter: red ±12 per channel; distractors ±10 brightness and ±6 per channel) with
 *   ±8 per-pixel noise per channel; no anti-aliasing, so each object's pixel set is exactly
 *   {@link shapeCovers} of its description, and the objects are drawn over the background.
 * - **Colours** — `red` (≈ 220, 30, 30) is reserved for deciding objects. Distractors are one of
 *   `green`, `blue`, `yellow`, `white`, `cyan`, `purple` (no orange, pink or brown). Every red pixel has
 *   R ≥ 200 and G, B ≤ 50 (so R − max(G, B) ≥ 150); every other pixel has R − max(G, B) ≤ 43 (yellow comes
 *   closest; backgrounds ≤ 16) — e.g. "R ≥ 150 and R − max(G, B) ≥ 100" separates them with a wide margin.
 * - **`single` variant** (classes `circle`, `square`, `triangle`, `cross`): exactly one object is red; the label
 *   is its kind. The label is drawn uniformly first; then 2–4 distractors get kinds uniform over all four
 *   kinds and colours uniform over the six non-red colours, independently of the label.
 * - **`pair` variant** (classes `different` = 0, `same` = 1): exactly two objects are red; the label is 1 iff
 *   they have the same kind. The label is drawn uniformly first; the first red kind is uniform, the second is
 *   equal to it (same) or uniform over the other three (different); 1–3 distractors as above.
 *
 * Ground truth: `mask` is 1 exactly on the red (deciding) objects' pixels; `patchMask` is the fraction of
 * each `patchSize`×`patchSize` patch covered by `mask`. Sample `i` is a pure function of (task seed, variant,
 * size, i): its `seed` is sampleSeed(taskSeed ^ hashString(name), i) and `new Rng(seed)` drives everything
 * (patchSize only changes `patchMask`). Only exact arithmetic is used, so the bytes match on every engine.
 */
import { Rng, hashString, sampleSeed } from './rng.js';

export const SHAPE_KINDS = ['circle', 'square', 'triangle', 'cross'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/** The deciding colour, and the only colour never used for distractors. */
export const DECIDING_COLOUR = 'red';

/** Base colours. Distractor hues avoid anything a person (or a threshold) could read as red. */
export const OBJECT_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [220, 30, 30],
  green: [40, 190, 60],
  blue: [40, 90, 230],
  yellow: [230, 215, 40],
  white: [235, 235, 235],
  cyan: [40, 200, 210],
  purple: [150, 70, 210],
};
export const DISTRACTOR_COLOURS: readonly string[] = Object.keys(OBJECT_COLOURS).filter((c) => c !== DECIDING_COLOUR);

export interface ImageTaskOptions {
  /** Image side in pixels (default 64). */
  size?: number;
  /** 'single': label = kind of the one red object; 'pair': label = whether the two red objects match (default 'single'). */
  variant?: 'single' | 'pair';
  /** Side of the patches `patchMask` is computed over; must divide `size` (default 8). */
  patchSize?: number;
}

export interface ImageObject {
  kind: string;
  colour: string;
  /** Centre of the bounding box in pixel coordinates (pixel x covers [x, x+1)), a multiple of 0.5. */
  cx: number;
  cy: number;
  /** Bounding-box side in pixels (an integer). */
  size: number;
  /** True for the red objects the label depends on. */
  deciding: boolean;
}

export interface ImageSample {
  index: number;
  seed: number;
  width: number;
  height: number;
  /** RGB interleaved, row-major, width*height*3. */
  rgb: Uint8Array;
  label: number;
  labelName: string;
  /** Pixel-level ground truth, width*height: 1 where a deciding object is. */
  mask: Uint8Array;
  /** Patch-level ground truth: fraction of each patch covered by deciding objects, row-major over the (size/patchSize)² grid. */
  patchMask: Float32Array;
  objects: ImageObject[];
}

export interface ImageTask {
  readonly name: string;
  readonly classes: readonly string[];
  readonly options: Required<ImageTaskOptions>;
  sample(index: number): ImageSample;
}

/**
 * Whether pixel (x, y) belongs to a shape. Works in doubled coordinates X = 2(x + 0.5 − cx),
 * Y = 2(y + 0.5 − cy), which are integers because cx, cy are multiples of 0.5, so the test is exact
 * (no boundary pixel can flip with floating-point rounding). With s = size:
 *
 * - square:   |X| < s and |Y| < s (the whole bounding box)
 * - circle:   X² + Y² < s²
 * - triangle: −s < Y < s and 2|X| < Y + s (apex at the top centre, base along the bottom edge)
 * - cross:    (|X| < s and 3|Y| < s) or (|Y| < s and 3|X| < s) (arms one third of the side thick)
 */
export function shapeCovers(kind: string, cx: number, cy: number, size: number, x: number, y: number): boolean {
  const X = 2 * x + 1 - 2 * cx;
  const Y = 2 * y + 1 - 2 * cy;
  const s = size;
  const ax = Math.abs(X);
  const ay = Math.abs(Y);
  switch (kind) {
    case 'square':
      return ax < s && ay < s;
    case 'circle':
      return X * X + Y * Y < s * s;
    case 'triangle':
      return Y > -s && Y < s && 2 * ax < Y + s;
    case 'cross':
      return (ax < s && 3 * ay < s) || (ay < s && 3 * ax < s);
    default:
      throw new RangeError(`unknown shape kind '${kind}'`);
  }
}

const BORDER = 1;
const GAP = 2;
const BG_MIN = 30;
const BG_MAX = 170;

interface Box {
  x0: number;
  y0: number;
  s: number;
}

function boxesClash(a: Box, b: Box): boolean {
  return a.x0 < b.x0 + b.s + GAP && b.x0 < a.x0 + a.s + GAP && a.y0 < b.y0 + b.s + GAP && b.y0 < a.y0 + a.s + GAP;
}

/** Non-overlapping boxes; restarts with fresh sizes when a layout jams, so sizes stay independent of position. */
function layout(rng: Rng, count: number, imageSize: number, minS: number, maxS: number): Box[] {
  for (let restart = 0; restart < 100; restart++) {
    const boxes: Box[] = [];
    for (let k = 0; k < count; k++) {
      const s = rng.range(minS, maxS);
      let placed = false;
      for (let attempt = 0; attempt < 100 && !placed; attempt++) {
        const box = { x0: rng.range(BORDER, imageSize - BORDER - s), y0: rng.range(BORDER, imageSize - BORDER - s), s };
        if (!boxes.some((b) => boxesClash(b, box))) {
          boxes.push(box);
          placed = true;
        }
      }
      if (!placed) break;
    }
    if (boxes.length === count) return boxes;
  }
  throw new RangeError(`cannot place ${count} objects of ${minS}–${maxS} px in a ${imageSize} px image`);
}

type Rgb = [number, number, number];

/** Background colours whose R exceeds neither G nor B by more than 15: any blend of two stays non-red too. */
function backgroundColour(rng: Rng): Rgb {
  for (;;) {
    const c: Rgb = [rng.range(45, 155), rng.range(45, 155), rng.range(45, 155)];
    if (c[0] <= Math.min(c[1], c[2]) + 15) return c;
  }
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

function drawBackground(rng: Rng, rgb: Uint8Array, n: number): void {
  const c1 = backgroundColour(rng);
  const c2 = backgroundColour(rng);
  // Integer directions instead of angles: sin/cos are not bit-reproducible across engines.
  const [dx, dy] = rng.pick([
    [1, 0], [0, 1], [1, 1], [1, -1], [2, 1], [1, 2], [2, -1], [1, -2],
  ] as const);
  const noise = rng.range(2, 10);
  const stripes = rng.chance(0.5);
  const pMin = Math.min(0, dx * (n - 1)) + Math.min(0, dy * (n - 1));
  const pMax = Math.max(0, dx * (n - 1)) + Math.max(0, dy * (n - 1));
  const period = rng.range(3, 8) * Math.max(Math.abs(dx), Math.abs(dy));
  const phase = rng.int(2 * period);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const p = x * dx + y * dy;
      let base: Rgb;
      if (stripes) {
        base = Math.floor((p - pMin + phase) / period) % 2 === 0 ? c1 : c2;
      } else {
        const t = (p - pMin) / (pMax - pMin);
        base = [c1[0] + (c2[0] - c1[0]) * t, c1[1] + (c2[1] - c1[1]) * t, c1[2] + (c2[2] - c1[2]) * t];
      }
      // Luminance-only noise: adding the same amount to every channel cannot make a pixel redder.
      const e = rng.irwinHall(noise);
      const i = (y * n + x) * 3;
      for (let ch = 0; ch < 3; ch++) rgb[i + ch] = clamp(Math.round(base[ch] + e), BG_MIN, BG_MAX);
    }
  }
}

interface ObjectSpec {
  kind: ShapeKind;
  colour: string;
  deciding: boolean;
}

function resolveOptions(options: ImageTaskOptions | undefined): Required<ImageTaskOptions> {
  const size = options?.size ?? 64;
  const variant = options?.variant ?? 'single';
  const patchSize = options?.patchSize ?? 8;
  if (!Number.isInteger(size) || size < 32) throw new RangeError(`size must be an integer >= 32, got ${size}`);
  if (variant !== 'single' && variant !== 'pair') throw new RangeError(`variant must be 'single' or 'pair', got '${String(variant)}'`);
  if (!Number.isInteger(patchSize) || patchSize < 1 || size % patchSize !== 0) {
    throw new RangeError(`patchSize must be a positive integer dividing size (${size}), got ${patchSize}`);
  }
  return { size, variant, patchSize };
}

/** The image task with the given seed; see the file comment for the exact definition. */
export function imageTask(seed: number, options?: ImageTaskOptions): ImageTask {
  const opts = resolveOptions(options);
  const { size: n, variant, patchSize } = opts;
  const classes: readonly string[] = variant === 'single' ? SHAPE_KINDS : ['different', 'same'];
  const minS = Math.max(4, Math.round((10 * n) / 64));
  const maxS = Math.max(minS, Math.round((18 * n) / 64));
  const name = `image-${variant}`;
  // patchSize is left out on purpose: it only changes how the mask is summarised, not the images.
  const stream = (seed ^ hashString(name)) >>> 0;

  function sample(index: number): ImageSample {
    const s = sampleSeed(stream, index);
    const rng = new Rng(s);
    const label = rng.int(classes.length);

    const specs: ObjectSpec[] = [];
    if (variant === 'single') {
      specs.push({ kind: SHAPE_KINDS[label], colour: DECIDING_COLOUR, deciding: true });
    } else {
      const a = rng.pick(SHAPE_KINDS);
      const b = label === 1 ? a : rng.pick(SHAPE_KINDS.filter((k) => k !== a));
      specs.push({ kind: a, colour: DECIDING_COLOUR, deciding: true }, { kind: b, colour: DECIDING_COLOUR, deciding: true });
    }
    const total = rng.range(3, 5);
    while (specs.length < total) specs.push({ kind: rng.pick(SHAPE_KINDS), colour: rng.pick(DISTRACTOR_COLOURS), deciding: false });
    // Random order, so neither the list position nor the placement order (earlier objects get freer
    // positions) singles out the deciding objects.
    rng.shuffle(specs);

    const rgb = new Uint8Array(n * n * 3);
    drawBackground(rng, rgb, n);
    const boxes = layout(rng, specs.length, n, minS, maxS);

    const mask = new Uint8Array(n * n);
    const objects: ImageObject[] = [];
    specs.forEach((spec, k) => {
      const { x0, y0, s: side } = boxes[k];
      const cx = x0 + side / 2;
      const cy = y0 + side / 2;
      const base = OBJECT_COLOURS[spec.colour];
      // Red gets independent per-channel jitter; distractors mostly a shared brightness jitter, because
      // per-channel jitter would tint white and yellow towards pink and orange.
      const shared = spec.deciding ? 0 : rng.range(-10, 10);
      const perChannel = spec.deciding ? 12 : 6;
      const colour = base.map((v) => v + shared + rng.range(-perChannel, perChannel));
      for (let y = y0; y < y0 + side; y++) {
        for (let x = x0; x < x0 + side; x++) {
          if (!shapeCovers(spec.kind, cx, cy, side, x, y)) continue;
          const i = y * n + x;
          for (let ch = 0; ch < 3; ch++) rgb[i * 3 + ch] = clamp(colour[ch] + rng.range(-8, 8), 0, 255);
          if (spec.deciding) mask[i] = 1;
        }
      }
      objects.push({ kind: spec.kind, colour: spec.colour, cx, cy, size: side, deciding: spec.deciding });
    });

    const grid = n / patchSize;
    const patchMask = new Float32Array(grid * grid);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) if (mask[y * n + x]) patchMask[Math.floor(y / patchSize) * grid + Math.floor(x / patchSize)] += 1;
    }
    for (let p = 0; p < patchMask.length; p++) patchMask[p] /= patchSize * patchSize;

    return { index, seed: s, width: n, height: n, rgb, label, labelName: classes[label], mask, patchMask, objects };
  }

  return { name, classes, options: opts, sample };
}
