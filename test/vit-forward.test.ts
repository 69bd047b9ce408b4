import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import type { ViTModel, ViTRecord } from '../src/core/models/vit.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';

const CASE = 'vit-tiny-a';
const golden = loadGolden(CASE);
let model: ViTModel;

beforeAll(async () => {
  model = (await loadModel(path.join(GOLDEN_DIR, CASE))) as ViTModel;
});
afterAll(() => model?.dispose());

function pixelsOf(i: number) {
  const t = tensor(golden.inputs[i].pixel_values);
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
}

describe('ViT forward vs the authors\' ViT_LRP (vit-tiny-a)', () => {
  it('reads the golden config', () => {
    expect(model.config).toMatchObject({ imageSize: [32, 32], patchSize: 8, dim: 32, depth: 3, heads: 4, mlpDim: 64, numClasses: 5, lnEps: 1e-6, lnEpsFinal: 1e-5 });
    expect(model.tokens).toBe(17);
  });

  for (let i = 0; i < golden.inputs.length; i++) {
    it(`input ${golden.inputs[i].id}: logits, tokens, block outputs, pre-head and attention within 1e-5`, () => {
      const res = golden.results[i];
      const pixels = pixelsOf(i);
      const fwd = model.forward({ kind: 'image', pixels });
      const rec = fwd.record as ViTRecord;
      expectClose(fwd.logits.dataSync(), tensor(res.logits).data, 1e-5, 'logits');
      const tokensIn = tf.add(rec.tokenEmbeds, rec.posEmbeds);
      expectClose(tokensIn.dataSync(), tensor(res.forward.tokens_in).data, 1e-5, 'tokens_in');
      rec.blocks.forEach((b, l) => {
        expectClose(b.output.dataSync(), tensor(res.forward.block_outputs[l]).data, 1e-5, `block_outputs[${l}]`);
        expectClose(fwd.attention[l]!.probs.dataSync(), tensor(res.forward.attn_probs[l]).data, 1e-5, `attn_probs[${l}]`);
      });
      expectClose(rec.pooled[0]!.dataSync(), tensor(res.forward.pre_head).data, 1e-5, 'pre_head');
      tf.dispose([pixels, tokensIn, fwd as unknown as tf.TensorContainer]);
    });
  }
});
