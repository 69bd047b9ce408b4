/** The transformer MLP: fc2(f(fc1(x))). */
import type { Ops } from '../engine/ops.js';
import { activate, activateBack, type Activation } from './activations.js';
import { linear, linearBack, type LinearSpec } from './linear.js';

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

export function mlpBack<V>(o: Ops<V>, m: MlpSpec, rec: MlpRec<V>, dy: V): V {
  return linearBack(o, m.fc1, activateBack(o, m.activation, rec.pre, linearBack(o, m.fc2, dy)));
}
