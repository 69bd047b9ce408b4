/**
 * RMSNorm (Zhang & Sennrich 2019), as Llama, Mistral and Qwen use it: y = w ⊙ x / √(mean(x²) + ε),
 * ε inside the root; Gemma scales by (1 + w). Its input gradient in closed form beside it.
 */
import type { Ops } from '../engine/ops.js';
import { sameRows, type BackwardContext, type Layer } from './layer.js';

export interface RmsNormSpec {
  readonly name: string;
  readonly eps: number;
  /** Gemma's x̂ ⊙ (1 + w) instead of x̂ ⊙ w. */
  readonly unitOffset?: boolean;
}

interface RmsNormRec<V> {
  readonly x: V;
  /** 1/√(mean(x²) + ε), [..., 1]. */
  readonly inv: V;
}

function scaleOf<V>(o: Ops<V>, spec: RmsNormSpec): V {
  const w = o.param(`${spec.name}.weight`);
  return spec.unitOffset ? o.add(w, o.scalar(1)) : w;
}

export function rmsNorm(spec: RmsNormSpec): Layer {
  return {
    name: spec.name,
    inputRows: sameRows,
    forward<V>(o: Ops<V>, x: V) {
      const inv = o.div(o.scalar(1), o.sqrt(o.add(o.mean(o.mul(x, x), -1), o.scalar(spec.eps))));
      return { y: o.mul(o.mul(x, inv), scaleOf(o, spec)), rec: { x, inv } satisfies RmsNormRec<V> };
    },
    /**
     * With r = 1/√(mean(x²) + ε) and g = dy ⊙ w: dx = r·g − x·r³·mean(g ⊙ x). With r held constant
     * (the identity rule, LXT's rms_norm_forward): r·g, so x ⊙ dx = y ⊙ dy.
     */
    backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V {
      const r = rec as RmsNormRec<V>;
      const g = o.mul(dy, scaleOf(o, spec));
      if (ctx?.rules?.norm === 'constant-scale') return o.mul(g, r.inv);
      const r3 = o.mul(o.mul(r.inv, r.inv), r.inv);
      return o.sub(o.mul(g, r.inv), o.mul(o.mul(r.x, r3), o.mean(o.mul(g, r.x), -1)));
    },
  };
}
