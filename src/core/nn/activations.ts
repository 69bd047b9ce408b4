/** Elementwise activations and their derivatives, side by side. */
import type { Ops } from '../engine/ops.js';

export type Activation = 'gelu' | 'gelu-tanh' | 'relu' | 'silu';

/** σ(x) = 1/(1 + e^−x). */
const sigmoid = <V>(o: Ops<V>, x: V): V => o.div(o.scalar(1), o.add(o.exp(o.mul(x, o.scalar(-1))), o.scalar(1)));

const GELU_TANH_C = Math.sqrt(2 / Math.PI);

export function activate<V>(o: Ops<V>, kind: Activation, x: V): V {
  if (kind === 'relu') return o.relu(x);
  // SiLU (swish), Llama's gate: x·σ(x).
  if (kind === 'silu') return o.mul(x, sigmoid(o, x));
  if (kind === 'gelu') return o.mul(o.mul(x, o.scalar(0.5)), o.add(o.erf(o.mul(x, o.scalar(Math.SQRT1_2))), o.scalar(1)));
  // GPT-2's tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
  const inner = o.mul(o.add(x, o.mul(o.mul(o.mul(x, x), x), o.scalar(0.044715))), o.scalar(GELU_TANH_C));
  return o.mul(o.mul(x, o.scalar(0.5)), o.add(o.tanh(inner), o.scalar(1)));
}

/** dy ⊙ f′(x) at the recorded input x. */
export function activateBack<V>(o: Ops<V>, kind: Activation, x: V, dy: V): V {
  if (kind === 'relu') return o.mul(dy, o.positive(x));
  if (kind === 'silu') {
    // σ(x)·(1 + x·(1 − σ(x)))
    const s = sigmoid(o, x);
    return o.mul(dy, o.mul(s, o.add(o.mul(x, o.sub(o.scalar(1), s)), o.scalar(1))));
  }
  if (kind === 'gelu') {
    // Φ(x) + x·φ(x)
    const cdf = o.mul(o.add(o.erf(o.mul(x, o.scalar(Math.SQRT1_2))), o.scalar(1)), o.scalar(0.5));
    const pdf = o.mul(o.exp(o.mul(o.mul(x, x), o.scalar(-0.5))), o.scalar(1 / Math.sqrt(2 * Math.PI)));
    return o.mul(dy, o.add(cdf, o.mul(x, pdf)));
  }
  // d/dx of 0.5·x·(1 + t), t = tanh(u), u = c·(x + a·x³): 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3a·x²).
  const x2 = o.mul(x, x);
  const t = o.tanh(o.mul(o.add(x, o.mul(o.mul(x2, x), o.scalar(0.044715))), o.scalar(GELU_TANH_C)));
  const du = o.mul(o.add(o.mul(x2, o.scalar(3 * 0.044715)), o.scalar(1)), o.scalar(GELU_TANH_C));
  const half = o.scalar(0.5);
  const d = o.add(o.mul(o.add(t, o.scalar(1)), half), o.mul(o.mul(o.mul(x, half), o.sub(o.scalar(1), o.mul(t, t))), du));
  return o.mul(dy, d);
}
