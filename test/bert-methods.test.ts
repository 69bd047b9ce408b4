import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import type { BertModel } from '../src/core/models/bert.js';
import type { ViTModel } from '../src/core/models/vit.js';
import type { TokenInput } from '../src/core/models/types.js';
import { tensorsOf } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { listMethods } from '../src/core/methods/registry.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose, relativeError } from './helpers/golden.js';
import { BERT_DIR, bertGolden as golden, tokensOf, disposeTokens } from './helpers/bert.js';

let model: BertModel;
beforeAll(async () => {
  model = (await loadModel(BERT_DIR)) as BertModel;
});
afterAll(() => model?.dispose());

const batchOf = (rows: number[][], masks: number[][]): TokenInput => ({
  kind: 'tokens',
  ids: tf.tensor2d(rows, undefined, 'int32'),
  attentionMask: tf.tensor2d(masks, undefined, 'int32'),
});
const idsOf = (i: number) => Array.from(tensor(golden.inputs[i].input_ids).data);
const maskOf = (i: number) => Array.from(tensor(golden.inputs[i].attention_mask).data);
const logit = (input: TokenInput, target: number) => {
  const out = model.predict(input);
  const v = out.dataSync()[target]!;
  out.dispose();
  return v;
};

describe('text methods', () => {
  it('a batch (seq0 with the padded seq2) gives the same maps as single calls, for every method', async () => {
    const input = batchOf([idsOf(0), idsOf(2)], [maskOf(0), maskOf(2)]);
    const targets = [golden.results[0].targets[0].target, golden.results[2].targets[1].target];
    for (const m of listMethods()) {
      const batch = await explain(model, input, { method: m.id, target: targets, steps: 8 });
      for (const [b, i] of [[0, 0], [1, 2]] as const) {
        const single = tokensOf(i);
        const [e] = await explain(model, single, { method: m.id, target: targets[b], steps: 8 });
        disposeTokens(single);
        expectClose(batch[b]!.map, e!.map, 1e-4, `${m.id}[${b}]`);
      }
    }
    disposeTokens(input);
  });

  it('predict() equals forward() logits, and the golden logits', () => {
    for (let i = 0; i < 3; i++) {
      const input = tokensOf(i);
      const fwd = model.forward(input);
      const lean = model.predict(input);
      // The lean tfjs pass (taken with an edit, even an identity one) is the forward's arithmetic
      // exactly; the default lean pass, a whole ONNX Runtime graph where installed, agrees to rounding.
      const tfjs = model.predict(input, { attentionEdit: { layer: 0, edit: (a) => a } });
      expect(Array.from(tfjs.dataSync())).toEqual(Array.from(fwd.logits.dataSync()));
      expect(relativeError(lean.dataSync(), fwd.logits.dataSync())).toBeLessThan(1e-6);
      expectClose(lean.dataSync(), tensor(golden.results[i].logits).data, 1e-5, 'logits');
      tf.dispose([...tensorsOf(fwd), lean, tfjs]);
      disposeTokens(input);
    }
  });

  it('integrated gradients on word embeddings is complete: Σ map = f(x) − f(zero words) within 1 %', async () => {
    const input = tokensOf(1);
    const target = golden.results[1].targets[0].target;
    const [e] = await explain(model, input, { method: 'integrated-gradients', target, steps: 50 });
    const zero = tf.zeros([9, 32]);
    const f0 = model.forward(input, { inputValue: zero });
    const baseline = f0.logits.dataSync()[target]!;
    tf.dispose([zero, ...tensorsOf(f0)]);
    const fx = tensor(golden.results[1].logits).data[target]!;
    const sum = e!.map.reduce((s, x) => s + x, 0);
    expect(e!.shape).toEqual([9]);
    expect(Math.abs(sum - (fx - baseline)) / Math.abs(fx - baseline)).toBeLessThan(0.01);
    disposeTokens(input);
  });

  it('occlusion (remove, mask, unk) equals the logit drop of hand-built variants; CLS, SEP and padding score 0', async () => {
    model.special = { mask: 3, unk: 4 };
    const ids = idsOf(2);
    const mask = maskOf(2);
    const target = 1;
    const input = tokensOf(2);
    const full = logit(input, target);
    for (const mode of ['remove', 'mask', 'unk'] as const) {
      const [e] = await explain(model, input, { method: 'occlusion', target, occlusion: mode });
      expect(e!.options.occlusion).toBe(mode);
      for (const pos of [0, 8, 9, 10, 11]) expect(e!.map[pos]).toBe(0);
      for (const pos of [1, 4, 7]) {
        let variant: TokenInput;
        if (mode === 'remove') variant = batchOf([[...ids.slice(0, pos), ...ids.slice(pos + 1), 0]], [[...mask.slice(0, pos), ...mask.slice(pos + 1), 0]]);
        else variant = batchOf([ids.map((x, i) => (i === pos ? (mode === 'mask' ? 3 : 4) : x))], [mask]);
        expect(e!.map[pos]).toBeCloseTo(full - logit(variant, target), 5);
        disposeTokens(variant);
      }
    }
    model.special = { mask: null, unk: null };
    await expect(explain(model, input, { method: 'occlusion', target, occlusion: 'mask' })).rejects.toThrow(/needs the model's tokenizer/);
    disposeTokens(input);
  });

  it('occlusion on a ViT sets each patch to the baseline', async () => {
    const vit = (await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'))) as ViTModel;
    const t = tensor(loadGolden('vit-tiny-a').inputs[0].pixel_values);
    const pixels = tf.tensor4d(t.data, [1, 3, 32, 32]);
    const [e] = await explain(vit, { kind: 'image', pixels }, { method: 'occlusion', target: 2 });
    expect(e!.shape).toEqual([4, 4]);
    const full = vit.predict({ kind: 'image', pixels });
    const data = Float32Array.from(t.data);
    for (let c = 0; c < 3; c++) for (let y = 8; y < 16; y++) data.fill(0, c * 1024 + y * 32 + 16, c * 1024 + y * 32 + 24); // patch (1, 2) = 6
    const occluded = tf.tensor4d(data, [1, 3, 32, 32]);
    const out = vit.predict({ kind: 'image', pixels: occluded });
    expect(e!.map[6]).toBeCloseTo(full.dataSync()[2]! - out.dataSync()[2]!, 5);
    tf.dispose([pixels, full, occluded, out]);
    vit.dispose();
  });

  it('every method on text leaves no tensor behind', async () => {
    const input = tokensOf(2);
    const before = tf.memory().numTensors;
    for (const m of listMethods()) await explain(model, input, { method: m.id, target: 0, steps: 4, occlusion: 'remove' });
    expect(tf.memory().numTensors).toBe(before);
    disposeTokens(input);
  });
});
