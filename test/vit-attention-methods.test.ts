import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { explain } from '../src/core/explain.js';
import type { ClassifierModel } from '../src/core/models/types.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';

const CASE = 'vit-tiny-a';
const golden = loadGolden(CASE);
let model: ClassifierModel;

beforeAll(async () => {
  model = await loadModel(path.join(GOLDEN_DIR, CASE));
});
afterAll(() => model?.dispose());

const pixelsOf = (i: number) => {
  const t = tensor(golden.inputs[i].pixel_values);
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
};
const allPixels = () => tf.concat(golden.inputs.map((_: unknown, i: number) => pixelsOf(i))) as tf.Tensor4D;

describe('target-independent attention methods vs the authors\' code (vit-tiny-a)', () => {
  for (let i = 0; i < golden.inputs.length; i++) {
    const ti = golden.results[i].target_independent;
    it(`${golden.inputs[i].id}: raw-attention = ours.last_layer_attn`, async () => {
      const pixels = pixelsOf(i);
      const [e] = await explain(model, { kind: 'image', pixels }, { method: 'raw-attention' });
      pixels.dispose();
      expect(e!.shape).toEqual([4, 4]);
      expect(e!.space).toBe('patch');
      expect(e!.target).toBe(golden.results[i].argmax);
      expectClose(e!.map, tensor(ti['ours.last_layer_attn'].output).data, 1e-5, 'raw-attention');
      // The authors' two LRP models agree on raw attention; so must we with either.
      expectClose(e!.map, tensor(ti['orig.last_layer_attn'].output).data, 1e-5, 'raw-attention (orig)');
    });
    for (const start of [0, 1]) {
      it(`${golden.inputs[i].id}: rollout --start-layer ${start} = baselines.generate_rollout.start_layer_${start}`, async () => {
        const pixels = pixelsOf(i);
        const [e] = await explain(model, { kind: 'image', pixels }, { method: 'rollout', startLayer: start });
        pixels.dispose();
        expectClose(e!.map, tensor(ti[`baselines.generate_rollout.start_layer_${start}`].output).data, 1e-5, 'rollout');
      });
    }
  }

  it('a batch of three gives the same maps as three single calls', async () => {
    const pixels = allPixels();
    const batch = await explain(model, { kind: 'image', pixels }, { method: 'rollout', startLayer: 1 });
    pixels.dispose();
    expect(batch).toHaveLength(3);
    batch.forEach((e, i) =>
      expectClose(e.map, tensor(golden.results[i].target_independent['baselines.generate_rollout.start_layer_1'].output).data, 1e-5, `rollout[${i}]`),
    );
  });

  it('rejects a start layer outside the model and an unknown method', async () => {
    const pixels = pixelsOf(0);
    await expect(explain(model, { kind: 'image', pixels }, { method: 'rollout', startLayer: 3 })).rejects.toThrow(/start layer 3 is out of range.*0\.\.2/);
    await expect(explain(model, { kind: 'image', pixels }, { method: 'nope' })).rejects.toThrow(/unknown method 'nope'/);
    await expect(explain(model, { kind: 'image', pixels }, { method: 'rollout', target: 7 })).rejects.toThrow(/target 7 is out of range/);
    pixels.dispose();
  });

  it('an image of the wrong size is refused with both shapes', async () => {
    const pixels = tf.zeros([1, 3, 24, 32]) as tf.Tensor4D;
    await expect(explain(model, { kind: 'image', pixels }, { method: 'rollout' })).rejects.toThrow(/\[1, 3, 24, 32\].*\[B, 3, 32, 32\]/);
    pixels.dispose();
  });

  it('leaves no tensor behind', async () => {
    const pixels = allPixels();
    const before = tf.memory().numTensors;
    for (const method of ['raw-attention', 'rollout']) await explain(model, { kind: 'image', pixels }, { method });
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
  });
});
