/**
 * The whole-model ONNX graphs (src/core/onnx): for every family variant and attention normaliser,
 * `predict`'s graph gives the tfjs forward's logits to float32 rounding, alone and in a batch, and
 * the gradient graph (forward and hand-written backward in one session, for many samples' input
 * gradients) gives model.backward's input gradients, contrastive targets included. With ONNX
 * Runtime switched off nothing changes but the engine.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { ortStats, setProductEngine } from '../src/core/ort-products.js';
import { randomViT } from '../src/core/models/random.js';
import { randomBert } from '../src/bench/models.js';
import type { ViTConfig } from '../src/core/models/vit.js';
import type { BertConfig } from '../src/core/models/bert.js';
import type { ClassifierModel, ModelInput } from '../src/core/models/types.js';
import { disposeInput } from '../src/core/models/types.js';
import { relativeError } from './helpers/golden.js';
import { ortInstalled } from './helpers/models.js';
import { gradientsAt } from '../src/core/gradients.js';

const installed = ortInstalled;

const VIT: ViTConfig = {
  imageSize: [32, 48], patchSize: 8, channels: 3, dim: 48, depth: 3, heads: 3, mlpDim: 96, numClasses: 7,
  qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-5, prefixTokens: 1, pooling: 'cls',
};
const BERT: BertConfig = {
  flavour: 'bert', vocabSize: 40, dim: 32, depth: 3, heads: 4, mlpDim: 64, maxPositions: 24, typeVocabSize: 2,
  lnEps: 1e-12, numClasses: 3, padTokenId: 1, poolerActivation: 'tanh',
};

function images(): ModelInput {
  return { kind: 'image', pixels: tf.randomNormal([3, 3, 32, 48], 0, 1.5, 'float32', 5) as tf.Tensor4D };
}
/** Three sequences of 10, the last two padded (mask 0, the pad id 1), with segment ids on the first. */
function tokens(): ModelInput {
  const ids = [[0, 7, 12, 30, 5, 9, 22, 17, 3, 2], [0, 4, 33, 8, 19, 6, 2, 1, 1, 1], [0, 11, 2, 1, 1, 1, 1, 1, 1, 1]];
  const mask = ids.map((row) => row.map((id) => (id === 1 ? 0 : 1)));
  const types = ids.map((row, b) => row.map((_, i) => (b === 0 && i >= 5 ? 1 : 0)));
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    typeIds: tf.tensor2d(types, undefined, 'int32'),
  };
}

const CASES: ReadonlyArray<{ name: string; make: () => ClassifierModel; input: () => ModelInput }> = [
  { name: 'ViT', make: () => randomViT(VIT, { seed: 1, weightStd: 0.2 }), input: images },
  { name: 'DeiT (two heads averaged)', make: () => randomViT({ ...VIT, prefixTokens: 2, pooling: 'cls+dist' }, { seed: 2, weightStd: 0.2 }), input: images },
  { name: 'ViT, sparsemax', make: () => randomViT({ ...VIT, attention: 'sparsemax' }, { seed: 3, weightStd: 0.3 }), input: images },
  { name: 'ViT, 1.5-entmax', make: () => randomViT({ ...VIT, attention: 'entmax15' }, { seed: 4, weightStd: 0.3 }), input: images },
  { name: 'BERT (segments, padding)', make: () => randomBert(BERT, 5, 0.2), input: tokens },
  { name: 'DistilBERT (no segments, ReLU pooler)', make: () => randomBert({ ...BERT, flavour: 'distilbert', typeVocabSize: 0, poolerActivation: 'relu' }, 6, 0.2), input: tokens },
  { name: 'RoBERTa (positions from padding_idx + 1)', make: () => randomBert({ ...BERT, flavour: 'roberta', typeVocabSize: 1 }, 7, 0.2), input: () => {
    const t = tokens() as Extract<ModelInput, { kind: 'tokens' }>;
    t.typeIds!.dispose();
    return { kind: 'tokens', ids: t.ids, attentionMask: t.attentionMask };
  } },
  { name: 'BERT, sparsemax', make: () => randomBert({ ...BERT, attention: 'sparsemax' }, 8, 0.3), input: tokens },
  { name: 'BERT, 1.5-entmax', make: () => randomBert({ ...BERT, attention: 'entmax15' }, 9, 0.3), input: tokens },
];

/** The tfjs lean pass: predict takes it whenever an attention edit is given, an identity one included. */
const tfjsLogits = (model: ClassifierModel, input: ModelInput) => model.predict(input, { attentionEdit: { layer: 0, edit: (a) => a } });

function sample(input: ModelInput, b: number): ModelInput {
  if (input.kind === 'image') return { kind: 'image', pixels: tf.slice(input.pixels, [b, 0, 0, 0], [1, -1, -1, -1]) };
  const row = (t: tf.Tensor2D) => tf.slice(t, [b, 0], [1, -1]);
  return { kind: 'tokens', ids: row(input.ids), attentionMask: row(input.attentionMask), ...(input.typeIds ? { typeIds: row(input.typeIds) } : {}) };
}

