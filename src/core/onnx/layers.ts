/**
 * The transformer layers as ONNX nodes, mirroring models/layers.ts and ops.ts op for op, so a whole
 * forward pass — and, for gradients, the hand-written backward pass after it — can run as one ONNX
 * Runtime session (onnx/run.ts). Activations are [B, T, D] throughout (ONNX's MatMul broadcasts
 * over the leading axes), where the tfjs code flattens to [B·T, D]. Forward helpers return the
 * values their backward counterparts read, as the tfjs records do.
 */
import type { GraphBuilder } from './proto.js';
import type { LayerNorm, Linear } from '../ops.js';
import type { Attention, Mlp } from '../models/layers.js';
import type { NormaliserName } from '../normalisers.js';

export function linear(g: GraphBuilder, layer: Linear, x: string): string {
  const y = g.op('MatMul', [x, g.weight(`${layer.name}.w`, layer.wT)]);
  return layer.b ? g.op('Add', [y, g.weight(`${layer.name}.b`, layer.b)]) : y;
}

/** ∂/∂x of x·Wᵀ + b: dy·W. */
export function linearBack(g: GraphBuilder, layer: Linear, dy: string): string {
  return g.op('MatMul', [dy, g.transpose(g.weight(`${layer.name}.w`, layer.wT))]);
}

/** A LayerNorm's output, and the row statistics its backward pass reuses. */
export interface LayerNormNodes {
  readonly input: string;
  readonly output: string;
  readonly mean: string;
  readonly invStd: string;
}

export function layerNorm(g: GraphBuilder, ln: LayerNorm, x: string): LayerNormNodes {
  const [output, mean, invStd] = g.node('LayerNormalization', [x, g.weight(`${ln.name}.g`, ln.gamma), g.weight(`${ln.name}.b`, ln.beta)], { axis: -1, epsilon: { float: ln.eps } }, 3) as [string, string, string];
  return { input: x, output, mean, invStd };
}

/** ops.layerNormBackward: with x̂ = (x − μ)/σ and g = dy ⊙ γ, dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))/σ. */
export function layerNormBack(g: GraphBuilder, ln: LayerNorm, rec: LayerNormNodes, dy: string): string {
  const mean = (v: string) => g.op('ReduceMean', [v], { axes: [-1], keepdims: 1 });
  const xhat = g.op('Mul', [g.op('Sub', [rec.input, rec.mean]), rec.invStd]);
  const gy = g.op('Mul', [dy, g.weight(`${ln.name}.g`, ln.gamma)]);
  const inner = g.op('Sub', [g.op('Sub', [gy, mean(gy)]), g.op('Mul', [xhat, mean(g.op('Mul', [gy, xhat]))])]);
  return g.op('Mul', [inner, rec.invStd]);
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

/** ops.geluBackward (exact GELU): dy ⊙ (Φ(x) + x·φ(x)). */
function geluBack(g: GraphBuilder, x: string, dy: string): string {
  const cdf = g.op('Mul', [g.op('Add', [g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]), g.scalar(1)]), g.scalar(0.5)]);
  const pdf = g.op('Mul', [g.op('Exp', [g.op('Mul', [g.op('Mul', [x, x]), g.scalar(-0.5)])]), g.scalar(1 / Math.sqrt(2 * Math.PI))]);
  return g.op('Mul', [dy, g.op('Add', [cdf, g.op('Mul', [x, pdf])])]);
}

export interface MlpNodes {
  /** fc1's output, GELU's input. */
  readonly pre: string;
  readonly output: string;
}

export function mlp(g: GraphBuilder, layer: Mlp, x: string): MlpNodes {
  const pre = linear(g, layer.fc1, x);
  return { pre, output: linear(g, layer.fc2, gelu(g, pre, layer.activation)) };
}

/** The MLP's input gradient (exact GELU only: the gradient graphs serve ViT and BERT). */
export function mlpBack(g: GraphBuilder, layer: Mlp, rec: MlpNodes, dy: string): string {
  return linearBack(g, layer.fc1, geluBack(g, rec.pre, linearBack(g, layer.fc2, dy)));
}

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

/** The normalisers' Jacobian products at their output p (normalisers.ts: softmaxJvp, sparseJvp). */
function normaliseBack(g: GraphBuilder, name: NormaliserName, p: string, dp: string): string {
  const rowSum = (v: string) => g.op('ReduceSum', [v, g.ints([-1])], { keepdims: 1 });
  if (name === 'softmax') return g.op('Mul', [p, g.op('Sub', [dp, rowSum(g.op('Mul', [p, dp]))])]);
  if (name === 'sparsemax') {
    const s = g.op('Cast', [g.op('Greater', [p, g.scalar(0)])], { to: 1 });
    const size = g.op('Max', [rowSum(s), g.scalar(1)]);
    return g.op('Mul', [s, g.op('Sub', [dp, g.op('Div', [rowSum(g.op('Mul', [s, dp])), size])])]);
  }
  const w = g.op('Sqrt', [p]);
  const wv = g.op('Mul', [w, dp]);
  return g.op('Sub', [wv, g.op('Mul', [w, g.op('Div', [rowSum(wv), g.op('Max', [rowSum(w), g.scalar(1e-30)])])])]);
}

export interface AttentionNodes {
  /** The queries' rows, where only the first `queries` tokens' outputs are computed (see attention). */
  readonly queries?: number;
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly probs: string;
  readonly output: string;
}

/**
 * Multi-head self-attention on [B, T, D]: q | k | v from one projection (each head contiguous), the
 * scaled scores plus an additive `mask` broadcastable to [B, H, T, T], normalised, then the
 * context's output projection. With `queries`, only the first `queries` tokens ask (q sliced): the
 * output is theirs alone, [B, queries, D] — all a classifier's last layer needs for its CLS rows.
 */
