/**
 * The model's input preprocessing, in plain TypeScript so that the CLI (Node) and the app's renderer
 * (browser) produce the same tensor from the same pixels.
 *
 * Resampling reproduces Pillow's `Image.resize` for 8-bit RGB, which is what HF's
 * ViTImageProcessor / DeiTImageProcessor and timm's torchvision transforms call on PIL images:
 * a separable convolution whose kernel support is widened by the scale factor when downscaling (so
 * downscaling is antialiased, unlike `torch.nn.functional.interpolate`), with Pillow's 22-bit
 * fixed-point weights and a rounding to uint8 after the horizontal and after the vertical pass.
 * Matching Pillow here matters more than elegance: a model's accuracy and its relevance maps are
 * computed on these exact values, and "almost the same resize" shifts logits measurably.
 */
import { InputError, UsageError } from '../errors.js';

/**
 * 8-bit RGB pixels, interleaved, row-major. Defined here (a module without Node imports) and
 * re-exported by io.ts, so browser code can use the type without pulling sharp into its type graph.
 */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Resample = 'bilinear' | 'bicubic' | 'nearest';

export interface Preprocessing {
  /** Model input [height, width]. */
  size: [number, number];
  /**
   * When set: resize so the short side is this (long side `int(s * long / short)`, as torchvision and
   * HF's `shortest_edge` do), then center-crop to `size` (timm-style DeiT eval transform).
   */
  resizeShortestEdge?: number;
  /**
   * When set: resize straight to this [height, width], then center-crop to `size`. This is what HF's
   * DeiTImageProcessor does by default (256×256 → 224×224). Not combinable with resizeShortestEdge.
   */
  resizeTo?: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  /** Usually 1/255. */
  rescaleFactor: number;
  resample: Resample;
}

export function assertRgbImage(img: RgbImage, label = 'image'): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InputError(`image has no pixels (size ${width}×${height})`, label);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new InputError(
      `pixel buffer holds ${data?.length ?? 0} bytes, expected ${width * height * 3} for ${width}×${height} RGB`,
      label,
    );
  }
}

function assertPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new UsageError(`${what} must be a positive integer, got ${value}`);
  }
}

function assertPreprocessing(p: Preprocessing): void {
  assertPositiveInt(p.size[0], 'preprocessing size (height)');
  assertPositiveInt(p.size[1], 'preprocessing size (width)');
  if (p.resizeShortestEdge !== undefined && p.resizeTo !== undefined) {
    throw new UsageError('preprocessing: give resizeShortestEdge or resizeTo, not both');
  }
  if (p.resizeShortestEdge !== undefined) assertPositiveInt(p.resizeShortestEdge, 'resizeShortestEdge');
  if (p.resizeTo !== undefined) {
    assertPositiveInt(p.resizeTo[0], 'resizeTo (height)');
    assertPositiveInt(p.resizeTo[1], 'resizeTo (width)');
  }
  if (p.resample !== 'bilinear' && p.resample !== 'bicubic' && p.resample !== 'nearest') {
    throw new UsageError(`unknown resample "${String(p.resample)}" (use bilinear, bicubic or nearest)`);
  }
  for (let c = 0; c < 3; c++) {
    if (!Number.isFinite(p.mean[c])) throw new UsageError(`preprocessing mean[${c}] is not a number`);
    if (!Number.isFinite(p.std[c]) || p.std[c] === 0) {
      throw new UsageError(`preprocessing std[${c}] must be a non-zero number, got ${p.std[c]}`);
    }
  }
  if (!Number.isFinite(p.rescaleFactor)) throw new UsageError('preprocessing rescaleFactor is not a number');
}

// ---------------------------------------------------------------------------------------------
// Pillow-compatible resampling (libImaging/Resample.c)

const PRECISION_BITS = 32 - 8 - 2;
const ONE_HALF = 1 << (PRECISION_BITS - 1);

interface Filter {
  support: number;
  weight(x: number): number;
}

// The kernels are written exactly as Pillow writes them so the double-precision weights, and hence
// the rounded fixed-point ones, come out identical.
const BILINEAR: Filter = {
  support: 1,
  weight(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  },
};

/** Keys cubic convolution, a = -0.5 (Pillow's BICUBIC; torchvision's PIL path; timm's default for DeiT). */
const BICUBIC: Filter = {
  support: 2,
  weight(x) {
    const a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  },
};

interface Coeffs {
  /** Per output pixel: first input index, number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  kk: Int32Array;
  ksize: number;
}

function precomputeCoeffs(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(acc: number): number {
  // Pillow shifts an int32 accumulator; `>>` is the same arithmetic shift (floor) in JS.
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(img: RgbImage, outW: number, filter: Filter): RgbImage {
  const { width: inW, height, data } = img;
  const { bounds, kk, ksize } = precomputeCoeffs(inW, outW, filter);
  const out = new Uint8Array(outW * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * inW * 3;
    const orow = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const n = bounds[xx * 2 + 1];
      const kb = xx * ksize;
      let r = ONE_HALF;
      let g = ONE_HALF;
      let b = ONE_HALF;
      for (let x = 0; x < n; x++) {
        const w = kk[kb + x];
        const p = row + (xmin + x) * 3;
        r += data[p] * w;
        g += data[p + 1] * w;
        b += data[p + 2] * w;
      }
      const o = orow + xx * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return { width: outW, height, data: out };
}

function resampleVertical(img: RgbImage, outH: number, filter: Filter): RgbImage {
  const { width, height: inH, data } = img;
  const { bounds, kk, ksize } = precomputeCoeffs(inH, outH, filter);
  const stride = width * 3;
  const out = new Uint8Array(stride * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2];
    const n = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    const orow = yy * stride;
    for (let i = 0; i < stride; i++) {
      let acc = ONE_HALF;
      for (let y = 0; y < n; y++) acc += data[(ymin + y) * stride + i] * kk[kb + y];
      out[orow + i] = clip8(acc);
    }
  }
  return { width, height: outH, data: out };
}

/**
 * Pillow's NEAREST goes through its affine transform rather than the convolution, sampling at
 * `floor((x + 0.5) * in / out)` with the source coordinate accumulated step by step; reproduced as is.
 */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = step * 0.5;
  for (let x = 0; x < outSize; x++) {
    const i = pos < 0 ? -1 : Math.trunc(pos);
    idx[x] = i < 0 ? 0 : i >= inSize ? inSize - 1 : i;
    pos += step;
  }
  return idx;
}

