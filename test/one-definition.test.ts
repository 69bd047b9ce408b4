/**
 * The layer definitions of nn/ run by both interpreters: eagerly on tfjs and traced into one ONNX
 * Runtime graph. Each is checked against the paper authors' own forward (golden logits) and against
 * the hand-written ViT backward, and the two interpreters against each other.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { randomViT } from '../src/core/models/random.js';
import type { ViTConfig, ViTModel } from '../src/core/models/vit.js';
import { ensureBackend } from '../src/core/backend.js';
import { ortActive } from '../src/core/ort-products.js';
import { runEager, releaseEager } from '../src/core/engine/eager.js';
import { runTraced, releaseTraced } from '../src/core/engine/trace.js';
import type { HostTensor } from '../src/core/engine/ops.js';
import { inputGradientPass, predictPass } from '../src/core/passes/passes.js';
import { vitFromModel } from '../src/core/families/vit/vit.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';

const golden = loadGolden('vit-tiny-a');
let model: ViTModel;

beforeAll(async () => {
  await ensureBackend();
  model = (await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'))) as ViTModel;
});
afterAll(() => model?.dispose());

const pixelsOf = (i: number): HostTensor => {
  const t = tensor(golden.inputs[i].pixel_values);
  return { data: Float32Array.from(t.data), shape: t.shape };
};

function batchOf(items: readonly HostTensor[]): HostTensor {
  const data = new Float32Array(items.reduce((s, t) => s + t.data.length, 0));
  let at = 0;
  for (const t of items) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return { data, shape: [items.length, ...items[0]!.shape.slice(1)] };
}

/** e_target − e_contrast rows: a seed the hand-written backward takes too. */
function seedOf(targets: readonly number[], contrast: readonly number[], classes: number): HostTensor {
  const data = new Float32Array(targets.length * classes);
  targets.forEach((t, i) => {
    data[i * classes + t] += 1;
    data[i * classes + contrast[i]!] -= 1;
  });
  return { data, shape: [targets.length, classes] };
}

/** The hand-written ViTModel.backward's input gradient for the same seed. */
function handWritten(m: ViTModel, x: HostTensor, seed: HostTensor): Float32Array {
  return tf.tidy(() => {
    const pixels = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
    const fwd = m.forward({ kind: 'image', pixels });
    const out = m.backward(fwd, tf.tensor2d(seed.data, seed.shape as [number, number]), { attention: false }).input.dataSync() as Float32Array;
    return out.slice();
  });
}

describe('one definition, two interpreters: ViT (vit-tiny-a, the authors\' ViT_LRP)', () => {
  it('eager logits equal the golden logits within 1e-5', () => {
    const { network, params } = vitFromModel(model);
    for (let i = 0; i < golden.inputs.length; i++) {
      const y = runEager(params, { x: pixelsOf(i) }, predictPass(network));
      expectClose(y['logits']!.data, tensor(golden.results[i].logits).data, 1e-5, `eager logits ${i}`);
    }
    releaseEager(params);
  });

  it('the traced graph runs on ONNX Runtime, with the golden logits within 1e-5', () => {
    expect(ortActive()).toBe(true);
    const { network, params } = vitFromModel(model);
    const x = batchOf(golden.inputs.map((_: unknown, i: number) => pixelsOf(i)));
    const y = runTraced(model, 'predict', params, { x }, predictPass(network));
    const expected = golden.results.flatMap((r: { logits: unknown }) => Array.from(tensor(r.logits).data));
    expect(y['logits']!.shape).toEqual([golden.inputs.length, model.numClasses]);
    expectClose(y['logits']!.data, expected, 1e-5, 'traced logits');
    releaseTraced(model);
  });

  it('input gradients (with a contrast) equal the hand-written backward on both interpreters within 1e-5', () => {
    const { network, params } = vitFromModel(model);
    const x = batchOf([pixelsOf(0), pixelsOf(1)]);
    const seed = seedOf([2, 4], [0, 1], model.numClasses);
    const expected = handWritten(model, x, seed);
    const eager = runEager(params, { x, seed }, inputGradientPass(network));
    const traced = runTraced(model, 'gradient', params, { x, seed }, inputGradientPass(network));
    expect(eager['gradient']!.shape).toEqual(x.shape);
    expectClose(eager['gradient']!.data, expected, 1e-5, 'eager gradient');
    expectClose(traced['gradient']!.data, expected, 1e-5, 'traced gradient');
    // Not all zero: the comparison would pass on a pass that lost its seed.
    expect(Math.max(...Array.from(expected, Math.abs))).toBeGreaterThan(1e-4);
    releaseEager(params);
    releaseTraced(model);
  });
});

describe('one definition: DeiT (two prefix tokens, two heads averaged), random weights', () => {
  const config: ViTConfig = { imageSize: [24, 16], patchSize: 8, channels: 3, dim: 24, depth: 2, heads: 3, mlpDim: 48, numClasses: 4, qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 2, pooling: 'cls+dist' };
  it('logits and input gradients equal the model class on both interpreters within 1e-5', () => {
    const deit = randomViT(config, { seed: 3 });
    const { network, params } = vitFromModel(deit);
    const next = (() => {
      let s = 7;
      return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    })();
    const x: HostTensor = { data: Float32Array.from({ length: 2 * 3 * 24 * 16 }, next), shape: [2, 3, 24, 16] };
    const seed = seedOf([1, 3], [0, 2], 4);
    const logits = tf.tidy(() => deit.predict({ kind: 'image', pixels: tf.tensor4d(x.data, [2, 3, 24, 16]) }).dataSync().slice());
    const expected = handWritten(deit, x, seed);
    for (const [engine, y] of [
      ['eager', runEager(params, { x, seed }, inputGradientPass(network))],
      ['traced', runTraced(deit, 'gradient', params, { x, seed }, inputGradientPass(network))],
    ] as const) {
      expectClose(y['logits']!.data, logits, 1e-5, `${engine} logits`);
      expectClose(y['gradient']!.data, expected, 1e-5, `${engine} gradient`);
    }
    releaseEager(params);
    releaseTraced(deit);
    deit.dispose();
  });
});