export function attention(g: GraphBuilder, layer: Attention, x: string, tokens: number, mask?: string, queries?: number): AttentionNodes {
  const { heads, headDim: d } = layer;
  const qkv = linear(g, layer.qkv, x);
  // [B, T, 3·H·d] → [3, B, H, T, d]
  const byHead = g.op('Transpose', [g.op('Reshape', [qkv, g.ints([0, 0, 3, heads, d])])], { perm: [2, 0, 3, 1, 4] });
  const [all, k, v] = [0, 1, 2].map((i) => g.op('Gather', [byHead, g.constant('which', BigInt64Array.of(BigInt(i)), [])], { axis: 0 })) as [string, string, string];
  const q = queries ? rows(g, all, 0, queries, 2) : all;
  // The scale on q, [B, H, T, d], rather than on the scores, [B, H, T, T]: the same product up to
  // rounding, for a quarter of the multiplies at T = 65, d = 16 (and again in the backward pass).
  let scores = g.op('MatMul', [g.op('Mul', [q, g.scalar(layer.scale)]), g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]);
  if (mask) scores = g.op('Add', [scores, mask]);
  const probs = normalise(g, layer.normaliser ?? 'softmax', scores, tokens);
  const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), g.ints([0, 0, heads * d])]);
  return { ...(queries ? { queries } : {}), q, k, v, probs, output: linear(g, layer.proj, context) };
}

/** Rows [from, to) of `x` along `axis` (`to` = Infinity: to the end). */
export function rows(g: GraphBuilder, x: string, from: number, to: number, axis = 1): string {
  return g.op('Slice', [x, g.ints([from]), g.ints([Number.isFinite(to) ? to : 2 ** 53]), g.ints([axis])]);
}

/** `full` [B, T, D] with `part` [B, n, D] added to its first n rows. */
export function addToFirstRows(g: GraphBuilder, full: string, part: string, n: number): string {
  return g.op('Concat', [g.op('Add', [rows(g, full, 0, n), part]), rows(g, full, n, Infinity)], { axis: 1 });
}

/** The attention's input gradient (the mask is a constant), as layers.batchedAttentionBackward. */
export function attentionBack(g: GraphBuilder, layer: Attention, rec: AttentionNodes, dy: string): string {
  const { heads, headDim: d } = layer;
  const swap = (t: string) => g.op('Transpose', [t], { perm: [0, 1, 3, 2] });
  // [B, T, H·d] → [B, H, T, d]
  const dContext = g.op('Transpose', [g.op('Reshape', [linearBack(g, layer.proj, dy), g.ints([0, 0, heads, d])])], { perm: [0, 2, 1, 3] });
  const dProbs = g.op('MatMul', [dContext, swap(rec.v)]);
  const dv = g.op('MatMul', [swap(rec.probs), dContext]);
  const dScores = normaliseBack(g, layer.normaliser ?? 'softmax', rec.probs, dProbs);
  const scale = g.scalar(layer.scale);
  const dq = g.op('Mul', [g.op('MatMul', [dScores, rec.k]), scale]);
  const dk = g.op('Mul', [g.op('MatMul', [swap(dScores), rec.q]), scale]);
  if (rec.queries) {
    // Only the first rows asked: q's gradient reaches those rows through W_q, k's and v's every row
    // through W_k | W_v.
    const flat = (t: string) => g.op('Reshape', [g.op('Transpose', [t], { perm: [0, 2, 1, 3] }), g.ints([0, 0, heads * d])]);
    const w = g.weight(`${layer.qkv.name}.w`, layer.qkv.wT);
    const part = (from: number, to: number) => g.op('Transpose', [rows(g, w, from, to, 1)], { perm: [1, 0] });
    const dxq = g.op('MatMul', [flat(dq), part(0, heads * d)]);
    const dxkv = g.op('MatMul', [g.op('Concat', [flat(dk), flat(dv)], { axis: 2 }), part(heads * d, 3 * heads * d)]);
    return addToFirstRows(g, dxkv, dxq, rec.queries);
  }
  // [3, B, H, T, d] → [B, T, 3, H, d] → [B, T, 3·H·d]
  const stacked = g.op('Concat', [dq, dk, dv].map((t) => g.op('Unsqueeze', [t, g.ints([0])])), { axis: 0 });
  const dqkv = g.op('Reshape', [g.op('Transpose', [stacked], { perm: [1, 3, 0, 2, 4] }), g.ints([0, 0, 3 * heads * d])]);
  return linearBack(g, layer.qkv, dqkv);
}

/** [1, T, 1] with 1 at token `i`: a row gradient [B, D] placed at that token of [B, T, D]. */
export function atToken(g: GraphBuilder, row: string, i: number, tokens: string): string {
  const hot = g.op('Cast', [g.op('Equal', [tokens, g.constant('i', BigInt64Array.of(BigInt(i)), [])])], { to: 1 });
  return g.op('Mul', [g.op('Unsqueeze', [row, g.ints([1])]), g.op('Reshape', [hot, g.ints([1, -1, 1])])]);
}

/** 0, 1, …, T − 1 for the token axis (axis 1) of `x`. */
export function tokenIndex(g: GraphBuilder, x: string): string {
  const length = g.op('Squeeze', [g.op('Slice', [g.op('Shape', [x]), g.ints([1]), g.ints([2])]), g.ints([0])]);
  return g.op('Range', [g.constant('zero', BigInt64Array.of(0n), []), length, g.constant('one', BigInt64Array.of(1n), [])]);
}
