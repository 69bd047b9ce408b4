/** Small helpers the method files share. */
import { tf, type Tensor } from '../tf.js';
import type { ExplainContext } from '../context.js';
import type { LedgerEntry } from '../relevance/ledger.js';
import type { Explanation, MethodOptions } from './types.js';
import type { MapSpace } from '../models/types.js';

/** Download a [B, …] tensor as one Float32Array per sample. */
export function perSample(t: Tensor, batch: number): Float32Array[] {
  const flat = t.dataSync() as Float32Array;
  const n = flat.length / batch;
  return Array.from({ length: batch }, (_, b) => flat.slice(b * n, (b + 1) * n));
}

/** Compute a [B, …] tensor, download it per sample, and free it. */
export function computePerSample(fn: () => Tensor, batch: number): Float32Array[] {
  const t = tf.tidy(fn);
  try {
    return perSample(t, batch);
  } finally {
    t.dispose();
  }
}

/** Mean over heads of clamp₀(x) for a [B, H, T, T] tensor, per sample as a flat T·T array. */
export function positiveHeadMean(x: Tensor, batch: number): Float32Array[] {
  return computePerSample(() => tf.mean(tf.relu(x), 1), batch);
}

export function result(
  ctx: ExplainContext,
  b: number,
  fields: { method: string; target: number; map: Float32Array; shape: readonly number[]; space: MapSpace; options: MethodOptions; ledger?: readonly LedgerEntry[] | null },
): Explanation {
  return { ledger: null, ...fields, logits: ctx.logits()[b]!, ...(ctx.contrast ? { contrast: ctx.contrast[b]! } : {}) };
}
