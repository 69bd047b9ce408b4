import { describe, it, expect } from 'vitest';
import { useGoldenModels } from './helpers/models.js';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import type { ClassifierModel } from '../src/core/models/types.js';
import { perturbImage, perturbText } from '../src/core/eval/perturb-model.js';
import { loadGolden, tensor } from './helpers/golden.js';
import { tokensOf, disposeTokens } from './helpers/bert.js';

const golden = useGoldenModels();

const probOf = (model: ClassifierModel, input: Parameters<ClassifierModel['predict']>[0], target: number) => {
  const out = model.predict(input);
  const p = tf.tidy(() => tf.softmax(out)).dataSync()[target]!;
  out.dispose();
  return p;
};

describe('perturbation tests on a model', () => {
  it('image: step k removes the top k·10 % of pixels (patch map upsampled); each step\'s score is the model on that image', () => {
    const t = tensor(loadGolden('vit-tiny-a').inputs[0].pixel_values);
    const pixels = tf.tensor4d(t.data, [1, 3, 32, 32]);
    // A patch map whose top patch is (0, 0); upsampled, its pixels lead the ranking.
    const map = Array.from({ length: 16 }, (_, i) => 16 - i);
    const run = perturbImage(golden.vit, { kind: 'image', pixels }, map, [4, 4], 2, 'positive', 'zero');
    expect(run.fractions.length).toBe(10);
    expect(run.probabilities[0]).toBeCloseTo(probOf(golden.vit, { kind: 'image', pixels }, 2), 6);
    // Removing 100 % of the pixels with 'zero' is the all-zero image.
    const again = perturbImage(golden.vit, { kind: 'image', pixels }, map, [4, 4], 2, 'positive', 'zero', [0, 1]);
    const zeros = tf.zeros([1, 3, 32, 32]) as tf.Tensor4D;
    expect(again.probabilities[1]).toBeCloseTo(probOf(golden.vit, { kind: 'image', pixels: zeros }, 2), 6);
    tf.dispose([pixels, zeros]);
  });

  it('text: deleting every real token (100 %) leaves [CLS] [SEP] + padding; [MASK] replaces instead', () => {
    const input = tokensOf(1); // 9 tokens: [CLS] 7 words [SEP]
    const map = [0, 7, 6, 5, 4, 3, 2, 1, 0];
    const run = perturbText(golden.bert, input, map, 1, 'positive', 'delete', { mask: 3, unk: 4, pad: 0 }, [0, 0.3, 1]);
    const stripped = { kind: 'tokens' as const, ids: tf.tensor2d([[1, 2, 0, 0, 0, 0, 0, 0, 0]], undefined, 'int32'), attentionMask: tf.tensor2d([[1, 1, 0, 0, 0, 0, 0, 0, 0]], undefined, 'int32') };
    expect(run.probabilities[2]).toBeCloseTo(probOf(golden.bert, stripped, 1), 5);
    // 30 % of 7 units = floor(2.1) = 2: the two most relevant (positions 1 and 2) go.
    const ids = Array.from(input.ids.dataSync());
    const masked = { kind: 'tokens' as const, ids: tf.tensor2d([ids.map((x, p) => (p === 1 || p === 2 ? 3 : x))], undefined, 'int32'), attentionMask: input.attentionMask };
    const withMask = perturbText(golden.bert, input, map, 1, 'positive', 'mask', { mask: 3, unk: 4, pad: 0 }, [0, 0.3]);
    expect(withMask.probabilities[1]).toBeCloseTo(probOf(golden.bert, masked, 1), 5);
    tf.dispose([stripped.ids, stripped.attentionMask, masked.ids]);
    disposeTokens(input);
  });
});
