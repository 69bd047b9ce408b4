/**
 * The random baseline: a map that ignores the model and the target — uniform noise over the input's
 * units (patches or tokens), seeded by the input's content so a run is reproducible. Evaluation
 * tables include it: a method must beat it to mean anything (it scores at chance on localisation).
 */
import { disposeInput } from '../models/types.js';
import { rng } from '../models/random.js';
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';

/** A 32-bit FNV-1a hash of a sample's values: the same input always gets the same random map. */
function hashValues(values: ArrayLike<number>): number {
  let h = 0x811c9dc5;
  const view = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < values.length; i++) {
    view.setFloat32(0, values[i]!);
    for (let k = 0; k < 4; k++) h = Math.imul(h ^ view.getUint8(k), 0x01000193);
  }
  return h >>> 0;
}

export const randomBaseline: ExplanationMethod = {
  id: 'random',
  title: 'Random map (baseline)',
  reference: 'a sanity baseline: uniform noise, independent of model and target',
  targetDependent: false,
  signed: false,
  options: [],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    return targets.map((target, b) => {
      const sample = model.sampleOf(ctx.input, b);
      const values = sample.kind === 'image' ? sample.pixels.dataSync() : sample.ids.dataSync();
      disposeInput(sample);
      const next = rng(hashValues(values));
      const row = Array.from({ length: ctx.tokens }, () => next());
      const { data, shape, space } = model.tokenRowToMap(row, 'keep');
      return result(ctx, b, { method: 'random', target, map: data, shape, space, options });
    });
  },
};
