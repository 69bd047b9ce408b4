/**
 * Fused elementwise kernels for the relevance rules, the ledger and the sparse maps' backward. Each replaces a chain of tfjs
 * ops (the authors' safe_divide alone is nine, three of them slow non-SIMD comparisons and casts) by
 * one kernel that runs in JS over the wasm heap, in place: on the shipped small models (4 layers ×
 * 65 tokens) a relevance pass was ~1,900 ops at ~12 µs of per-op overhead each. The results are bit for bit the composite ops' (float32 rounding at every step, as the
 * wasm kernels round: Math.fround after each operation; a float32 quotient or sum computed in
 * double and rounded once is the correctly rounded float32 result), except the ledger's sums, which
 * accumulate in double (more exact than a float32 sum, and only reported), and the sparse maps'
 * Jacobian products, whose row sums do too (they agree with the composite to float32 rounding).
 *
 * Installed with the wasm kernels (wasm-kernels.ts); on every other backend, and for inputs these
 * kernels do not take (broadcasting, other dtypes), the same functions run the composite ops.
 */
import { tf, type Tensor } from './tf.js';

interface HeapBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const SAFE_DIVIDE = 'RelpropSafeDivide';
const SIGN_SPLIT = 'RelpropSignSplitMul';
const SAMPLE_SUMS = 'RelpropSampleSums';
const SPARSE_JVP = 'RelpropSparseJvp';
const EPS = Math.fround(1e-9);

let installed = false;

/** Float32 views of the heap at each tensor's data, taken after every allocation the kernel makes. */
function views(backend: HeapBackend, ...ts: tf.TensorInfo[]): { heap: Float32Array; at: number[] } {
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  return { heap, at: ts.map((t) => backend.dataIdMap.get(t.dataId).memoryOffset >>> 2) };
}

export function installFusedKernels(): void {
  if (installed) return;
  tf.registerKernel({
    kernelName: SAFE_DIVIDE,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const hb = backend as unknown as HeapBackend;
      const out = hb.makeOutput([...a.shape], 'float32');
      const { heap, at } = views(hb, a, b, out);
      const [pa, pb, po] = at as [number, number, number];
      const n = a.shape.reduce((s, d) => s * d, 1);
      for (let i = 0; i < n; i++) {
        const bv = heap[pb + i]!;
        // den = b + 1e-9, another 1e-9 where that is exactly 0; 0 wherever b is exactly 0.
        let den = Math.fround(bv + EPS);
        if (den === 0) den = EPS;
        const q = Math.fround(heap[pa + i]! / den);
        heap[po + i] = bv !== 0 ? q : q * 0;
      }
      return out;
    },
  });
  tf.registerKernel({
    kernelName: SIGN_SPLIT,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { x, pos, neg } = inputs as { x: tf.TensorInfo; pos: tf.TensorInfo; neg: tf.TensorInfo };
      const hb = backend as unknown as HeapBackend;
      const out = hb.makeOutput([...x.shape], 'float32');
      const { heap, at } = views(hb, x, pos, neg, out);
      const [px, pp, pn, po] = at as [number, number, number, number];
      const n = x.shape.reduce((s, d) => s * d, 1);
      for (let i = 0; i < n; i++) {
        const v = heap[px + i]!;
        heap[po + i] = v > 0 ? v * heap[pp + i]! : v * heap[pn + i]!;
      }
      return out;
    },
  });
  tf.registerKernel({
    kernelName: SAMPLE_SUMS,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const batch = (attrs as unknown as { batch: number }).batch;
      const hb = backend as unknown as HeapBackend;
      const out = hb.makeOutput([2, batch], 'float32');
      const { heap, at } = views(hb, x, out);
      const [px, po] = at as [number, number];
      const per = x.shape.reduce((s, d) => s * d, 1) / batch;
      for (let b = 0; b < batch; b++) {
        let total = 0;
        let magnitude = 0;
        for (let i = px + b * per, end = i + per; i < end; i++) {
          const v = heap[i]!;
          total += v;
          magnitude += Math.abs(v);
        }
        heap[po + b] = total;
        heap[po + batch + b] = magnitude;
      }
      return out;
    },
  });
  tf.registerKernel({
    kernelName: SPARSE_JVP,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { p, v } = inputs as { p: tf.TensorInfo; v: tf.TensorInfo };
      const entmax = (attrs as unknown as { entmax: boolean }).entmax;
      const hb = backend as unknown as HeapBackend;
      const out = hb.makeOutput([...p.shape], 'float32');
      const { heap, at } = views(hb, p, v, out);
      const [pp, pv, po] = at as [number, number, number];
      const n = p.shape[p.shape.length - 1]!;
      const rows = n === 0 ? 0 : p.shape.reduce((s, d) => s * d, 1) / n;
      for (let r = 0; r < rows; r++) {
        const o = r * n;
        // The composite's arithmetic, products with 0 included, so NaN and ±∞ spread the same way.
        // sparsemax: weight 1[p > 0], product w ⊙ (v − Σwv / max(Σw, 1)); 1.5-entmax: weight √p,
        // product w ⊙ v − w ⊙ (Σwv / max(Σw, 1e-30)).
        let sw = 0;
        let swv = 0;
        for (let j = 0; j < n; j++) {
          const pj = heap[pp + o + j]!;
          const w = entmax ? Math.sqrt(pj) : pj > 0 ? 1 : 0;
          sw += w;
          swv += w * heap[pv + o + j]!;
        }
        const m = swv / Math.max(sw, entmax ? 1e-30 : 1);
        for (let j = 0; j < n; j++) {
          const pj = heap[pp + o + j]!;
          const w = entmax ? Math.sqrt(pj) : pj > 0 ? 1 : 0;
          heap[po + o + j] = w * (heap[pv + o + j]! - m);
        }
      }
      return out;
    },
  });
  installed = true;
}

