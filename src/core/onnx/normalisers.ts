/**
 * The sparse attention maps as ONNX nodes, for the tracing interpreter (engine/trace.ts): the exact
 * sort-based thresholds of normalisers.ts's device solvers, node for node.
 */
import type { GraphBuilder } from './proto.js';
import type { NormaliserName } from '../normalisers.js';

/**
 * Row-wise normaliser over the last axis (`n` entries). The sparse maps are normalisers.ts's device
 * solvers (the exact sort-based thresholds: TopK, cumulative sums), node for node, with τ in float64
 * as the host solver finds it.
 */
export function normalise(g: GraphBuilder, name: NormaliserName, x: string, n: number): string {
  if (name === 'softmax') return g.op('Softmax', [x], { axis: -1 });
  const entmax = name === 'entmax15';
  const shifted = g.op('Sub', [x, g.op('ReduceMax', [x], { axes: [-1], keepdims: 1 })]);
  const z = entmax ? g.op('Div', [shifted, g.scalar(2)]) : shifted;
  const [values] = g.node('TopK', [z, g.ints([n])], { axis: -1, largest: 1, sorted: 1 }, 2);
  // float64 from here: the cumulative moments of a row of n float32 values lose ~n ulp in float32,
  // which wide supports turn into 1e-5 of a logit.
  const double = (v: string) => g.op('Cast', [v], { to: 11 });
  const d = (v: number) => g.constant('d', Float64Array.of(v), []);
  const sorted = double(g.op('Max', [values!, g.scalar(-2)]));
  const k = g.constant('k', Float64Array.from({ length: n }, (_, i) => i + 1), [n]);
  const axis = g.constant('axis', BigInt64Array.of(-1n), []);
  const rowSum = (v: string) => g.op('ReduceSum', [v, g.ints([-1])], { keepdims: 1 });
  const rowMax = (v: string) => g.op('ReduceMax', [v], { axes: [-1], keepdims: 1 });
  let tau: string;
  if (!entmax) {
    const inSupport = g.op('Greater', [g.op('Add', [g.op('Mul', [k, sorted]), d(1)]), g.op('CumSum', [sorted, axis])]);
    const kStar = rowMax(g.op('Mul', [double(inSupport), k]));
    tau = g.op('Div', [g.op('Sub', [rowSum(g.op('Mul', [double(g.op('LessOrEqual', [k, kStar])), sorted])), d(1)]), kStar]);
  } else {
    const mean = g.op('Div', [g.op('CumSum', [sorted, axis]), k]);
    const meanSq = g.op('Div', [g.op('CumSum', [g.op('Mul', [sorted, sorted]), axis]), k]);
    const ss = g.op('Mul', [k, g.op('Sub', [meanSq, g.op('Mul', [mean, mean])])]);
    const delta = g.op('Div', [g.op('Sub', [d(1), ss]), k]);
    const taus = g.op('Sub', [mean, g.op('Sqrt', [g.op('Max', [delta, d(0)])])]);
    const kStar = rowMax(g.op('Mul', [double(g.op('LessOrEqual', [taus, sorted])), k]));
    tau = rowSum(g.op('Mul', [double(g.op('Equal', [k, kStar])), taus]));
  }
  const gap = g.op('Relu', [g.op('Sub', [z, g.op('Cast', [tau], { to: 1 })])]);
  const p = entmax ? g.op('Mul', [gap, gap]) : gap;
  // As the device solvers finish: rows renormalised.
  return g.op('Div', [p, rowSum(p)]);
}
