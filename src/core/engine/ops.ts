/**
 * The tensor-op interface every layer is written against (nn/), and that each engine interprets:
 * engine/eager.ts runs the ops at once on tfjs tensors (the reference, and the fallback), and
 * engine/trace.ts records them as an ONNX graph that ONNX Runtime runs as one native pass. A layer's
 * maths is then written once, and its two executions cannot drift apart.
 *
 * Values are opaque to the layers (`V`): a tensor when eager, a graph value when tracing. Shapes are
 * static (known while tracing), so a layer may branch on a shape but never on a value.
 */

export type Shape = readonly number[];

/** A tensor on the host: float32 values, row-major, and their shape. Weights keep PyTorch's layout. */
export interface HostTensor {
  readonly data: Float32Array;
  readonly shape: Shape;
}

/** A model's weights by checkpoint name. */
export type Params = ReadonlyMap<string, HostTensor>;

export interface MatmulFlags {
  /** Use the last two axes of a (or b) swapped. */
  readonly transA?: boolean;
  readonly transB?: boolean;
}

export interface LayerNormValues<V> {
  readonly y: V;
  /** The row statistics the backward pass reuses, shaped [..., 1]. */
  readonly mean: V;
  readonly invStd: V;
}

export interface Ops<V> {
  shape(x: V): Shape;
  /** A weight, by checkpoint name. */
  param(name: string): V;
  /** A pass input, by the name the runner was given it under. */
  input(name: string): V;
  scalar(value: number): V;

  // Elementwise, with NumPy broadcasting.
  add(a: V, b: V): V;
  sub(a: V, b: V): V;
  mul(a: V, b: V): V;
  div(a: V, b: V): V;
  maximum(a: V, b: V): V;
  exp(x: V): V;
  erf(x: V): V;
  tanh(x: V): V;
  sqrt(x: V): V;
  relu(x: V): V;
  /** 1 where x > 0, else 0: the step every piecewise-linear backward needs. */
  positive(x: V): V;

  /** op(a)·op(b) over the last two axes, the leading axes broadcast. */
  matmul(a: V, b: V, flags?: MatmulFlags): V;

  reshape(x: V, shape: Shape): V;
  transpose(x: V, perm: readonly number[]): V;
  /** Entries [from, to) along `axis`. */
  slice(x: V, axis: number, from: number, to: number): V;
  /** Zeros added before and after along `axis`: the adjoint of slice. */
  pad(x: V, axis: number, before: number, after: number): V;
  concat(xs: readonly V[], axis: number): V;
  broadcast(x: V, shape: Shape): V;
  /** Rows of `table` [n, D] at `ids` (integer values held as floats), shaped [...ids, D]. */
  gather(table: V, ids: V): V;

  /** Reductions over one axis, kept as a size-1 axis. */
  sum(x: V, axis: number): V;
  mean(x: V, axis: number): V;

  /** Softmax over the last axis. */
  softmax(x: V): V;
  /**
   * The sparse attention maps over the last axis (Meister et al.): each engine has its own exact
   * sort-based threshold solver. Their Jacobian products are plain ops (nn/normalisers.ts).
   */
  sparseMap(x: V, name: 'sparsemax' | 'entmax15'): V;
  /** LayerNorm over the last axis, with its row statistics. */
  layerNorm(x: V, gamma: V, beta: V, eps: number): LayerNormValues<V>;
}

/** A pass written once: given an interpreter, the named values it produces. */
export type Pass = <V>(o: Ops<V>) => Record<string, V>;

export const sizeOf = (shape: Shape): number => shape.reduce((a, d) => a * d, 1);

/** A non-negative axis for a possibly negative one. */
export const axisOf = (shape: Shape, axis: number): number => (axis < 0 ? shape.length + axis : axis);