/**
 * Whether the JS kernel applies. `maxSize`: above it the composite ops win — wasm's elementwise
 * kernels are SIMD, ~10× faster per element than a JS loop, so a chain of a few fast ops beats one
 * JS pass once per-op overhead (~15 µs) stops mattering. Measured on ViT-B/16-sized tensors: the
 * nine-op safe_divide (its Equal/NotEqual/Cast are slow) loses to JS at every size, the five-op sign
 * split from ~2k elements up, the sums (reshape, two Sums, Abs, Stack) nowhere.
 */
function fast(maxSize: number, ...ts: Tensor[]): boolean {
  if (!installed || tf.getBackend() !== 'wasm' || ts[0]!.size > maxSize) return false;
  const shape = ts[0]!.shape;
  return ts.every((t) => t.dtype === 'float32' && t.rank === shape.length && t.shape.every((d, i) => d === shape[i]));
}

/**
 * The authors' safe_divide: a / (b + 1e-9), another 1e-9 if that is exactly 0, and 0 wherever b is
 * exactly 0. The shift is constant, not sign-aware: results match theirs only if we keep it so.
 */
export function safeDivide(a: Tensor, b: Tensor): Tensor {
  if (fast(Infinity, a, b)) return tf.engine().runKernel(SAFE_DIVIDE, { a, b }, {}) as Tensor;
  return tf.tidy(() => {
    let den = tf.add(b, 1e-9);
    den = tf.add(den, tf.mul(tf.cast(tf.equal(den, 0), 'float32'), 1e-9));
    return tf.mul(tf.div(a, den), tf.cast(tf.notEqual(b, 0), 'float32'));
  });
}

/** x⁺ ⊙ pos + x⁻ ⊙ neg (x⁺ = max(x, 0), x⁻ = x − x⁺): how the α1β0 rules hand relevance to the input. */
export function signSplitMul(x: Tensor, pos: Tensor, neg: Tensor): Tensor {
  if (fast(2048, x, pos, neg)) return tf.engine().runKernel(SIGN_SPLIT, { x, pos, neg }, {}) as Tensor;
  return tf.tidy(() => {
    const xp = tf.relu(x);
    return tf.add(tf.mul(xp, pos), tf.mul(tf.sub(x, xp), neg));
  });
}

/** [2, B]: per sample (the leading `batch` blocks of x), the total Σx and the magnitude Σ|x|. */
export function sampleSums(x: Tensor, batch: number): Tensor {
  if (fast(Infinity, x)) return tf.engine().runKernel(SAMPLE_SUMS, { x }, { batch } as unknown as tf.NamedAttrMap) as Tensor;
  return tf.tidy(() => {
    const flat = tf.reshape(x, [batch, -1]);
    return tf.stack([tf.sum(flat, 1), tf.sum(tf.abs(flat), 1)]);
  });
}

/**
 * The Jacobian product of sparsemax (entmax = false) or 1.5-entmax at its output p, row by row over
 * the last axis: w ⊙ v − w ⊙ (Σ w⊙v / Σ w), with w = 1[p > 0] or √p (normalisers.ts says why). The
 * composites' comparison, cast and square root are slow on wasm; sums here run in double.
 */
export function sparseJvp(p: Tensor, v: Tensor, entmax: boolean): Tensor {
  if (fast(Infinity, p, v)) return tf.engine().runKernel(SPARSE_JVP, { p, v }, { entmax } as unknown as tf.NamedAttrMap) as Tensor;
  return tf.tidy(() => {
    if (entmax) {
      const g = tf.sqrt(p);
      // Σg ≥ Σg² = 1 for a real entmax output; the floor only protects all-zero padding rows.
      const gSum = tf.maximum(tf.sum(g, -1, true), 1e-30);
      const gv = tf.mul(g, v);
      return tf.sub(gv, tf.mul(g, tf.div(tf.sum(gv, -1, true), gSum)));
    }
    const s = tf.cast(tf.greater(p, 0), 'float32');
    // max(·, 1): a row with no support (padding, all-zero p) gets a zero product rather than 0/0.
    const size = tf.maximum(tf.sum(s, -1, true), 1);
    return tf.mul(s, tf.sub(v, tf.div(tf.sum(tf.mul(s, v), -1, true), size)));
  });
}
