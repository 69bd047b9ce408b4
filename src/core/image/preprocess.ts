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

/**
 * Pillow's resampling filters, each at the index of its `PIL.Image.Resampling` value (the integer HF
 * writes as `resample` in preprocessor_config.json), under timm's names for them.
 */
export const RESAMPLE_FILTERS = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'] as const;
export type Resample = (typeof RESAMPLE_FILTERS)[number];

/** How the image is resized before any crop. */
export type ResizeRule =
  /** No resize (HF `do_resize: false`): the image, after any crop, must already have the model's size. */
  | { readonly kind: 'none' }
  /** Straight to [height, width], aspect ratio not kept (HF `size: {height, width}`, timm `crop_mode: squash`). */
  | { readonly kind: 'exact'; readonly height: number; readonly width: number }
  /**
   * The short side to `edge`, the long side to `int(edge * long / short)` (HF `shortest_edge`,
   * torchvision's `Resize(int)` used by timm's default eval transform).
   */
  | { readonly kind: 'shortest-edge'; readonly edge: number }
  /**
   * timm's `ResizeKeepRatio`: scale both sides by one ratio, `max(rh, rw) * longest + min(rh, rw) * (1 - longest)`
   * of the ratios to [height, width], each side rounded half to even (Python's `round`).
   */
  | { readonly kind: 'keep-ratio'; readonly height: number; readonly width: number; readonly longest: number };

/** A center crop (padding where the image is smaller) to [height, width]. */
export interface CropRule {
  readonly height: number;
  readonly width: number;
  /**
   * Where the crop starts. 'floor': `floor((in - out) / 2)`, as HF's `center_crop` (where the image is
   * smaller it sits `ceil((out - in) / 2)` from the top/left). 'round-half-even': torchvision's
   * `CenterCrop` (timm), `round((in - out) / 2)` with Python's rounding, and where the image is smaller it
   * is padded `floor((out - in) / 2)` before and the rest after.
   */
  readonly offset: 'floor' | 'round-half-even';
  /** The padding colour, black unless given (timm's `crop_mode: border` pads with the mean colour). */
  readonly fill?: readonly [number, number, number];
}

