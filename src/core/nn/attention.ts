/**
 * Multi-head self-attention (Vaswani et al.): A = softmax(q·kᵀ/√d + mask) per head, out = proj(A·v).
 * Activations are [B, T, D]; heads are contiguous column blocks of q, k and v.
 */
import type { Ops } from '../engine/ops.js';
import { linear, linearBack, type LinearSpec } from './linear.js';
import { normalise, normaliseBack } from './normalisers.js';
import type { NormaliserName } from '../normalisers.js';
import { rope, ropeBack, type RopeInputs } from './rope.js';
import type { BackwardRules } from './layer.js';
import { rmsNorm, type RmsNormSpec } from './rmsnorm.js';
import { softcap, softcapBack } from './scale.js';

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
  /**
   * Grouped-query attention (Ainslie et al. 2023): k and v have this many heads, each shared by
   * heads / kvHeads query heads in order, as HF's repeat_kv (default: heads).
   */
  readonly kvHeads?: number;
  /** Rotary embeddings on q and k (Llama-style decoders). */
  readonly rope?: RopeInputs;
  /** Per-head RMSNorm of q and of k over the head's features, before RoPE (Gemma 3, Qwen3). */
  readonly qkNorm?: { readonly q: RmsNormSpec; readonly k: RmsNormSpec };
  /** Soft-capped scores, c·tanh(s/c), before the mask (Gemma 2). */
  readonly softcap?: number;
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
  /** The q and k norms' records, and the soft cap's tanh. */
  readonly qNorm?: unknown;
  readonly kNorm?: unknown;
  readonly capped?: V;
}

const fused = (s: AttentionSpec['qkv']): s is LinearSpec => 'w' in s;
const scaleOf = (a: AttentionSpec): number => a.scale ?? 1 / Math.sqrt(a.headDim);

/** [B, T, H·d] ↔ [B, H, T, d] */
function split<V>(o: Ops<V>, a: AttentionSpec, x: V, heads = a.heads): V {
  const [B, T] = o.shape(x) as [number, number];
  return o.transpose(o.reshape(x, [B, T, heads, a.headDim]), [0, 2, 1, 3]);
}

const kvHeadsOf = (a: AttentionSpec): number => a.kvHeads ?? a.heads;

/** [B, KV, T, d] → [B, H, T, d]: kv head j serves query heads j·r … j·r + r − 1 (HF's repeat_kv). */
function repeatKv<V>(o: Ops<V>, a: AttentionSpec, x: V): V {
  const kv = kvHeadsOf(a);
  if (kv === a.heads) return x;
  const [B, , T, d] = o.shape(x) as [number, number, number, number];
  const r = a.heads / kv;
  return o.reshape(o.broadcast(o.reshape(x, [B, kv, 1, T, d]), [B, kv, r, T, d]), [B, a.heads, T, d]);
}

/** repeat_kv's transpose: each kv head's gradient sums over the query heads it served. */
function repeatKvBack<V>(o: Ops<V>, a: AttentionSpec, dx: V): V {
  const kv = kvHeadsOf(a);
  if (kv === a.heads) return dx;
  const [B, , T, d] = o.shape(dx) as [number, number, number, number];
  return o.reshape(o.sum(o.reshape(dx, [B, kv, a.heads / kv, T, d]), 2), [B, kv, T, d]);
}
function merge<V>(o: Ops<V>, a: AttentionSpec, x: V): V {
  const [B, H, T] = o.shape(x) as [number, number, number];
  return o.reshape(o.transpose(x, [0, 2, 1, 3]), [B, T, H * a.headDim]);
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
    const kv = kvHeadsOf(a);
    [q, k, v] = [split(o, a, linear(o, s.q, x)), split(o, a, linear(o, s.k, x), kv), split(o, a, linear(o, s.v, x), kv)];
  }
  let qNorm: unknown, kNorm: unknown;
  if (a.qkNorm) {
    const [nq, nk] = [rmsNorm(a.qkNorm.q).forward(o, q), rmsNorm(a.qkNorm.k).forward(o, k)];
    [q, k, qNorm, kNorm] = [nq.y, nk.y, nq.rec, nk.rec];
  }
  if (a.rope) [q, k] = [rope(o, a.rope, q), rope(o, a.rope, k)];
  [k, v] = [repeatKv(o, a, k), repeatKv(o, a, v)];
  if (options.queries !== undefined) q = o.slice(q, 2, 0, options.queries);
  let scores = o.matmul(o.mul(q, o.scalar(scaleOf(a))), k, { transB: true });
  let capped: V | undefined;
  if (a.softcap !== undefined) ({ y: scores, t: capped } = softcap(o, a.softcap, scores));
  const probs = normalise(o, a.normaliser ?? 'softmax', options.mask ? o.add(scores, options.mask) : scores);
  const y = linear(o, a.proj, merge(o, a, o.matmul(probs, v)));
  return { y, rec: { q, k, v, probs, ...(options.queries !== undefined ? { queries: options.queries } : {}), ...(a.qkNorm ? { qNorm, kNorm } : {}), ...(capped ? { capped } : {}) } };
}

