/**
 * Elementwise layers of Gemma-style decoders: a constant scale (the embeddings times √d) and soft
 * capping, c·tanh(x/c) (Gemma 2's logits), each with its backward.
 */
import type { Ops } from '../engine/ops.js';
import { sameRows, type BackwardContext, type Layer } from './layer.js';

/** y = c·x: linear, so its relevance rule is its gradient. */
export function scaleLayer(name: string, factor: number): Layer {
  return {
    name,
    inputRows: sameRows,
    forward<V>(o: Ops<V>, x: V) {
      return { y: o.mul(x, o.scalar(factor)), rec: null };
    },
    backward<V>(o: Ops<V>, _rec: unknown, dy: V): V {
      return o.mul(dy, o.scalar(factor));
    },
  };
}

/** c·tanh(x/c) and its derivative 1 − tanh²(x/c), from the recorded tanh. */
export function softcap<V>(o: Ops<V>, c: number, x: V): { y: V; t: V } {
  const t = o.tanh(o.mul(x, o.scalar(1 / c)));
  return { y: o.mul(t, o.scalar(c)), t };
}
export function softcapBack<V>(o: Ops<V>, t: V, dy: V): V {
  return o.mul(dy, o.sub(o.scalar(1), o.mul(t, t)));
}

export function softcapLayer(name: string, c: number): Layer {
  return {
    name,
    inputRows: sameRows,
    forward<V>(o: Ops<V>, x: V) {
      const { y, t } = softcap(o, c, x);
      return { y, rec: t };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V {
      // LXT defines no rule for soft capping: refuse rather than guess one.
      if (ctx?.rules) throw new Error(`soft capping has no '${ctx.rules.id}' form (LXT defines none)`);
      return softcapBack(o, rec as V, dy);
    },
  };
}