export interface Preprocessing {
  /** Model input [height, width]: what resize and crop must produce. */
  size: [number, number];
  /** Default: straight to `size` (`{ kind: 'exact', height: size[0], width: size[1] }`). */
  resize?: ResizeRule;
  /** Default: no crop. */
  crop?: CropRule;
  /**
   * Subtracted after rescaling. A folder with `do_normalize: false` reads as mean 0 and std 1, which
   * leaves every float32 value unchanged (x - 0 and x / 1 are exact).
   */
  mean: [number, number, number];
  std: [number, number, number];
  /** Usually 1/255; 1 for `do_rescale: false` (exact, as v * 1 = v). */
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
  const r = p.resize;
  if (r !== undefined) {
    if (r.kind === 'exact' || r.kind === 'keep-ratio') {
      assertPositiveInt(r.height, 'resize height');
      assertPositiveInt(r.width, 'resize width');
    }
    if (r.kind === 'shortest-edge') assertPositiveInt(r.edge, 'resize shortest edge');
    if (r.kind === 'keep-ratio' && !(r.longest >= 0 && r.longest <= 1)) {
      throw new UsageError(`keep-ratio resize: longest must be in [0, 1], got ${r.longest}`);
    }
    if (!['none', 'exact', 'shortest-edge', 'keep-ratio'].includes(r.kind)) {
      throw new UsageError(`unknown resize rule "${String((r as { kind: unknown }).kind)}"`);
    }
  }
  if (p.crop !== undefined) {
    assertPositiveInt(p.crop.height, 'crop height');
    assertPositiveInt(p.crop.width, 'crop width');
    if (p.crop.offset !== 'floor' && p.crop.offset !== 'round-half-even') {
      throw new UsageError(`unknown crop offset rule "${String(p.crop.offset)}"`);
    }
    const size = p.crop.height === p.size[0] && p.crop.width === p.size[1];
    if (!size) {
      throw new UsageError(`preprocessing crops to ${p.crop.width}×${p.crop.height} but the model takes ${p.size[1]}×${p.size[0]}`);
    }
  }
  if (!(RESAMPLE_FILTERS as readonly string[]).includes(p.resample)) {
    throw new UsageError(`unknown resample "${String(p.resample)}" (use ${RESAMPLE_FILTERS.join(', ')})`);
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
const BOX: Filter = {
  support: 0.5,
  weight(x) {
    return x > -0.5 && x <= 0.5 ? 1 : 0;
  },
};

const BILINEAR: Filter = {
  support: 1,
  weight(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  },
};

// Pillow writes the Hamming window's constants as C floats (0.54f, 0.46f), promoted to double in the
// arithmetic; their float32 values are what make its weights.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);
const HAMMING: Filter = {
  support: 1,
  weight(x) {
    if (x < 0) x = -x;
    if (x === 0) return 1;
    if (x >= 1) return 0;
    x = x * Math.PI;
    return (Math.sin(x) / x) * (HAMMING_A + HAMMING_B * Math.cos(x));
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

function sinc(x: number): number {
  if (x === 0) return 1;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

/** Sinc windowed by a sinc three times wider (Pillow's LANCZOS, support 3). */
const LANCZOS: Filter = {
  support: 3,
  weight(x) {
    return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  },
};

const FILTERS: Record<Exclude<Resample, 'nearest'>, Filter> = {
  lanczos: LANCZOS,
  bilinear: BILINEAR,
  bicubic: BICUBIC,
  box: BOX,
  hamming: HAMMING,
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
    // C's (int) cast truncates toward zero.
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
 * Pillow's NEAREST goes through its affine transform (ImagingScaleAffine) rather than the
 * convolution: the source coordinate starts at `in / out * 0.5`, is accumulated step by step, and
 * truncated; a coordinate outside the image leaves the pixel black. Reproduced as is (-1 marks "outside").
 */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = step * 0.5;
  for (let x = 0; x < outSize; x++) {
    const i = pos < 0 ? -1 : Math.trunc(pos);
    idx[x] = i >= inSize ? -1 : i;
    pos += step;
  }
  return idx;
}

function resizeNearest(img: RgbImage, outW: number, outH: number): RgbImage {
  const xs = nearestIndices(img.width, outW);
  const ys = nearestIndices(img.height, outH);
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    if (ys[y] < 0) continue;
    const row = ys[y] * img.width * 3;
    for (let x = 0; x < outW; x++) {
      if (xs[x] < 0) continue;
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
 * Resize 8-bit RGB as Pillow's `Image.resize((width, height), resample)` does (reducing_gap=None,
 * the default of HF's `resize` and of torchvision's PIL path): bit-identical output.
 */
export function resizeImage(img: RgbImage, width: number, height: number, resample: Resample): RgbImage {
  assertRgbImage(img);
  assertPositiveInt(width, 'resize width');
  assertPositiveInt(height, 'resize height');
  if (width === img.width && height === img.height) {
    return { width, height, data: img.data.slice() };
  }
  if (resample === 'nearest') return resizeNearest(img, width, height);
  const filter = FILTERS[resample];
  if (filter === undefined) {
    throw new UsageError(`unknown resample "${String(resample)}" (use ${RESAMPLE_FILTERS.join(', ')})`);
  }
  let cur = img;
  // Pillow does the horizontal pass first and rounds to uint8 between passes; the order matters
  // for bit-exactness. A side that keeps its length is not resampled at all.
  if (width !== cur.width) cur = resampleHorizontal(cur, width, filter);
  if (height !== cur.height) cur = resampleVertical(cur, height, filter);
  return cur;
}

/** Python's `round()` on a float: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function cropOffset(inSize: number, outSize: number, rule: CropRule['offset']): number {
  if (rule === 'floor') return Math.floor((inSize - outSize) / 2);
  if (inSize < outSize) return -Math.floor((outSize - inSize) / 2);
  return roundHalfEven((inSize - outSize) / 2);
}

/**
 * Center crop to [height, width], padding where the image is smaller. `offset` chooses HF's rule
 * (the default) or torchvision's; see CropRule.
 */
export function centerCrop(
  img: RgbImage,
  height: number,
  width: number,
  offset: CropRule['offset'] = 'floor',
  fill: readonly [number, number, number] = [0, 0, 0],
): RgbImage {
  assertRgbImage(img);
  assertPositiveInt(width, 'crop width');
  assertPositiveInt(height, 'crop height');
  const top = cropOffset(img.height, height, offset);
  const left = cropOffset(img.width, width, offset);
  const out = new Uint8Array(width * height * 3);
  if (fill[0] !== 0 || fill[1] !== 0 || fill[2] !== 0) {
    for (let i = 0; i < width * height; i++) out.set(fill, i * 3);
  }
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

/** Size after timm's ResizeKeepRatio (no random scale or aspect): both sides divided by one ratio, rounded half to even. */
export function keepRatioSize(width: number, height: number, target: { height: number; width: number; longest: number }): { width: number; height: number } {
  const rh = height / target.height;
  const rw = width / target.width;
  const ratio = Math.max(rh, rw) * target.longest + Math.min(rh, rw) * (1 - target.longest);
  return { width: roundHalfEven(width / ratio), height: roundHalfEven(height / ratio) };
}

/** The size `p` resizes an image of this size to, before any crop. */
export function resizedSize(width: number, height: number, p: Preprocessing): { width: number; height: number } {
  const r = p.resize ?? { kind: 'exact', height: p.size[0], width: p.size[1] };
  switch (r.kind) {
    case 'none':
      return { width, height };
    case 'exact':
      return { width: r.width, height: r.height };
    case 'shortest-edge':
      return shortestEdgeSize(width, height, r.edge);
    case 'keep-ratio':
      return keepRatioSize(width, height, r);
  }
}

/** Whether the model sees the whole image (resized, perhaps squashed) rather than a crop of it. */
export function showsWholeImage(p: Preprocessing): boolean {
  return p.crop === undefined;
}

/**
 * The geometric part of preprocessing (resize, then center-crop if configured): what the model sees.
 * `label` names the image in the error for an image that does not come out at the model's size.
 */
export function resizeForModel(img: RgbImage, p: Preprocessing, label = 'image'): RgbImage {
  assertRgbImage(img, label);
  assertPreprocessing(p);
  const [h, w] = p.size;
  const s = resizedSize(img.width, img.height, p);
  let out = resizeImage(img, s.width, s.height, p.resample);
  if (p.crop !== undefined) out = centerCrop(out, p.crop.height, p.crop.width, p.crop.offset, p.crop.fill);
  if (out.width !== w || out.height !== h) {
    const how = p.resize?.kind === 'none' ? ' (the model folder turns resizing off)' : '';
    throw new InputError(`image is ${img.width}×${img.height} and comes out ${out.width}×${out.height}${how}, but the model takes ${w}×${h}`, label);
  }
  return out;
}

/**
 * Normalise an image already at model size into a CHW Float32Array. The arithmetic follows HF's
 * float32 steps (rescale in float64 then cast, then subtract and divide in float32) so values agree
 * bit for bit with `ViTImageProcessor(...)["pixel_values"]` on the same uint8 pixels. torchvision's
 * `ToTensor` (timm) divides by 255 in float32 instead, which gives the same float32 for every uint8.
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
export function preprocessImage(img: RgbImage, p: Preprocessing, label = 'image'): Float32Array {
  return normaliseImage(resizeForModel(img, p, label), p);
}
