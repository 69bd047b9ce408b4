/**
 * Multi-head self-attention (Vaswani et al.): A = softmax(q·kᵀ/√d + mask) per head, out = proj(A·v).
 * Activations are [B, T, D]; heads are contiguous column blocks of q, k and v.
 */
import type { Ops } from '../engine/ops.js';
import { linear, linearBack, type LinearSpec } from './linear.js';
import { normalise, normaliseBack } from './normalisers.js';
import type { NormaliserName } from '../normalisers.js';

export interface AttentionSpec {
  /** One fused q | k | v projection (timm), or three (HuggingFace). */
  readonly qkv: LinearSpec | { readonly q: LinearSpec; readonly k: LinearSpec; readonly v: LinearSpec };
  readonly proj: LinearSpec;
  readonly heads: number;
  readonly headDim: number;
  /** What turns scores into attention weights (default softmax). */
  readonly normaliser?: NormaliserName;
  /** The scores' factor (default 1/√d; GPT-2 can turn it off or add 1/(layer + 1)). */
  readonly scale?: number;
}

export interface AttentionRec<V> {
  /** [B, H, ·, d] */
  readonly q: V;
  readonly k: V;
  readonly v: V;
  /** The attention weights A, [B, H, queries, T]. */
  readonly probs: V;
  /** Only the first `queries` tokens asked (see attention's `queries`). */
  readonly queries?: number;
}

const fused = (s: AttentionSpec['qkv']): s is LinearSpec => 'w' in s;
const scaleOf = (a: AttentionSpec): number => a.scale ?? 1 / Math.sqrt(a.headDim);

/** [B, T, H·d] ↔ [B, H, T, d] */
function split<V>(o: Ops<V>, a: AttentionSpec, x: V): V {
  const [B, T] = o.shape(x) as [number, number];
  return o.transpose(o.reshape(x, [B, T, a.heads, a.headDim]), [0, 2, 1, 3]);
}
function merge<V>(o: Ops<V>, a: AttentionSpec, x: V): V {
  const [B, , T] = o.shape(x) as [number, number, number];
  return o.reshape(o.transpose(x, [0, 2, 1, 3]), [B, T, a.heads * a.headDim]);
}

/**
 * With `queries`, only the first `queries` tokens ask: the output is theirs alone, [B, queries, D]
 * (keys and values still come from every token) — all a classifier's last block needs for its CLS rows.
 * `mask`: additive, broadcastable to [B, H, T, T].
 */
export function attention<V>(o: Ops<V>, a: AttentionSpec, x: V, options: { queries?: number; mask?: V } = {}): { y: V; rec: AttentionRec<V> } {
  const width = a.heads * a.headDim;
  let q: V, k: V, v: V;
  if (fused(a.qkv)) {
    const qkv = linear(o, a.qkv, x);
    [q, k, v] = [0, 1, 2].map((i) => split(o, a, o.slice(qkv, -1, i * width, (i + 1) * width))) as [V, V, V];
  } else {
    const s = a.qkv;
    [q, k, v] = [s.q, s.k, s.v].map((l) => split(o, a, linear(o, l, x))) as [V, V, V];
  }
  if (options.queries !== undefined) q = o.slice(q, 2, 0, options.queries);
  const scores = o.matmul(o.mul(q, o.scalar(scaleOf(a))), k, { transB: true });
  const probs = normalise(o, a.normaliser ?? 'softmax', options.mask ? o.add(scores, options.mask) : scores);
  const y = linear(o, a.proj, merge(o, a, o.matmul(probs, v)));
  return { y, rec: { q, k, v, probs, ...(options.queries !== undefined ? { queries: options.queries } : {}) } };
}

/** The input gradient, and ∂/∂A ([B, H, queries, T]) for the gradient-weighted methods. */
export function attentionBack<V>(o: Ops<V>, a: AttentionSpec, rec: AttentionRec<V>, dy: V): { dx: V; dProbs: V } {
  const dContext = split(o, a, linearBack(o, a.proj, dy));
  const dProbs = o.matmul(dContext, rec.v, { transB: true });
  const dv = o.matmul(rec.probs, dContext, { transA: true });
  const dScores = o.mul(normaliseBack(o, a.normaliser ?? 'softmax', rec.probs, dProbs), o.scalar(scaleOf(a)));
  let dq = o.matmul(dScores, rec.k);
  const dk = o.matmul(dScores, rec.q, { transA: true });
  // Rows that did not ask have no gradient through q.
  const T = o.shape(rec.k)[2]!;
  if (rec.queries !== undefined) dq = o.pad(dq, 2, 0, T - rec.queries);
  const [gq, gk, gv] = [dq, dk, dv].map((t) => merge(o, a, t)) as [V, V, V];
  if (fused(a.qkv)) return { dx: linearBack(o, a.qkv, o.concat([gq, gk, gv], -1)), dProbs };
  const s = a.qkv;
  return { dx: o.add(o.add(linearBack(o, s.q, gq), linearBack(o, s.k, gk)), linearBack(o, s.v, gv)), dProbs };
}