/** The input gradient, and ∂/∂A ([B, H, queries, T]) for the gradient-weighted methods. */
export function attentionBack<V>(o: Ops<V>, a: AttentionSpec, rec: AttentionRec<V>, dy: V, rules?: BackwardRules): { dx: V; dProbs: V } {
  const dContext = split(o, a, linearBack(o, a.proj, dy));
  const dProbs = o.matmul(dContext, rec.v, { transB: true });
  let dv = o.matmul(rec.probs, dContext, { transA: true });
  const rule = rules?.attention ?? 'gradient';
  if (rule === 'values-only') {
    // CP-LRP: A is a constant, so q and k get nothing.
    if (fused(a.qkv)) throw new Error(`CP-LRP through a fused qkv projection has no form yet (rule set ${rules!.id})`);
    return { dx: linearBack(o, a.qkv.v, merge(o, a, repeatKvBack(o, a, dv))), dProbs };
  }
  // AttnLRP's uniform rule on Q·Kᵀ (½ to each) under the softmax's gradient, and on A·V (½ to v),
  // as LXT divides q and k by 4 and v by 2 at the attention function's inputs.
  if (rule === 'uniform') dv = o.mul(dv, o.scalar(0.5));
  let dCapped = normaliseBack(o, a.normaliser ?? 'softmax', rec.probs, dProbs);
  if (rec.capped) {
    if (rules) throw new Error(`soft-capped attention has no '${rules.id}' form (LXT defines none)`);
    dCapped = softcapBack(o, rec.capped, dCapped);
  }
  const dScores = o.mul(dCapped, o.scalar(scaleOf(a)));
  let dq = o.matmul(dScores, rec.k);
  let dk = o.matmul(dScores, rec.q, { transA: true });
  if (rule === 'uniform') [dq, dk] = [o.mul(dq, o.scalar(0.25)), o.mul(dk, o.scalar(0.25))];
  // Rows that did not ask have no gradient through q.
  const T = o.shape(rec.k)[2]!;
  if (rec.queries !== undefined) dq = o.pad(dq, 2, 0, T - rec.queries);
  let [dkKv, dvKv] = [repeatKvBack(o, a, dk), repeatKvBack(o, a, dv)];
  if (a.rope) [dq, dkKv] = [ropeBack(o, a.rope, dq), ropeBack(o, a.rope, dkKv)];
  if (a.qkNorm) {
    const ctx = rules ? { rules } : undefined;
    [dq, dkKv] = [rmsNorm(a.qkNorm.q).backward(o, rec.qNorm, dq, ctx), rmsNorm(a.qkNorm.k).backward(o, rec.kNorm, dkKv, ctx)];
  }
  const [gq, gk, gv] = [dq, dkKv, dvKv].map((t) => merge(o, a, t)) as [V, V, V];
  if (fused(a.qkv)) return { dx: linearBack(o, a.qkv, o.concat([gq, gk, gv], -1)), dProbs };
  const s = a.qkv;
  return { dx: o.add(o.add(linearBack(o, s.q, gq), linearBack(o, s.k, gk)), linearBack(o, s.v, gv)), dProbs };
}
