/**
 * The batched gradient path (models/layers.ts batchedAttentionBackward; gradients.ts `batched`):
 * integrated gradients' path points and SmoothGrad's noisy copies go through the model with every
 * sample and head in one 3-D product, and come out as the per-head path's gradients — at the input
 * and at every layer's attention — for softmax, sparsemax and 1.5-entmax, with and without padding;
 * and ViT's predict() of many inputs at once (occlusion's variants) gives each input's own logits.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { loadModel } from '../src/core/models/load.js';
import { batchedGradients, gradientsAt } from '../src/core/gradients.js';
import { ortActive } from '../src/core/ort-products.js';
import type { ClassifierModel, ModelInput } from '../src/core/models/types.js';
import { BERT_DIR, tokensOf } from './helpers/bert.js';
import { GOLDEN_DIR, relativeError } from './helpers/golden.js';
import { ROOT } from './helpers/cli.js';

beforeAll(async () => {
  await ensureBackend('wasm');
});

async function compare(model: ClassifierModel, sample: ModelInput, n: number): Promise<void> {
  // n different points along a ray from the model's gradient input (as integrated gradients' path).
  const x0 = model.gradientInput(sample);
  const x = tf.concat(Array.from({ length: n }, (_, i) => tf.mul(x0, 0.2 + (0.8 * i) / n)), 0);
  const targets = Array.from({ length: n }, (_, i) => i % model.numClasses);
  const perHead = gradientsAt(model, sample, targets, true, { x });
  const batched = gradientsAt(model, sample, targets, true, { x, batched: true });
  expect(relativeError(batched.input.dataSync(), perHead.input.dataSync())).toBeLessThan(1e-5);
  expect(batched.attention).toHaveLength(model.depth);
  batched.attention.forEach((a, l) => expect(relativeError(a.dataSync(), perHead.attention[l]!.dataSync()), `layer ${l}`).toBeLessThan(1e-5));
  expect(relativeError(batched.logits, perHead.logits)).toBeLessThan(1e-6);
  tf.dispose([x0, x, perHead.input, batched.input, ...perHead.attention, ...batched.attention]);
}

describe('batched gradients', () => {
  it('ViT (golden, softmax) and the shipped 1.5-entmax ViT: the per-head gradients', async () => {
    for (const dir of [path.join(GOLDEN_DIR, 'vit-tiny-a'), path.join(ROOT, 'models', 'image-entmax15')]) {
      const model = await loadModel(dir);
      const size = (model as unknown as { config: { imageSize: [number, number] } }).config.imageSize;
      const pixels = tf.randomNormal([1, 3, size[0], size[1]], 0, 1, 'float32', 3) as tf.Tensor4D;
      await compare(model, { kind: 'image', pixels }, 5);
      pixels.dispose();
      model.dispose();
    }
  });

  it('BERT with padding (golden) and the shipped sparsemax BERT: the per-head gradients', async () => {
    const golden = await loadModel(BERT_DIR);
    const padded = tokensOf(2); // the golden input with padding
    await compare(golden, padded, 4);
    golden.dispose();
    const text = await loadModel(path.join(ROOT, 'models', 'text-sparsemax'));
    const T = 12;
    const ids = tf.tensor2d([[2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 3, 0]], [1, T], 'int32');
    const attentionMask = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]], [1, T], 'int32');
    await compare(text, { kind: 'tokens', ids, attentionMask }, 6);
    tf.dispose([ids, attentionMask]);
    text.dispose();
  });

  it('ViT predict() of many inputs at once (occlusion) gives each input\'s own logits', async () => {
    const model = await loadModel(path.join(ROOT, 'models', 'image-sparsemax'));
    const pixels = tf.randomNormal([6, 3, 64, 64], 0, 1, 'float32', 4) as tf.Tensor4D;
    const all = model.predict({ kind: 'image', pixels });
    const rows = all.dataSync();
    for (let i = 0; i < 6; i++) {
      const one = tf.slice(pixels, [i, 0, 0, 0], [1, 3, 64, 64]) as tf.Tensor4D;
      const own = model.predict({ kind: 'image', pixels: one });
      const C = own.shape[1]!;
      expect(relativeError(rows.subarray(i * C, (i + 1) * C), own.dataSync())).toBeLessThan(1e-5);
      tf.dispose([one, own]);
    }
    tf.dispose([pixels, all]);
    model.dispose();
  });

  it('is taken for several samples with ONNX Runtime products and a hand-written backward only', async () => {
    const model = await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'));
    expect(batchedGradients(model, 1)).toBe(false);
    expect(batchedGradients(model, 16)).toBe(ortActive());
    model.dispose();
  });
});
