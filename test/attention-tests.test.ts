import { describe, it, expect } from 'vitest';
import { useGoldenModels } from './helpers/models.js';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { attentionPermutation, adversarialAttention } from '../src/core/eval/attention-tests.js';
import { loadGolden, tensor, relativeError } from './helpers/golden.js';
import { tensorsOf } from '../src/core/context.js';
import { tokensOf, disposeTokens } from './helpers/bert.js';

const golden = useGoldenModels();

describe('attention tests (Jain & Wallace)', () => {
  it('permutation: the identity edit changes nothing; shuffles give total variations in [0, 1], reproducibly', () => {
    const t = tensor(loadGolden('vit-tiny-a').inputs[0].pixel_values);
    const pixels = tf.tensor4d(t.data, [1, 3, 32, 32]);
    const input = { kind: 'image' as const, pixels };
    const base = golden.vit.predict(input);
    const same = golden.vit.predict(input, { attentionEdit: { layer: 2, edit: (a) => a } });
    // An edited pass runs the tfjs forward: exactly its logits; the lean pass (a whole ONNX Runtime
    // graph where installed) agrees to float32 rounding.
    const fwd = golden.vit.forward(input);
    expect(Array.from(same.dataSync())).toEqual(Array.from(fwd.logits.dataSync()));
    expect(relativeError(base.dataSync(), same.dataSync())).toBeLessThan(1e-5);
    tf.dispose(tensorsOf(fwd));
    const a = attentionPermutation(golden.vit, input, { permutations: 20, seed: 3 });
    const b = attentionPermutation(golden.vit, input, { permutations: 20, seed: 3 });
    expect(a.tvd).toHaveLength(20);
    expect(a.tvd).toEqual(b.tvd);
    expect(a.tvd.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(a.median).toBeGreaterThan(0);
    tf.dispose([pixels, base, same]);
  });

  it('permutation on padded text never moves weight onto padding', () => {
    const input = tokensOf(2); // 3 PAD positions
    const r = attentionPermutation(golden.bert, input, { permutations: 8, seed: 1 });
    expect(r.tvd.every(Number.isFinite)).toBe(true);
    disposeTokens(input);
  });

  it('adversarial attention finds divergent attention (JSD > 0) while the output stays within ε', () => {
    const t = tensor(loadGolden('vit-tiny-a').inputs[1].pixel_values);
    const pixels = tf.tensor4d(t.data, [1, 3, 32, 32]);
    const before = tf.memory().numTensors;
    const r = adversarialAttention(golden.vit, { kind: 'image', pixels }, { epsilon: 0.05, steps: 40, lr: 0.1 });
    expect(r.feasible).toBe(true);
    expect(r.tvd).toBeLessThanOrEqual(0.05);
    expect(r.jsd).toBeGreaterThan(0.01);
    expect(r.jsd).toBeLessThanOrEqual(Math.LN2 + 1e-6);
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
  });
});
