/**
 * The second thread for large products (src/core/parallel.ts): split products are bit for bit
 * the single-threaded ones, and so is a whole explanation computed with it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { availableParallelism } from 'node:os';
import { matMulSplit, parallelMatmulActive, parallelStats, startParallelMatmul, stopParallelMatmul, wantedThreads } from '../src/core/parallel.js';
import { randomViT } from '../src/core/models/random.js';
import { productEngine, setProductEngine } from '../src/core/ort-products.js';
import { explain } from '../src/core/explain.js';

const same = (a: tf.Tensor, b: tf.Tensor) => {
  const x = a.dataSync();
  const y = b.dataSync();
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
};

// The second thread is what products use when ONNX Runtime does not take them (ort-products.ts).
let ort = false;
beforeAll(async () => {
  await ensureBackend('wasm');
  ort = productEngine().name === 'onnxruntime';
  setProductEngine('wasm');
});
afterAll(async () => {
  await stopParallelMatmul();
  if (ort) setProductEngine('onnxruntime');
});

describe('parallel matmul (on by default with a second core; RELPROP_THREADS=2 starts it at once)', () => {
  it('splits large products by rows or columns, bit for bit; small ones stay on one thread', async () => {
    expect(await startParallelMatmul()).toBe(true);
    expect(parallelMatmulActive()).toBe(true);
    const a = tf.randomNormal([1536, 384], 0, 1, 'float32', 1) as tf.Tensor2D;
    const b = tf.randomNormal([384, 197], 0, 1, 'float32', 2) as tf.Tensor2D;
    const x = tf.randomNormal([197, 384], 0, 1, 'float32', 3) as tf.Tensor2D;
    const w = tf.randomNormal([384, 1536], 0, 1, 'float32', 4) as tf.Tensor2D;
    const before = parallelStats.split;
    const rows = matMulSplit(a, b, 'rows');
    const cols = matMulSplit(x, w, 'columns');
    expect(parallelStats.split).toBe(before + 2);
    expect(same(rows, tf.matMul(a, b))).toBe(true);
    expect(same(cols, tf.matMul(x, w))).toBe(true);
    const small = tf.ones([8, 8]) as tf.Tensor2D;
    matMulSplit(small, small, 'rows').dispose();
    expect(parallelStats.split).toBe(before + 2);
    tf.dispose([a, b, x, w, rows, cols, small]);
  });

  it('a ViT explanation is the same with and without the second thread', async () => {
    const model = randomViT({ imageSize: [96, 96], patchSize: 8, channels: 3, dim: 384, depth: 2, heads: 6, mlpDim: 1536, numClasses: 5, qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls' }, { seed: 5 });
    const pixels = tf.randomNormal([1, 3, 96, 96], 0, 1, 'float32', 6) as tf.Tensor4D;
    const run = async () => Promise.all(['transformer-attribution', 'lrp', 'attnlrp', 'saliency'].map(async (method) => (await explain(model, { kind: 'image', pixels }, { method, target: 2 }))[0]!.map));
    expect(await startParallelMatmul()).toBe(true);
    const before = parallelStats.split;
    const threaded = await run();
    expect(parallelStats.split).toBeGreaterThan(before);
    await stopParallelMatmul();
    expect(parallelMatmulActive()).toBe(false);
    const single = await run();
    threaded.forEach((m, i) => expect(m.every((v, j) => Object.is(v, single[i]![j]))).toBe(true));
    pixels.dispose();
    model.dispose();
  });

  it('starts by itself on the first large product, and never with RELPROP_THREADS=1', async () => {
    const saved = process.env['RELPROP_THREADS'];
    const a = tf.randomNormal([1536, 384], 0, 1, 'float32', 7) as tf.Tensor2D;
    const b = tf.randomNormal([384, 197], 0, 1, 'float32', 8) as tf.Tensor2D;
    const small = tf.ones([64, 64]) as tf.Tensor2D;
    const settle = async (tries: number) => {
      // The worker loads its own tfjs-wasm (~0.2 s); give it up to tries × 0.1 s.
      for (let i = 0; i < tries && !parallelMatmulActive(); i++) {
        await new Promise((ok) => setTimeout(ok, 100));
        matMulSplit(a, b, 'rows').dispose(); // readiness is noticed on a large product
      }
    };
    try {
      process.env['RELPROP_THREADS'] = '1';
      await stopParallelMatmul({ lazy: true });
      matMulSplit(a, b, 'rows').dispose();
      await settle(10);
      expect(parallelMatmulActive()).toBe(false);

      delete process.env['RELPROP_THREADS'];
      expect(wantedThreads()).toBe(Math.min(2, availableParallelism()));
      await stopParallelMatmul({ lazy: true });
      matMulSplit(small, small, 'rows').dispose();
      await new Promise((ok) => setTimeout(ok, 500));
      matMulSplit(small, small, 'rows').dispose();
      expect(parallelMatmulActive()).toBe(false); // small products never start it
      if (availableParallelism() >= 2) {
        await settle(100);
        expect(parallelMatmulActive()).toBe(true);
        const before = parallelStats.split + parallelStats.single;
        const y = matMulSplit(a, b, 'rows');
        expect(parallelStats.split + parallelStats.single).toBe(before + 1);
        expect(same(y, tf.matMul(a, b))).toBe(true);
        y.dispose();
      }
      await stopParallelMatmul();
      matMulSplit(a, b, 'rows').dispose();
      await new Promise((ok) => setTimeout(ok, 500));
      matMulSplit(a, b, 'rows').dispose();
      expect(parallelMatmulActive()).toBe(false); // an explicit stop is not undone by a large product
    } finally {
      if (saved === undefined) delete process.env['RELPROP_THREADS'];
      else process.env['RELPROP_THREADS'] = saved;
      tf.dispose([a, b, small]);
    }
  });
});
