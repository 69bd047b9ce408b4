/**
 * Rotary position embeddings (Su et al. 2021) in HuggingFace's rotate-half form: the head's first and
 * second halves are the pairs, x' = x ⊙ cos + rotate_half(x) ⊙ sin with rotate_half([a, b]) = [−b, a].
 * Meta's checkpoints pair adjacent features instead; HF's conversion permutes the q/k rows so that
 * this form computes the same scores. cos and sin are pass inputs [B, 1, T, d], from the positions
 * and the checkpoint's rope parameters (families/), so scaling schemes never reach the graph.
 */
import type { Ops } from '../engine/ops.js';

export interface RopeInputs {
  readonly cos: string;
  readonly sin: string;
}

/** [a, b] → [−b, a] over the last axis, d even. */
function rotateHalf<V>(o: Ops<V>, x: V): V {
  const d = o.shape(x).at(-1)!;
  return o.concat([o.mul(o.slice(x, -1, d / 2, d), o.scalar(-1)), o.slice(x, -1, 0, d / 2)], -1);
}

/** rotate_half's transpose: [a, b] → [b, −a]. */
function rotateHalfT<V>(o: Ops<V>, x: V): V {
  const d = o.shape(x).at(-1)!;
  return o.concat([o.slice(x, -1, d / 2, d), o.mul(o.slice(x, -1, 0, d / 2), o.scalar(-1))], -1);
}

/** x [B, H, T, d], only the first `rows` positions when given (queries of a lean pass). */
export function rope<V>(o: Ops<V>, r: RopeInputs, x: V, rows?: number): V {
  const [cos, sin] = [o.input(r.cos), o.input(r.sin)].map((t) => (rows === undefined ? t : o.slice(t, 2, 0, rows))) as [V, V];
  return o.add(o.mul(x, cos), o.mul(rotateHalf(o, x), sin));
}

/** ∂/∂x of rope: dy ⊙ cos + rotate_halfᵀ(dy ⊙ sin). */
export function ropeBack<V>(o: Ops<V>, r: RopeInputs, dy: V, rows?: number): V {
  const [cos, sin] = [o.input(r.cos), o.input(r.sin)].map((t) => (rows === undefined ? t : o.slice(t, 2, 0, rows))) as [V, V];
  return o.add(o.mul(dy, cos), rotateHalfT(o, o.mul(dy, sin)));
}