import type { BertModel } from '../src/core/models/bert.js';
import type { TokenInput } from '../src/core/models/types.js';
import { bertFromModel, bertInputs } from '../src/core/families/bert/bert.js';
import { BERT_DIR, bertGolden, tokensOf, disposeTokens } from './helpers/bert.js';

/** Word embeddings [B, T, D] of token input, read off the model's table on the host. */
function wordsOf(m: BertModel, t: TokenInput): HostTensor {
  const [B, T] = t.ids.shape;
  const D = m.config.dim;
  const table = m.weights.wordEmbeddings.dataSync();
  const ids = t.ids.dataSync();
  const data = new Float32Array(B * T * D);
  for (let i = 0; i < B * T; i++) data.set(table.subarray(ids[i]! * D, (ids[i]! + 1) * D), i * D);
  return { data, shape: [B, T, D] };
}

describe('one definition, two interpreters: BERT', () => {
  it('bert-tiny-a: logits equal the golden (HuggingFace) logits on both interpreters within 1e-5', async () => {
    const bert = (await loadModel(BERT_DIR)) as BertModel;
    const { network, shape, params } = bertFromModel(bert);
    for (let i = 0; i < bertGolden.inputs.length; i++) {
      const t = tokensOf(i);
      const inputs = bertInputs(shape, t);
      const expected = tensor(bertGolden.results[i].logits).data;
      const x = inputs['ids']!;
      expectClose(runEager(params, { ...inputs, x }, predictPass(network))['logits']!.data, expected, 1e-5, `eager logits ${i}`);
      expectClose(runTraced(bert, 'predict', params, { ...inputs, x }, predictPass(network))['logits']!.data, expected, 1e-5, `traced logits ${i}`);
      disposeTokens(t);
    }
    releaseEager(params);
    releaseTraced(bert);
    bert.dispose();
  });

  for (const name of ['text-sparsemax', 'text-entmax15']) {
    it(`${name} (shipped): word-embedding gradients equal the hand-written backward on both interpreters within 1e-5`, async () => {
      const bert = (await loadModel(path.join(__dirname, '..', 'models', name))) as BertModel;
      const { network, shape, params } = bertFromModel(bert);
      const t = tokensOf(0);
      const [B, T] = t.ids.shape;
      const seed = seedOf([1], [0], bert.numClasses);
      const expected = tf.tidy(() => {
        const fwd = bert.forward(t);
        return (bert.backward(fwd, tf.tensor2d(seed.data, [B, bert.numClasses]), { attention: false }).input.dataSync() as Float32Array).slice();
      });
      const logits = tf.tidy(() => bert.predict(t).dataSync().slice());
      const inputs = { ...bertInputs(shape, t), x: wordsOf(bert, t), seed };
      for (const [engine, y] of [
        ['eager', runEager(params, inputs, inputGradientPass(network))],
        ['traced', runTraced(bert, 'gradient', params, inputs, inputGradientPass(network))],
      ] as const) {
        expect(y['gradient']!.shape).toEqual([B, T, bert.config.dim]);
        expectClose(y['logits']!.data, logits, 1e-5, `${engine} logits`);
        expectClose(y['gradient']!.data, expected, 1e-5, `${engine} gradient`);
      }
      disposeTokens(t);
      releaseEager(params);
      releaseTraced(bert);
      bert.dispose();
    });
  }
});

describe('one definition: ViT with sparse attention (image-sparsemax, image-entmax15, shipped)', () => {
  for (const name of ['image-sparsemax', 'image-entmax15']) {
    it(`${name}: logits and input gradients equal the model class on both interpreters within 1e-5`, async () => {
      const vit = (await loadModel(path.join(__dirname, '..', 'models', name))) as ViTModel;
      const { network, params } = vitFromModel(vit);
      const [h, w] = vit.config.imageSize;
      let s = 11;
      const x: HostTensor = { data: Float32Array.from({ length: 2 * 3 * h * w }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1), shape: [2, 3, h, w] };
      const seed = seedOf([1, 0], [0, 1], vit.numClasses);
      const logits = tf.tidy(() => vit.predict({ kind: 'image', pixels: tf.tensor4d(x.data, [2, 3, h, w]) }).dataSync().slice());
      const expected = handWritten(vit, x, seed);
      for (const [engine, y] of [
        ['eager', runEager(params, { x, seed }, inputGradientPass(network))],
        ['traced', runTraced(vit, 'gradient', params, { x, seed }, inputGradientPass(network))],
      ] as const) {
        expectClose(y['logits']!.data, logits, 1e-5, `${engine} logits`);
        expectClose(y['gradient']!.data, expected, 1e-5, `${engine} gradient`);
      }
      releaseEager(params);
      releaseTraced(vit);
      vit.dispose();
    });
  }
});
