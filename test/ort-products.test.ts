/**
 * Products on ONNX Runtime (src/core/ort-products.ts), when onnxruntime-node is installed (it is an
 * optional dependency; `npm install` puts it in on Linux, macOS and Windows): the replaced BatchMatMul
 * kernel gives float32-accurate products of every shape the models use, a sample's products are the
 * same bits alone or in a batch, and explanations agree with tfjs-wasm's own kernel.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ortInstalled } from './helpers/models.js';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { GUARD, ortStats, productEngine, setProductEngine, setProductGuard, stopOutsideOrt } from '../src/core/ort-products.js';
import { CancelledError } from '../src/core/errors.js';
import { randomViT } from '../src/core/models/random.js';
import { explain } from '../src/core/explain.js';

const installed = ortInstalled;

beforeAll(async () => {
  await ensureBackend('wasm');
});
afterAll(() => {
  if (installed) setProductEngine('onnxruntime');
});

/** a·b in float64 from the float32 operands. */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) {
    const v = a[i * k + t]!;
    for (let j = 0; j < n; j++) y[i * n + j]! += v * b[t * n + j]!;
  }
  return y;
}

describe.skipIf(!installed)('ONNX Runtime products', () => {
  it('is the product engine under wasm when installed, and can be switched off and on', () => {
    expect(productEngine().name).toBe(process.env['RELPROP_ORT'] === '0' ? 'wasm' : 'onnxruntime');
    expect(setProductEngine('wasm')).toBe(false);
    expect(productEngine().name).toBe('wasm');
    expect(setProductEngine('onnxruntime')).toBe(true);
    expect(productEngine()).toMatchObject({ name: 'onnxruntime', version: '1.30.0' });
  });

  it('computes 2-D and batched 3-D products to float32 accuracy, single rows included; small ones stay on wasm', () => {
    setProductEngine('onnxruntime');
    // k·n ≥ 8192 goes to ONNX Runtime, smaller stays on tfjs-wasm (whatever the row count).
    for (const [batch, m, k, n] of [[1, 197, 768, 300], [1, 1, 768, 64], [2, 65, 128, 65], [3, 1, 128, 96], [1, 5, 3, 7], [4, 65, 16, 65]] as const) {
      const a = Float32Array.from({ length: batch * m * k }, (_, i) => Math.fround(Math.sin(i * 0.7)));
      const b = Float32Array.from({ length: batch * k * n }, (_, i) => Math.fround(Math.cos(i * 0.3)));
      const before = ortStats.products;
      const y = (batch === 1 && m !== 1 ? tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])) : tf.matMul(tf.tensor3d(a, [batch, m, k]), tf.tensor3d(b, [batch, k, n]))).dataSync();
      expect(ortStats.products).toBe(before + (k * n >= 8192 ? 1 : 0));
      let worst = 0;
      for (let s = 0; s < batch; s++) {
        const ref = reference(a.subarray(s * m * k, (s + 1) * m * k), b.subarray(s * k * n, (s + 1) * k * n), m, k, n);
        // |error| ≤ k · 2⁻²⁴ · Σ|a||b| bounds float32 accumulation; Σ|a||b| ≤ k here.
        ref.forEach((v, i) => (worst = Math.max(worst, Math.abs(y[s * m * n + i]! - v))));
      }
      expect(worst).toBeLessThan(k * k * 2 ** -24);
    }
  });

  it('takes transposed operands (batched attention and taped gradients use them)', () => {
    setProductEngine('onnxruntime');
    const [batch, m, k, n] = [8, 65, 16, 65];
    const a = tf.randomNormal([batch, m, k], 0, 1, 'float32', 4) as tf.Tensor3D;
    const b = tf.randomNormal([batch, k, n], 0, 1, 'float32', 5) as tf.Tensor3D;
    const want = tf.matMul(a, b).dataSync();
    const aT = tf.transpose(a, [0, 2, 1]);
    const bT = tf.transpose(b, [0, 2, 1]);
    for (const [x, y, tA, tB] of [[aT, b, true, false], [a, bT, false, true], [aT, bT, true, true]] as const) {
      const before = ortStats.products;
      const got = tf.matMul(x, y, tA, tB).dataSync();
      expect(ortStats.products).toBe(before + 1);
      const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
      expect(worst).toBeLessThan(1e-5);
    }
    // A 2-D product with a transposed right operand, and a one-row transposed left operand.
    const w = tf.randomNormal([300, 768], 0, 1, 'float32', 6) as tf.Tensor2D;
    const x = tf.randomNormal([7, 768], 0, 1, 'float32', 7) as tf.Tensor2D;
    const ref = tf.matMul(x, tf.transpose(w)).dataSync();
    const before = ortStats.products;
    expect(Math.max(...Array.from(tf.matMul(x, w, false, true).dataSync(), (v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-3);
    const row = tf.slice(x, [2, 0], [1, 768]);
    const fromColumn = tf.matMul(tf.reshape(row, [768, 1]), w, true, true).dataSync();
    expect(Array.from(fromColumn)).toEqual(Array.from(tf.matMul(row, w, false, true).dataSync()));
    expect(ortStats.products).toBe(before + 3);
    tf.dispose([a, b, aT, bT, w, x, row]);
  });

  it('stops a request between two products through the guard, and never inside ONNX Runtime', async () => {
    setProductEngine('onnxruntime');
    const guard = new Int32Array(new SharedArrayBuffer(GUARD.length * 4));
    const a = tf.randomNormal([64, 256], 0, 1, 'float32', 8) as tf.Tensor2D;
    const b = tf.randomNormal([256, 64], 0, 1, 'float32', 9) as tf.Tensor2D;
    setProductGuard(guard);
    try {
      Atomics.store(guard, GUARD.current, 5);
      Atomics.store(guard, GUARD.stop, 7); // another request's stop
      tf.matMul(a, b).dispose();
      Atomics.store(guard, GUARD.stop, 5);
      const tensors = tf.memory().numTensors;
      expect(() => tf.matMul(a, b)).toThrow(CancelledError);
      expect(tf.memory().numTensors).toBe(tensors); // the refused product leaves nothing behind
      expect(Atomics.load(guard, GUARD.inside)).toBe(0);
      Atomics.store(guard, GUARD.stop, 0);
      tf.matMul(a, b).dispose();
      await stopOutsideOrt(guard); // sets stop = −1: everything stops
      expect(Atomics.load(guard, GUARD.stop)).toBe(-1);
      expect(() => tf.matMul(a, b)).toThrow(CancelledError);
    } finally {
      setProductGuard(null);
      tf.dispose([a, b]);
    }
  });

  it('gives a row the same bits alone and among other rows', () => {
    const a = tf.randomNormal([9, 384], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([384, 96], 0, 1, 'float32', 2) as tf.Tensor2D;
    const all = tf.matMul(a, w).dataSync();
    for (const r of [0, 4, 8]) {
      const alone = tf.matMul(tf.slice(a, [r, 0], [1, 384]), w).dataSync();
      expect(Array.from(alone)).toEqual(Array.from(all.subarray(r * 96, (r + 1) * 96)));
    }
  });

  it('explanations agree with tfjs-wasm’s own kernel, and conserve', async () => {
    const model = randomViT({ imageSize: [64, 64], patchSize: 8, channels: 3, dim: 96, depth: 3, heads: 4, mlpDim: 192, numClasses: 5, qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls' }, { seed: 9 });
    const pixels = tf.randomNormal([1, 3, 64, 64], 0, 1, 'float32', 3) as tf.Tensor4D;
    const methods = ['transformer-attribution', 'lrp', 'attnlrp', 'saliency', 'rollout'];
    const run = async () => Promise.all(methods.map(async (method) => (await explain(model, { kind: 'image', pixels }, { method, target: 1 }))[0]!));
    setProductEngine('onnxruntime');
    const before = ortStats.products;
    const onOrt = await run();
    expect(ortStats.products).toBeGreaterThan(before + 100);
    setProductEngine('wasm');
    const onWasm = await run();
    setProductEngine('onnxruntime');
    const drift = onOrt.map((e, i) => {
      const ref = onWasm[i]!.map;
      const scale = Math.max(...Array.from(ref, Math.abs));
      return Math.max(...Array.from(e.map, (v, j) => Math.abs(v - ref[j]!))) / scale;
    });
    // The golden tests' tolerances: relevance-derived maps 5e-3 (safe_divide and the α1β0 rule amplify
    // rounding), gradient and attention maps 1e-5.
    [0, 2, 3, 4].forEach((i) => expect(drift[i]!, methods[i]).toBeLessThan(i < 3 ? 5e-3 : 1e-5));
    // Full LRP to the pixels: through the blocks the two agree to float32 (every boundary's total),
    // but the α1β0 rule at the patch embedding divides by x⁺W⁺ + x⁻W⁻, near zero for some N(0, 1)
    // patches, so the pixel map itself moves by ~1 % between any two float32 engines.
    const top = (e: Awaited<ReturnType<typeof run>>[number]) => e.ledger!.filter((l) => l.depth === 0 && l.layer !== 'patch_embed');
    top(onOrt[1]!).forEach((l, i) => expect(Math.abs(l.relevanceOut - top(onWasm[1]!)[i]!.relevanceOut), l.layer).toBeLessThan(1e-5));
    expect(drift[1]!).toBeLessThan(5e-2);
    const lrp = onOrt[1]!;
    const total = lrp.map.reduce((s, v) => s + v, 0);
    const atPixels = lrp.ledger!.find((l) => l.layer === 'patch_embed')!.relevanceOut;
    expect(Math.abs(total - atPixels) / Math.abs(atPixels)).toBeLessThan(1e-4);
    pixels.dispose();
    model.dispose();
  });
});
