import { describe, it, expect } from 'vitest';
import { useGoldenModels } from './helpers/models.js';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { coIndexedAttribution } from '../src/core/eval/token-identity.js';
import { loadGolden, tensor } from './helpers/golden.js';
import { tokensOf, disposeTokens } from './helpers/bert.js';

const golden = useGoldenModels();

describe('co-indexed attribution (Meister et al.)', () => {
  it('ViT: shares in [0, 1] per layer and patch; the batched copies give what one position alone gives', () => {
    const t = tensor(loadGolden('vit-tiny-a').inputs[0].pixel_values);
    const pixels = tf.tensor4d(t.data, [1, 3, 32, 32]);
    const input = { kind: 'image' as const, pixels };
    const before = tf.memory().numTensors;
    const r = coIndexedAttribution(golden.vit, input);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.layers).toHaveLength(3);
    expect(r.perPosition[0]).toHaveLength(16);
    for (const row of r.perPosition) for (const v of row) expect(v >= 0 && v <= 1).toBe(true);
    // One position on its own (a batch of one) must give the same share as in the batch.
    const alone = coIndexedAttribution(golden.vit, input, { positions: [6] });
    expect(alone.perPosition[1]![0]).toBeCloseTo(r.perPosition[1]![5]!, 5);
    pixels.dispose();
  });

  it('text: one share per real token, padding excluded', () => {
    const input = tokensOf(2); // 9 real tokens, 3 PAD
    const r = coIndexedAttribution(golden.bert, input);
    expect(r.perPosition[0]).toHaveLength(9);
    expect(r.layers.every((v) => v > 0 && v < 1)).toBe(true);
    disposeTokens(input);
  });
});
