/** LayerNorm over the last axis (Ba et al.), and its input gradient in closed form. */
import type { Ops } from '../engine/ops.js';
import { sameRows, type BackwardContext, type Layer } from './layer.js';

export interface LayerNormSpec {
  readonly name: string;
  readonly eps: number;
}

interface LayerNormRec<V> {
  readonly x: V;
  readonly mean: V;
  readonly invStd: V;
}

export function layerNorm(spec: LayerNormSpec): Layer {
  return {
    name: spec.name,
    inputRows: sameRows,
    forward<V>(o: Ops<V>, x: V) {
      const { y, mean, invStd } = o.layerNorm(x, o.param(`${spec.name}.weight`), o.param(`${spec.name}.bias`), spec.eps);
      return { y, rec: { x, mean, invStd } satisfies LayerNormRec<V> };
    },
    /** With x̂ = (x − μ)/σ and g = dy ⊙ γ: dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))/σ. */
    backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V {
      if (ctx?.rules && ctx.rules.norm !== 'gradient') throw new Error(`LayerNorm has no '${ctx.rules.norm}' form yet (rule set ${ctx.rules.id})`);
      const r = rec as LayerNormRec<V>;
      const xhat = o.mul(o.sub(r.x, r.mean), r.invStd);
      const g = o.mul(dy, o.param(`${spec.name}.weight`));
      const inner = o.sub(o.sub(g, o.mean(g, -1)), o.mul(xhat, o.mean(o.mul(g, xhat), -1)));
      return o.mul(inner, r.invStd);
    },
  };
}
