/**
 * Attention normalisers and their Jacobian products at the output p: softmax, and the sparse maps of
 * Meister et al. (sparsemax, Martins & Astudillo; 1.5-entmax, Peters et al.). The sparse forwards are
 * engine kernels (each engine has its own exact threshold solver); everything else is plain ops.
 */
import type { Ops } from '../engine/ops.js';
import type { NormaliserName } from '../normalisers.js';

export function normalise<V>(o: Ops<V>, name: NormaliserName, x: V): V {
  return name === 'softmax' ? o.softmax(x) : o.sparseMap(x, name);
}

/** Jᵀ·dp: softmax p ⊙ (dp − Σ p ⊙ dp); sparsemax on its support S, dp − mean_S(dp); 1.5-entmax with w = √p, w ⊙ dp − w Σ(w ⊙ dp)/Σw. */
export function normaliseBack<V>(o: Ops<V>, name: NormaliserName, p: V, dp: V): V {
  if (name === 'softmax') return o.mul(p, o.sub(dp, o.sum(o.mul(p, dp), -1)));
  if (name === 'sparsemax') {
    const s = o.positive(p);
    const size = o.maximum(o.sum(s, -1), o.scalar(1));
    return o.mul(s, o.sub(dp, o.div(o.sum(o.mul(s, dp), -1), size)));
  }
  const w = o.sqrt(p);
  const wv = o.mul(w, dp);
  return o.sub(wv, o.mul(w, o.div(o.sum(wv, -1), o.maximum(o.sum(w, -1), o.scalar(1e-30)))));
}
