/**
 * Where relevance goes, block by block: R^(A), the relevance that reached each block's attention
 * probabilities in the relevance pass, averaged over heads, in the row of the token the model
 * reads its answer from ([CLS] for encoders, the last real token for decoders), as a map over the
 * input; and its total over the whole layer. The app's Layers view and the explanation report show it.
 */
import { tf } from './tf.js';
import type { ExplainContext } from './context.js';
import { ruleSetOf } from './relevance/rulesets.js';
import type { MapSpace } from './models/types.js';

export interface LayerRelevance {
  readonly layer: number;
  readonly map: Float32Array;
  readonly shape: readonly number[];
  readonly space: MapSpace;
  /** Σ R^(A) over the layer: all heads, all rows. */
  readonly total: number;
}

/** For input `b` of the context, under the rule set the method reported using (its relevance pass is cached). */
export function attentionRelevanceByLayer(ctx: ExplainContext, used: { readonly rules?: string; readonly gamma?: number }, targets: readonly number[], b = 0): LayerRelevance[] {
  const rel = ctx.relevance(ruleSetOf(used), targets);
  const explained = ctx.explainedRows()[b]!;
  return rel.attnCam.map((cam, layer) => {
    const T = cam.shape[2];
    const [rowT, totalT] = tf.tidy(() => {
      const mine = tf.slice(cam, [b, 0, 0, 0], [1, -1, -1, -1]);
      const mean = tf.reshape(tf.mean(mine, 1), [T, T]);
      return [tf.reshape(tf.slice(mean, [explained, 0], [1, T]), [T]), tf.sum(mine)];
    });
    const row = rowT.dataSync() as Float32Array;
    const total = (totalT.dataSync() as Float32Array)[0]!;
    rowT.dispose();
    totalT.dispose();
    const { data, shape, space } = ctx.model.tokenRowToMap(row, 'zero');
    return { layer, map: data, shape, space, total };
  });
}