function resizeNearest(img: RgbImage, outW: number, outH: number): RgbImage {
  const xs = nearestIndices(img.width, outW);
  const ys = nearestIndices(img.height, outH);
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    const row = ys[y] * img.width * 3;
    for (let x = 0; x < outW; x++) {
      const s = row + xs[x] * 3;
      const o = (y * outW + x) * 3;
      out[o] = img.data[s];
      out[o + 1] = img.data[s + 1];
      out[o + 2] = img.data[s + 2];
    }
  }
  return { width: outW, height: outH, data: out };
}

/**
 * Resize 8-bit RGB as Pillow's `Image.resize((width, height), resample)` does (reducing_gap=None).
 * Results should be bit-identical to Pillow; where they are not, the difference is ±1 in a pixel.
 */
export function resizeImage(img: RgbImage, width: number, height: number, resample: Resample): RgbImage {
  assertRgbImage(img);
  assertPositiveInt(width, 'resize width');
  assertPositiveInt(height, 'resize height');
  if (width === img.width && height === img.height) {
    return { width, height, data: img.data.slice() };
  }
  if (resample === 'nearest') return resizeNearest(img, width, height);
  const filter = resample === 'bicubic' ? BICUBIC : BILINEAR;
  let cur = img;
  // Pillow does the horizontal pass first and rounds to uint8 between passes; the order matters
  // for bit-exactness.
  if (width !== cur.width) cur = resampleHorizontal(cur, width, filter);
  if (height !== cur.height) cur = resampleVertical(cur, height, filter);
  return cur;
}

/**
 * Center crop to [height, width]. The offset is `floor((in - out) / 2)` as in HF's `center_crop`;
 * torchvision's CenterCrop (timm) uses `round()` instead, which differs by one pixel when the
 * difference is odd and the half rounds up. Where the image is smaller than the crop it is padded
 * with black, as both libraries do.
 */
export function centerCrop(img: RgbImage, height: number, width: number): RgbImage {
  assertRgbImage(img);
  assertPositiveInt(width, 'crop width');
  assertPositiveInt(height, 'crop height');
  const top = Math.floor((img.height - height) / 2);
  const left = Math.floor((img.width - width) / 2);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(width, img.width - left);
    if (x1 <= x0) continue;
    const src = (sy * img.width + x0 + left) * 3;
    out.set(img.data.subarray(src, src + (x1 - x0) * 3), (y * width + x0) * 3);
  }
  return { width, height, data: out };
}

/** Size after resizing so the short side is `shortest` (torchvision / HF `shortest_edge` rule). */
export function shortestEdgeSize(width: number, height: number, shortest: number): { width: number; height: number } {
  if (width <= height) return { width: shortest, height: Math.trunc((shortest * height) / width) };
  return { width: Math.trunc((shortest * width) / height), height: shortest };
}

/** The geometric part of preprocessing (resize, then center-crop if configured): what the model sees. */
export function resizeForModel(img: RgbImage, p: Preprocessing): RgbImage {
  assertRgbImage(img);
  assertPreprocessing(p);
  const [h, w] = p.size;
  if (p.resizeShortestEdge !== undefined) {
    const s = shortestEdgeSize(img.width, img.height, p.resizeShortestEdge);
    return centerCrop(resizeImage(img, s.width, s.height, p.resample), h, w);
  }
  if (p.resizeTo !== undefined) {
    return centerCrop(resizeImage(img, p.resizeTo[1], p.resizeTo[0], p.resample), h, w);
  }
  return resizeImage(img, w, h, p.resample);
}

/**
 * Normalise an image already at model size into a CHW Float32Array. The arithmetic follows HF's
 * float32 steps (rescale in float64 then cast, then subtract and divide in float32) so values agree
 * bit for bit with `ViTImageProcessor(...)["pixel_values"]` on the same uint8 pixels.
 */
export function normaliseImage(img: RgbImage, p: Pick<Preprocessing, 'mean' | 'std' | 'rescaleFactor'>): Float32Array {
  assertRgbImage(img);
  const f = Math.fround;
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const mean = f(p.mean[c]);
    const std = f(p.std[c]);
    // Only 256 possible inputs per channel: a table keeps the per-pixel work to a lookup.
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = f(f(f(v * p.rescaleFactor) - mean) / std);
    const base = c * n;
    for (let i = 0; i < n; i++) out[base + i] = table[img.data[i * 3 + c]];
  }
  return out;
}

/** Returns a Float32Array of length 3*H*W in CHW order (channels first), normalised: ((v*rescale)-mean)/std. */
export function preprocessImage(img: RgbImage, p: Preprocessing): Float32Array {
  return normaliseImage(resizeForModel(img, p), p);
}
