/**
 * Drawing relevance maps: upsampling a patch-level map to pixels, colouring it and blending it over
 * the image the model saw. Pure TypeScript so the app's renderer draws exactly what the CLI writes.
 */
import { UsageError } from '../errors.js';
import { type ColormapName, colormapArray, isColormapName, isDiverging } from './colormap.js';
import { assertRgbImage, type RgbImage } from './preprocess.js';

export interface OverlayOptions {
  /** Default 'jet', as in the authors' notebooks. */
  colormap?: ColormapName;
  /** Opacity of the heatmap, 0..1; default 0.5. */
  alpha?: number;
  /**
   * 'minmax': (v - min) / (max - min), the authors' normalisation.
   * 'signed-max': v / max|v| mapped from [-1, 1] to [0, 1], so 0 stays at the colormap's centre.
   * Default: minmax for sequential colormaps, signed-max for diverging ones.
   */
  normalise?: 'minmax' | 'signed-max';
  /**
   * The ends to scale against, [min, max] of the map before upsampling (a legend's numbers), instead
   * of the upsampled map's own: bilinear upsampling rarely lands on a patch's centre, so its extremes
   * fall short of the map's, and a legend labelled with the map's values would not match the colours.
   */
  range?: readonly [number, number];
}

function assertMap(map: ArrayLike<number>, mapShape: [number, number]): void {
  const [mh, mw] = mapShape;
  if (!Number.isInteger(mh) || !Number.isInteger(mw) || mh <= 0 || mw <= 0) {
    throw new UsageError(`relevance map shape must be two positive integers, got [${mh}, ${mw}]`);
  }
  if (map.length !== mh * mw) {
    throw new UsageError(`relevance map has ${map.length} values but shape [${mh}, ${mw}] needs ${mh * mw}`);
  }
}

function assertSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new UsageError(`heatmap size must be positive integers, got ${width}×${height}`);
  }
}

/** Per output index along one axis: the two source indices and the weight of the second. */
function linearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w: Float64Array } {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w = new Float64Array(outSize);
  for (let d = 0; d < outSize; d++) {
    // torch's area_pixel_compute_source_index with align_corners=False: half-pixel centres,
    // clamped at 0 on the left; the right edge is clamped through i1.
    const src = Math.max(scale * (d + 0.5) - 0.5, 0);
    const lo = Math.floor(src);
    i0[d] = lo;
    i1[d] = lo < inSize - 1 ? lo + 1 : lo;
    w[d] = src - lo;
  }
  return { i0, i1, w };
}

/**
 * Bilinear resize with align_corners=False semantics, like
 * `torch.nn.functional.interpolate(x, size=(outH, outW), mode='bilinear')`: the way the authors
 * upsample patch maps to pixels. No antialiasing (torch's default), so downsizing just samples.
 * Computed in float64 and stored as float32, so results can differ from torch's float32 by an ulp.
 * NaN propagates; callers that draw should sanitise first.
 */
export function upsampleBilinear(map: ArrayLike<number>, mapShape: [number, number], outH: number, outW: number): Float32Array {
  assertMap(map, mapShape);
  assertSize(outW, outH);
  const [mh, mw] = mapShape;
  const ys = linearTaps(mh, outH);
  const xs = linearTaps(mw, outW);
  // Each source row interpolated horizontally once; output rows then only blend two of them.
  const rows = new Float64Array(mh * outW);
  for (let r = 0; r < mh; r++) {
    for (let x = 0; x < outW; x++) {
      const wx = xs.w[x];
      rows[r * outW + x] = (1 - wx) * map[r * mw + xs.i0[x]] + wx * map[r * mw + xs.i1[x]];
    }
  }
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const t = ys.i0[y] * outW;
    const b = ys.i1[y] * outW;
    const wy = ys.w[y];
    const o = y * outW;
    for (let x = 0; x < outW; x++) out[o + x] = (1 - wy) * rows[t + x] + wy * rows[b + x];
  }
  return out;
}

interface Resolved {
  colormap: ColormapName;
  alpha: number;
  normalise: 'minmax' | 'signed-max';
}

