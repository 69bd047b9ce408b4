import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { relevancePass } from '../src/core/relevance/passes.js';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { randomViT } from '../src/core/models/random.js';
import type { ViTConfig, ViTModel } from '../src/core/models/vit.js';
import { PAPER_RULES, BASELINE_RULES, type RuleSet } from '../src/core/relevance/rulesets.js';
import { linearAlpha1Beta0 } from '../src/core/relevance/rules.js';
import { conservationReport, conservationViolations } from '../src/core/relevance/ledger.js';
import { tensorsOf } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';

const SMALL: ViTConfig = {
  imageSize: [32, 48], patchSize: 8, channels: 3, dim: 48, depth: 4, heads: 3, mlpDim: 96, numClasses: 7,
  qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls',
};
let model: ViTModel;
let pixels: tf.Tensor4D;

beforeAll(async () => {
  await ensureBackend();
  model = randomViT(SMALL, { seed: 7, weightStd: 0.2, zeroBias: true });
  pixels = tf.randomNormal([2, 3, 32, 48], 0, 1, 'float32', 3) as tf.Tensor4D;
});
afterAll(() => {
  model.dispose();
  pixels.dispose();
});

function ledgerOf(rules: RuleSet, targets: number[]) {
  const fwd = model.forward({ kind: 'image', pixels });
  const rel = relevancePass(model, fwd, targets, rules, { toInput: true });
  const pix = (rel.input as tf.Tensor3D).dataSync().slice();
  tf.dispose([...tensorsOf(fwd), ...rel.attnCam, rel.tokens, (rel.input as tf.Tensor3D)]);
  return { ledgers: rel.ledger, pixels: pix };
}

describe('conservation on a zero-bias ViT (non-square image, 4 layers, batch of 2)', () => {
  it('the paper rules conserve relevance to 1e-5 at every boundary, from the head to the pixels', () => {
    const { ledgers } = ledgerOf(PAPER_RULES, [3, 5]);
    for (const ledger of ledgers) {
      expect(ledger.length).toBe(3 + 4 * 20 + 3); // head, pool, norm; 20 per block; add, patch_embed, patch_embed.proj
      expect(conservationViolations(ledger, 1e-5)).toEqual([]);
      expect(ledger[0]!.relevanceIn).toBe(1);
      // Down to block 0's input the total stays exactly 1.
      expect(Math.abs(ledger.find((e) => e.layer === 'blocks.0')!.relevanceOut - 1)).toBeLessThan(1e-5);
    }
  });

  it('the baseline rules do not conserve, and the ledger shows where: every Linear and Add', () => {
    const { ledgers } = ledgerOf(BASELINE_RULES, [3, 5]);
    const flagged = new Set(conservationViolations(ledgers[0]!, 1e-3).map((d) => d.kind));
    expect(flagged.has('Linear')).toBe(true);
    // The head doubles relevance exactly when both positive groups are present (RULES.md).
    expect(ledgers[0]![0]!.relevanceOut).toBeCloseTo(2, 4);
  });

  it('a deliberately broken rule is flagged at exactly the layers it is used for', () => {
    const leaky: RuleSet = { ...PAPER_RULES, id: 'leaky-fc2', linear: (layer, x, R) => {
      const r = linearAlpha1Beta0(layer, x, R);
      if (!layer.name.endsWith('mlp.fc2')) return r;
      const out = tf.mul(r, 0.97) as tf.Tensor2D;
      r.dispose();
      return out;
    } };
    const { ledgers } = ledgerOf(leaky, [0, 1]);
    const flagged = conservationViolations(ledgers[1]!, 1e-4);
    const fc2 = flagged.filter((d) => d.kind === 'Linear').map((d) => d.layer).sort();
    expect(fc2).toEqual(['blocks.0.mlp.fc2', 'blocks.1.mlp.fc2', 'blocks.2.mlp.fc2', 'blocks.3.mlp.fc2']);
    for (const d of flagged.filter((x) => x.kind === 'Linear')) expect(d.drift).toBeCloseTo(0.03, 4);
    // The composites containing them (Mlp, Block) are flagged too; nothing else is.
    expect(new Set(flagged.map((d) => d.kind))).toEqual(new Set(['Linear', 'Mlp', 'Block']));
  });

  it('the drift report covers every entry, and explain() returns the ledger with each map', async () => {
    const one = tf.slice(pixels, [0, 0, 0, 0], [1, 3, 32, 48]) as tf.Tensor4D;
    const [e] = await explain(model, { kind: 'image', pixels: one }, { method: 'lrp', target: 2 });
    one.dispose();
    const report = conservationReport(e!.ledger!);
    expect(report.length).toBe(e!.ledger!.length);
    expect(Math.max(...report.map((d) => d.drift))).toBeLessThan(1e-5);
    expect(e!.shape).toEqual([32, 48]);
  });
});
