/**
 * The transformer layers as ONNX nodes, mirroring models/layers.ts and ops.ts op for op, so a whole
 * forward pass can run as one ONNX Runtime session (onnx/predict.ts). Activations are [B, T, D]
 * throughout (ONNX's MatMul broadcasts over the leading axes), where the tfjs code flattens to [B·T, D].
 */
import type { GraphBuilder } from './proto.js';
import type { LayerNorm, Linear } from '../ops.js';
import type { Attention, Mlp } from '../models/layers.js';
import type { NormaliserName } from '../normalisers.js';

const data = (t: { dataSync(): ArrayLike<number> }) => Float32Array.from(t.dataSync());

export function linear(g: GraphBuilder, layer: Linear, x: string): string {
  const y = g.op('MatMul', [x, g.constant(`${layer.name}.w`, data(layer.wT), layer.wT.shape)]);
  return layer.b ? g.op('Add', [y, g.constant(`${layer.name}.b`, data(layer.b), layer.b.shape)]) : y;
}

export function layerNorm(g: GraphBuilder, ln: LayerNorm, x: string): string {
  return g.op('LayerNormalization', [x, g.constant(`${ln.name}.g`, data(ln.gamma), ln.gamma.shape), g.constant(`${ln.name}.b`, data(ln.beta), ln.beta.shape)], {
    axis: -1,
    epsilon: { float: ln.eps },
  });
}

/** Exact GELU, x·½(1 + erf(x/√2)), or GPT-2's tanh form. */
export function gelu(g: GraphBuilder, x: string, form: 'gelu' | 'gelu-tanh' = 'gelu'): string {
  if (form === 'gelu') {
    const cdf = g.op('Add', [g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]), g.scalar(1)]);
    return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), cdf]);
  }
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [g.op('Mul', [g.op('Mul', [x, x]), x]), g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
}

export function mlp(g: GraphBuilder, layer: Mlp, x: string): string {
  return linear(g, layer.fc2, gelu(g, linear(g, layer.fc1, x), layer.activation));
}

/**
 * Row-wise normaliser over the last axis (`n` entries). The sparse maps are normalisers.ts's device
 * solvers (the exact sort-based thresholds: TopK, cumulative sums), node for node.
 */
export function normalise(g: GraphBuilder, name: NormaliserName, x: string, n: number): string {
  if (name === 'softmax') return g.op('Softmax', [x], { axis: -1 });
  const entmax = name === 'entmax15';
  const shifted = g.op('Sub', [x, g.op('ReduceMax', [x], { axes: [-1], keepdims: 1 })]);
  const z = entmax ? g.op('Div', [shifted, g.scalar(2)]) : shifted;
  const [values] = g.node('TopK', [z, g.ints([n])], { axis: -1, largest: 1, sorted: 1 }, 2);
  // τ in float64, as the host solver finds it: the cumulative moments of a row of n float32 values
  // lose ~n ulp in float32, which wide supports turn into 1e-5 of a logit.
  const double = (v: string) => g.op('Cast', [v], { to: 11 });
  const dscalar = (v: number) => g.constant('d', Float64Array.of(v), []);
  const sorted = double(g.op('Max', [values!, g.scalar(-2)]));
  const k = g.constant('k', Float64Array.from({ length: n }, (_, i) => i + 1), [n]);
  const axis = g.constant('axis', BigInt64Array.of(-1n), []);
  const rowSum = (v: string) => g.op('ReduceSum', [v, g.ints([-1])], { keepdims: 1 });
  const rowMax = (v: string) => g.op('ReduceMax', [v], { axes: [-1], keepdims: 1 });
  const asDouble = (v: string) => g.op('Cast', [v], { to: 11 });
  let tau: string;
  if (!entmax) {
    const cumulative = g.op('CumSum', [sorted, axis]);
    const inSupport = g.op('Greater', [g.op('Add', [g.op('Mul', [k, sorted]), dscalar(1)]), cumulative]);
    const kStar = rowMax(g.op('Mul', [asDouble(inSupport), k]));
    tau = g.op('Div', [g.op('Sub', [rowSum(g.op('Mul', [asDouble(g.op('LessOrEqual', [k, kStar])), sorted])), dscalar(1)]), kStar]);
  } else {
    const mean = g.op('Div', [g.op('CumSum', [sorted, axis]), k]);
    const meanSq = g.op('Div', [g.op('CumSum', [g.op('Mul', [sorted, sorted]), axis]), k]);
    const ss = g.op('Mul', [k, g.op('Sub', [meanSq, g.op('Mul', [mean, mean])])]);
    const delta = g.op('Div', [g.op('Sub', [dscalar(1), ss]), k]);
    const taus = g.op('Sub', [mean, g.op('Sqrt', [g.op('Max', [delta, dscalar(0)])])]);
    const kStar = rowMax(g.op('Mul', [asDouble(g.op('LessOrEqual', [taus, sorted])), k]));
    tau = rowSum(g.op('Mul', [asDouble(g.op('Equal', [k, kStar])), taus]));
  }
  const d = g.op('Relu', [g.op('Sub', [z, g.op('Cast', [tau], { to: 1 })])]);
  const p = entmax ? g.op('Mul', [d, d]) : d;
  // As the device solvers finish: τ carries float32 rounding, so rows are renormalised.
  return g.op('Div', [p, rowSum(p)]);
}

/**
 * Multi-head self-attention on [B, T, D]: q | k | v from one projection (each head contiguous), the
 * scaled scores plus an additive `mask` broadcastable to [B, H, T, T], normalised, then the
 * context's output projection.
 */
export function attention(g: GraphBuilder, layer: Attention, x: string, tokens: number, mask?: string): string {
  const { heads, headDim: d } = layer;
  const qkv = linear(g, layer.qkv, x);
  // [B, T, 3·H·d] → [3, B, H, T, d]
  const byHead = g.op('Transpose', [g.op('Reshape', [qkv, g.ints([0, 0, 3, heads, d])])], { perm: [2, 0, 3, 1, 4] });
  const [q, k, v] = [0, 1, 2].map((i) => g.op('Gather', [byHead, g.constant('which', BigInt64Array.of(BigInt(i)), [])], { axis: 0 }));
  let scores = g.op('Mul', [g.op('MatMul', [q!, g.op('Transpose', [k!], { perm: [0, 1, 3, 2] })]), g.scalar(layer.scale)]);
  if (mask) scores = g.op('Add', [scores, mask]);
  const probs = normalise(g, layer.normaliser ?? 'softmax', scores, tokens);
  const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v!])], { perm: [0, 2, 1, 3] }), g.ints([0, 0, heads * d])]);
  return linear(g, layer.proj, context);
}