function resolveOptions(options: OverlayOptions | undefined): Resolved {
  const colormap = options?.colormap ?? 'jet';
  if (!isColormapName(colormap)) throw new UsageError(`unknown colormap "${String(colormap)}"`);
  const alpha = options?.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) {
    throw new UsageError(`overlay alpha must be between 0 and 1, got ${String(alpha)}`);
  }
  const normalise = options?.normalise ?? (isDiverging(colormap) ? 'signed-max' : 'minmax');
  if (normalise !== 'minmax' && normalise !== 'signed-max') {
    throw new UsageError(`unknown normalisation "${String(normalise)}" (use minmax or signed-max)`);
  }
  return { colormap, alpha, normalise };
}

/**
 * Non-finite values become 0 before upsampling: one NaN would otherwise spread over its
 * neighbourhood and poison min/max. ±Infinity is treated the same, since it has no place on a
 * colour scale either.
 */
function sanitise(map: ArrayLike<number>): Float64Array {
  const out = new Float64Array(map.length);
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    out[i] = Number.isFinite(v) ? v : 0;
  }
  return out;
}

/**
 * Map values to [0, 1]. Normalising after upsampling matches the authors' code (interpolate, then
 * min-max). A constant map has no scale: minmax draws it at the low end (the centre for a diverging
 * colormap) and an all-zero map under signed-max sits at the centre, so nothing divides by zero.
 */
function normalise(values: Float32Array, mode: 'minmax' | 'signed-max', diverging: boolean, range?: readonly [number, number]): Float32Array {
  const out = new Float32Array(values.length);
  if (mode === 'minmax') {
    let min = range ? range[0] : Infinity;
    let max = range ? range[1] : -Infinity;
    for (let i = 0; i < values.length && !range; i++) {
      const v = values[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const span = max - min;
    if (!(span > 0) || !Number.isFinite(span)) {
      out.fill(diverging ? 0.5 : 0);
      return out;
    }
    for (let i = 0; i < values.length; i++) out[i] = Math.min(1, Math.max(0, (values[i] - min) / span));
    return out;
  }
  let maxAbs = range ? Math.max(Math.abs(range[0]), Math.abs(range[1])) : 0;
  for (let i = 0; i < values.length && !range; i++) {
    const a = Math.abs(values[i]);
    if (a > maxAbs) maxAbs = a;
  }
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) {
    out.fill(0.5);
    return out;
  }
  for (let i = 0; i < values.length; i++) out[i] = Math.min(1, Math.max(0, (values[i] / maxAbs + 1) / 2));
  return out;
}

/** The upsampled map in [0, 1] as it will be coloured; exported for code that draws its own way. */
export function normalisedHeatmap(
  map: ArrayLike<number>,
  mapShape: [number, number],
  width: number,
  height: number,
  options?: OverlayOptions,
): Float32Array {
  const o = resolveOptions(options);
  assertMap(map, mapShape);
  const up = upsampleBilinear(sanitise(map), mapShape, height, width);
  return normalise(up, o.normalise, isDiverging(o.colormap), options?.range);
}

/** The coloured map alone, at a given size (for side-by-side grids). */
export function renderHeatmap(
  map: ArrayLike<number>,
  mapShape: [number, number],
  width: number,
  height: number,
  options?: OverlayOptions,
): RgbImage {
  const o = resolveOptions(options);
  const t = normalisedHeatmap(map, mapShape, width, height, options);
  return { width, height, data: colormapArray(o.colormap, t) };
}

/**
 * Upsample `map` (shape [mh, mw], row-major) bilinearly to the image size and alpha-blend the
 * coloured map over the image: out = round((1 - alpha) * image + alpha * colour).
 * NaN in the map is treated as 0.
 */
export function overlayHeatmap(
  img: RgbImage,
  map: ArrayLike<number>,
  mapShape: [number, number],
  options?: OverlayOptions,
): RgbImage {
  assertRgbImage(img, 'overlay image');
  const o = resolveOptions(options);
  const heat = renderHeatmap(map, mapShape, img.width, img.height, options).data;
  const a = o.alpha;
  const src = img.data;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Math.round((1 - a) * src[i] + a * heat[i]);
  return { width: img.width, height: img.height, data: out };
}
