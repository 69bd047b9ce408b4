/**
 * Occlusion (Zeiler & Fergus 2014; leave-one-out for text, as Jain & Wallace compare attention
 * with): the drop of the target logit when one input unit is occluded — a token replaced by [MASK]
 * or [UNK] or removed, or an image patch set to the baseline (0 in normalised space). Positive
 * values mean the unit supported the target.
 */
import { tf } from '../tf.js';
import { UsageError } from '../errors.js';
import { disposeInput, type OcclusionMode } from '../models/types.js';
import type { ExplanationMethod } from './types.js';
import { result } from './common.js';

const MODES: readonly OcclusionMode[] = ['auto', 'mask', 'unk', 'remove', 'baseline'];

export const occlusion: ExplanationMethod = {
  id: 'occlusion',
  title: 'Occlusion (leave one out)',
  reference: 'Zeiler & Fergus 2014; leave-one-out as in Jain & Wallace 2019',
  targetDependent: true,
  signed: true,
  options: ['occlusion'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const requested = options.occlusion ?? 'auto';
    if (!MODES.includes(requested)) throw new UsageError(`unknown occlusion '${requested}' (choose one of ${MODES.join(', ')})`);
    const out = [];
    for (const [b, target] of targets.entries()) {
      const occ = model.occlusions(ctx.input, b, requested);
      let at = 0;
      try {
        // y_target, or y_target − y_contrast for a contrastive target: a unit whose occlusion changes
        // nothing scores exactly 0.
        const full = ctx.targetScore(ctx.predictedLogits(b), b, target);
        const map = new Float32Array(occ.shape.reduce((a, n) => a * n, 1));
        const units = occ.positions.length;
        for (const batch of occ.batches) {
          const variants = model.predict(batch);
          const values = variants.dataSync();
          const C = variants.shape[1];
          for (let i = 0; i < variants.shape[0]; i++) map[occ.positions[at++]!] = full - ctx.targetScore(values.subarray(i * C, (i + 1) * C), b, target);
          variants.dispose();
          disposeInput(batch);
          options.onProgress?.(b * units + at, units * targets.length);
          await ctx.pass({ method: 'occlusion', done: b * units + at, total: units * targets.length, unit: 'units' });
        }
        out.push(result(ctx, b, { method: 'occlusion', target, map, shape: occ.shape, space: occ.space, options: { occlusion: occ.mode } }));
      } finally {
        // Each batch is freed once used; after a cancel or an error, the rest (a second dispose is a no-op).
        for (const batch of occ.batches) disposeInput(batch);
      }
    }
    return out;
  },
};
