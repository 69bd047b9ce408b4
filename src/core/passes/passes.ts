/**
 * The passes, written once for every family: a network is its layer list (families/), and each pass
 * is a loop over it. Given to a runner (engine/), a pass runs eagerly or as one traced native graph.
 */
import type { Ops, Pass } from '../engine/ops.js';
import type { BackwardContext, Layer } from '../nn/layer.js';
import type { Network } from '../nn/network.js';

export type { Network } from '../nn/network.js';


/**
 * How many leading token rows each layer must output so that the last layer gets what it reads
 * (undefined: all): a classifier's head reads only its prefix rows, so the last block computes only those.
 */
function rowPlan(layers: readonly Layer[], from: number): Array<number | undefined> {
  const plan: Array<number | undefined> = new Array(layers.length).fill(undefined);
  let need: number | undefined = undefined;
  for (let i = layers.length - 1; i >= from; i--) {
    plan[i] = need;
    need = layers[i]!.inputRows(need);
  }
  return plan;
}

export interface Recorded<V> {
  readonly y: V;
  /** Each layer's record, in layer order. */
  readonly recs: readonly unknown[];
}

/**
 * The forward pass from layer `from` on, with every layer's record (recs[i] for layer i);
 * `lean`: compute only the rows the output depends on.
 */
export function forward<V>(o: Ops<V>, net: Network, x: V, from = 0, lean = true): Recorded<V> {
  const plan = lean ? rowPlan(net.layers, from) : [];
  const recs: unknown[] = [];
  let h = x;
  for (let i = from; i < net.layers.length; i++) {
    const f = net.layers[i]!.forward(o, h, plan[i]);
    recs[i] = f.rec;
    h = f.y;
  }
  return { y: h, recs };
}

/** ∂(Σ seed ⊙ y)/∂x at layer `to`'s input, layer by layer from the records of `fwd`. */
export function backward<V>(o: Ops<V>, net: Network, fwd: Recorded<V>, seed: V, to = 0, ctx?: BackwardContext<V>, onLayer?: (i: number, dIn: V) => void): V {
  let d = seed;
  for (let i = net.layers.length - 1; i >= to; i--) {
    d = net.layers[i]!.backward(o, fwd.recs[i], d, ctx);
    onLayer?.(i, d);
  }
  return d;
}

/** Pass inputs: `x` the model input; `seed` [B, classes] the logit weights (e_target, or e_t − e_c). */
export const predictPass =
  (net: Network): Pass =>
  (o) => ({ logits: forward(o, net, o.input('x')).y });

export const inputGradientPass =
  (net: Network): Pass =>
  (o) => {
    const from = net.differentiableFrom ?? 0;
    const fwd = forward(o, net, o.input('x'), from);
    return { logits: fwd.y, gradient: backward(o, net, fwd, o.input('seed'), from) };
  };
