// Token inputs and comparisons the decoder tests share.
import { tf } from '../../src/core/tf.js';
import type { TokenInput } from '../../src/core/models/types.js';

/** Sequences right-padded with id 0 into one batch, mask 0 on the padding. */
export function batchOf(...seqs: number[][]): TokenInput {
  const T = Math.max(...seqs.map((s) => s.length));
  return {
    kind: 'tokens',
    ids: tf.tensor2d(seqs.flatMap((s) => [...s, ...Array(T - s.length).fill(0)]), [seqs.length, T], 'int32'),
    attentionMask: tf.tensor2d(seqs.flatMap((s) => [...s.map(() => 1), ...Array(T - s.length).fill(0)]), [seqs.length, T], 'int32'),
  };
}
export const free = (t: TokenInput): void => tf.dispose([t.ids, t.attentionMask]);
export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
export const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
