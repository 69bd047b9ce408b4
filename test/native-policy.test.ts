/**
 * Which models take the whole-pass native graphs (onnx/run.ts): every model whose host copy of the
 * weights is a small part of memory, ViT-B/16 included; a context takes its logits from the lean
 * pass only where that makes no large copy, so a relevance method on ViT-B/16 never pays for one.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { randomViT, VIT_B16 } from '../src/core/models/random.js';
import type { ViTModel } from '../src/core/models/vit.js';
import { hasCheapNativePredict, hasNativePasses, predictOnOrt } from '../src/core/onnx/run.js';
import { ExplainContext } from '../src/core/context.js';

let big: ViTModel;
let small: ViTModel;
beforeAll(async () => {
  await ensureBackend();
  big = randomViT(VIT_B16, { seed: 1 });
  small = randomViT({ ...VIT_B16, imageSize: [32, 32], patchSize: 8, dim: 32, depth: 2, heads: 2, mlpDim: 64 }, { seed: 2 });
});
afterAll(() => {
  big?.dispose();
  small?.dispose();
});

describe('native passes by the size of the host copy', () => {
  it('ViT-B/16 (331 MB of weights) takes them; its context logits come from the recorded forward until a native pass has run', () => {
    expect(hasNativePasses(big)).toBe(true);
    expect(hasCheapNativePredict(big)).toBe(false);
    expect(hasCheapNativePredict(small)).toBe(true);
    const pixels = tf.randomNormal([1, 3, 224, 224], 0, 1, 'float32', 4) as tf.Tensor4D;
    const ctx = new ExplainContext(big, { kind: 'image', pixels });
    const recorded = ctx.logits()[0]!;
    // The context recorded its forward (what relevance methods read) instead of a lean pass.
    expect(ctx.hasForward()).toBe(true);
    const native = predictOnOrt(big, { kind: 'image', pixels })!;
    const lean = native.dataSync();
    // The traced graph and the tfjs forward agree to float32 rounding of a 12-block network.
    let worst = 0;
    for (let i = 0; i < lean.length; i++) worst = Math.max(worst, Math.abs(lean[i]! - recorded[i]!));
    expect(Math.max(...Array.from(recorded, Math.abs))).toBeGreaterThan(0.1);
    expect(worst).toBeLessThan(1e-4);
    expect(hasCheapNativePredict(big)).toBe(true);
    tf.dispose([native, pixels]);
    ctx.dispose();
  });
});
