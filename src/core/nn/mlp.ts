/** The transformer MLP, fc2(f(fc1(x))), and the gated one of Llama-style decoders, down(f(gate(x)) ⊙ up(x)). */
import type { Ops } from '../engine/ops.js';
import { activate, activateBack, type Activation } from './activations.js';
import { linear, linearBack, type LinearSpec } from './linear.js';
import type { BackwardRules } from './layer.js';

export interface MlpSpec {
  readonly fc1: LinearSpec;
  readonly fc2: LinearSpec;
  readonly activation: Activation;
}

export interface MlpRec<V> {
  /** fc1's output, the activation's input. */
  readonly pre: V;
}

export function mlp<V>(o: Ops<V>, m: MlpSpec, x: V): { y: V; rec: MlpRec<V> } {
  const pre = linear(o, m.fc1, x);
  return { y: linear(o, m.fc2, activate(o, m.activation, pre)), rec: { pre } };
}

export function mlpBack<V>(o: Ops<V>, m: MlpSpec, rec: MlpRec<V>, dy: V, rules?: BackwardRules): V {
  if (rules) throw new Error(`the ungated MLP has no relevance form yet (rule set ${rules.id})`);
  return linearBack(o, m.fc1, activateBack(o, m.activation, rec.pre, linearBack(o, m.fc2, dy)));
}

/** SwiGLU (f = SiLU: Llama, Mistral, Qwen) or GeGLU (f = tanh GELU: Gemma), Shazeer 2020. */
export interface GatedMlpSpec {
  readonly gate: LinearSpec;
  readonly up: LinearSpec;
  readonly down: LinearSpec;
  readonly activation: Activation;
}

export interface GatedMlpRec<V> {
  /** gate's output, the activation's input, and up's output. */
  readonly pre: V;
  readonly up: V;
}

export function gatedMlp<V>(o: Ops<V>, m: GatedMlpSpec, x: V): { y: V; rec: GatedMlpRec<V> } {
  const pre = linear(o, m.gate, x);
  const up = linear(o, m.up, x);
  return { y: linear(o, m.down, o.mul(activate(o, m.activation, pre), up)), rec: { pre, up } };
}

/** LXT's identity_rule_implicit: f(x)/(x + ε) carries dy across f, so x ⊙ dx = f(x) ⊙ dy. */
const IDENTITY_EPS = 1e-10;

export function gatedMlpBack<V>(o: Ops<V>, m: GatedMlpSpec, rec: GatedMlpRec<V>, dy: V, rules?: BackwardRules): V {
  const dh = linearBack(o, m.down, dy);
  const act = activate(o, m.activation, rec.pre);
  const gate = rules?.gate ?? 'gradient';
  // CP-LRP: the gate is a constant; relevance flows through up alone.
  if (gate === 'stop') return linearBack(o, m.up, o.mul(dh, act));
  if (gate === 'identity-uniform') {
    // gate ⊙ up by the uniform rule (½ to each factor), then f by the identity rule.
    const half = o.mul(dh, o.scalar(0.5));
    const dPre = o.mul(o.mul(half, rec.up), o.div(act, o.add(rec.pre, o.scalar(IDENTITY_EPS))));
    return o.add(linearBack(o, m.gate, dPre), linearBack(o, m.up, o.mul(half, act)));
  }
  const dPre = activateBack(o, m.activation, rec.pre, o.mul(dh, rec.up));
  return o.add(linearBack(o, m.gate, dPre), linearBack(o, m.up, o.mul(dh, act)));
}
