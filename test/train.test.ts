import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { loadModel } from '../src/core/models/load.js';
import { initBert, initViT } from '../src/core/train/init.js';
import { saveBert, saveViT } from '../src/core/train/save.js';
import { DEFAULT_TRAIN, learningRate, train } from '../src/core/train/trainer.js';
import { TASK_PREPROCESSING, taskData, taskTokenizer, TEXT_MAX_TOKENS } from '../src/core/train/data.js';
import { readSafetensors } from '../src/core/io/safetensors.js';
import { disposeInput } from '../src/core/models/types.js';
import type { BertModel } from '../src/core/models/bert.js';

let tmp: string;
beforeAll(async () => {
  await ensureBackend();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-train-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const logitsOf = (model: { predict: (i: never) => tf.Tensor }, input: unknown) => {
  const out = model.predict(input as never);
  const v = Array.from(out.dataSync());
  out.dispose();
  return v;
};

describe('training', () => {
  it('learning rate: linear warm-up, then cosine decay to 5 % of the peak', () => {
    const o = { lr: 1e-3, warmupSteps: 100, steps: 1100 };
    expect(learningRate(0, o)).toBeCloseTo(1e-5, 12);
    expect(learningRate(99, o)).toBeCloseTo(1e-3, 12);
    expect(learningRate(600, o)).toBeCloseTo(1e-3 * (0.05 + 0.95 * 0.5), 12);
    expect(learningRate(1100, o)).toBeCloseTo(5e-5, 12);
  });

  it('a saved ViT and a saved BERT (HF layouts, with preprocessing and tokenizer) load back to the same logits', async () => {
    const data = taskData('image', 3);
    const vit = initViT({ imageSize: [64, 64], patchSize: 8, channels: 3, dim: 32, depth: 2, heads: 2, mlpDim: 64, numClasses: 4, qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls', attention: 'entmax15' }, 5, data.classes, TASK_PREPROCESSING);
    const { input } = data.batch([0, 1]);
    await saveViT(vit, path.join(tmp, 'vit'));
    const vit2 = await loadModel(path.join(tmp, 'vit'));
    expect(logitsOf(vit2, input)).toEqual(logitsOf(vit, input));
    expect(vit2.labels).toEqual(['circle', 'square', 'triangle', 'cross']);
    expect(JSON.parse(await fs.readFile(path.join(tmp, 'vit', 'config.json'), 'utf8')).attention_normaliser).toBe('entmax15');
    disposeInput(input);

    const text = taskData('text', 3);
    const tok = taskTokenizer();
    const bert = initBert({ flavour: 'bert', vocabSize: tok.vocabSize, dim: 32, depth: 2, heads: 2, mlpDim: 64, maxPositions: TEXT_MAX_TOKENS, typeVocabSize: 2, lnEps: 1e-12, numClasses: 2, padTokenId: 0, poolerActivation: 'tanh', attention: 'sparsemax' }, 5, text.classes);
    bert.tokenizer = tok;
    const batch = text.batch([0, 1, 2]);
    await saveBert(bert, path.join(tmp, 'bert'));
    const bert2 = (await loadModel(path.join(tmp, 'bert'))) as BertModel;
    expect(logitsOf(bert2, batch.input)).toEqual(logitsOf(bert, batch.input));
    expect(bert2.tokenizer!.encode('the food was not terrible').tokens).toEqual(tok.encode('the food was not terrible').tokens);
    expect(bert2.special.mask).toBe(tok.special.mask);
    disposeInput(batch.input);
    for (const m of [vit, vit2, bert, bert2]) m.dispose();
  });

  it('an interrupted run resumed from its checkpoint ends with exactly the weights of an uninterrupted one', async () => {
    const base = { ...DEFAULT_TRAIN, task: 'text' as const, attention: 'softmax' as const, stepsPerEpoch: 6, batchSize: 8, dim: 16, depth: 1, heads: 2, evalSamples: 16, finalEvalSamples: 16, targetAccuracy: 2, warmupSteps: 4 };
    await train({ ...base, out: path.join(tmp, 'straight'), steps: 12 });
    // Interrupted after step 8: the checkpoint of step 6 is what survives, as after a kill.
    const stop = new AbortController();
    const cut = await train({ ...base, out: path.join(tmp, 'resumed'), steps: 12 }, (p) => p.step === 8 && stop.abort(), undefined, stop.signal);
    expect(cut.interrupted).toBe(true);
    const resumed = await train({ ...base, out: path.join(tmp, 'resumed'), steps: 12 });
    expect(resumed.interrupted).toBe(false);
    expect(resumed.steps).toBe(12);
    const a = await readSafetensors(path.join(tmp, 'straight', 'model.safetensors'));
    const b = await readSafetensors(path.join(tmp, 'resumed', 'model.safetensors'));
    for (const name of a.tensors.keys()) expect(Array.from(b.getFloat32(name)), name).toEqual(Array.from(a.getFloat32(name)));
    const card = JSON.parse(await fs.readFile(path.join(tmp, 'resumed', 'training.json'), 'utf8'));
    expect(card.history.map((h: { step: number }) => h.step)).toEqual([6, 12]);
  });

  it('a small model learns: loss falls well below chance within a few hundred steps', async () => {
    const result = await train({
      ...DEFAULT_TRAIN,
      task: 'text',
      attention: 'softmax',
      out: path.join(tmp, 'learn'),
      steps: 300,
      stepsPerEpoch: 100,
      batchSize: 32,
      lr: 2e-3,
      warmupSteps: 30,
      dim: 32,
      depth: 2,
      heads: 2,
      evalSamples: 256,
      finalEvalSamples: 256,
      targetAccuracy: 2,
    });
    const first = result.history[0]!;
    const last = result.history.at(-1)!;
    // Chance: ln 2 ≈ 0.693 and 50 % for two balanced classes. Measured: loss ≈ 0.3, 83 % held-out.
    expect(last.loss).toBeLessThan(0.45);
    expect(last.loss).toBeLessThan(first.loss);
    expect(result.heldOutAccuracy).toBeGreaterThan(0.75);
  }, 120_000);
});
