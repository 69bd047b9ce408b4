/**
 * y = x·Wᵀ + b with W in PyTorch's [out, in] layout, read as it is stored (the product takes it
 * transposed), over any leading axes.
 */
import type { Ops } from '../engine/ops.js';

export interface LinearSpec {
  /** Weight names: `w` [out, in], `b` [out] or none. */
  readonly w: string;
  readonly b?: string;
}

export const linearSpec = (name: string, bias = true): LinearSpec => ({ w: `${name}.weight`, ...(bias ? { b: `${name}.bias` } : {}) });

/** [..., in] → [..., out], as one 2-D product on the flattened rows. */
export function linear<V>(o: Ops<V>, l: LinearSpec, x: V): V {
  const shape = o.shape(x);
  const w = o.param(l.w);
  const rows = o.reshape(x, [-1, shape[shape.length - 1]!]);
  const y = o.matmul(rows, w, { transB: true });
  const out = o.reshape(l.b ? o.add(y, o.param(l.b)) : y, [...shape.slice(0, -1), o.shape(w)[0]!]);
  return out;
}

/** ∂/∂x: dy·W. */
export function linearBack<V>(o: Ops<V>, l: LinearSpec, dy: V): V {
  const shape = o.shape(dy);
  const w = o.param(l.w);
  const dx = o.matmul(o.reshape(dy, [-1, shape[shape.length - 1]!]), w);
  return o.reshape(dx, [...shape.slice(0, -1), o.shape(w)[1]!]);
}