beforeAll(async () => {
  expect(await ensureBackend('wasm')).toBe('wasm');
});
afterAll(() => {
  if (installed) setProductEngine('onnxruntime');
});

describe.skipIf(!installed)('predict as one ONNX Runtime graph', () => {
  for (const c of CASES) {
    it(`${c.name}: the graph's logits are the tfjs forward's, alone and in a batch`, () => {
      setProductEngine('onnxruntime');
      const model = c.make();
      const input = c.input();
      const before = ortStats.graphs;
      const graph = model.predict(input);
      expect(ortStats.graphs).toBe(before + 1);
      const tfjs = tfjsLogits(model, input);
      expect(graph.shape).toEqual(tfjs.shape);
      const spread = Math.max(...Array.from(tfjs.dataSync(), Math.abs));
      expect(spread).toBeGreaterThan(0.1);
      // 1e-5 of the largest logit; 3e-5 with the sparse maps, whose outputs move with the support
      // (the random models here have weights of std 0.3 and amplify every rounding difference).
      const tolerance = /sparsemax|entmax/.test(c.name) ? 3e-5 : 1e-5;
      expect(relativeError(graph.dataSync(), tfjs.dataSync())).toBeLessThan(tolerance);
      // A sample's logits hardly depend on the batch it came in (occlusion batches its variants): not
      // to the bit, as ONNX Runtime's row reductions take their vector blocks by memory alignment.
      const B = graph.shape[0];
      const C = graph.shape[1];
      for (let b = 0; b < B; b++) {
        const one = sample(input, b);
        const alone = model.predict(one);
        expect(relativeError(alone.dataSync(), graph.dataSync().subarray(b * C, (b + 1) * C))).toBeLessThan(1e-6);
        tf.dispose(alone);
        disposeInput(one);
      }
      // Switched off, predict is the tfjs pass again.
      setProductEngine('wasm');
      const off = ortStats.graphs;
      const plain = model.predict(input);
      expect(ortStats.graphs).toBe(off);
      expect(relativeError(plain.dataSync(), tfjs.dataSync())).toBeLessThan(tolerance);
      setProductEngine('onnxruntime');
      tf.dispose([graph, tfjs, plain]);
      disposeInput(input);
      model.dispose();
    });
  }

  it('the sparse normalisers in the graph are sparse: the sparsemax ViT gives the tfjs logits at large score spreads too', () => {
    const model = randomViT({ ...VIT, attention: 'sparsemax' }, { seed: 10, weightStd: 1 });
    const input = images();
    const graph = model.predict(input);
    const tfjs = tfjsLogits(model, input);
    expect(relativeError(graph.dataSync(), tfjs.dataSync())).toBeLessThan(1e-5);
    tf.dispose([graph, tfjs]);
    disposeInput(input);
    model.dispose();
  });

  for (const c of CASES) {
    it(`${c.name}: the gradient graph gives model.backward's input gradients for many samples at once`, () => {
      const model = c.make();
      const all = c.input();
      const one = sample(all, 1);
      // Four points around the sample's input (pixels, or its word embeddings), as IG and SmoothGrad make them.
      const x0 = model.gradientInput(one);
      const n = 4;
      const x = tf.tidy(() => tf.concat(Array.from({ length: n }, (_, i) => tf.add(tf.mul(x0, 0.4 + 0.2 * i), tf.randomNormal(x0.shape, 0, 0.1, 'float32', 11 + i))), 0));
      const targets = [0, 1, 2, 1];
      const contrast = [2, 0, 1, 0];
      setProductEngine('onnxruntime');
      const before = ortStats.graphs;
      const graph = gradientsAt(model, one, targets, false, { x, contrast });
      expect(ortStats.graphs).toBe(before + 1);
      setProductEngine('wasm');
      const plain = gradientsAt(model, one, targets, false, { x, contrast });
      expect(ortStats.graphs).toBe(before + 1);
      setProductEngine('onnxruntime');
      expect(graph.input.shape).toEqual(plain.input.shape);
      const values = plain.input.dataSync();
      expect(Math.max(...Array.from(values, Math.abs))).toBeGreaterThan(1e-3);
      // Softmax models agree to ~2e-6 of the largest entry (3 layers of weights with std 0.2); the
      // sparse maps to ~1.2e-5: their Jacobians switch with the support and weigh rows by √p, so
      // the two engines' rounding of the scores (ONNX Runtime's products, tfjs-wasm's) moves them more.
      const tolerance = /sparsemax|entmax/.test(c.name) ? 5e-5 : 1e-5;
      expect(relativeError(graph.input.dataSync(), values)).toBeLessThan(tolerance);
      expect(relativeError(graph.logits, plain.logits)).toBeLessThan(1e-5);
      tf.dispose([graph.input, plain.input, x, x0]);
      disposeInput(one);
      disposeInput(all);
      model.dispose();
    });
  }
});
