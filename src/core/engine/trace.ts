/**
 * The tracing interpreter: the ops a pass calls are recorded as one ONNX graph (onnx/proto.ts), which
 * ONNX Runtime then runs natively, every product threaded and no tfjs op in between. The graph is
 * traced once per (owner, pass key, input shapes) and its session kept as long as the owner.
 *
 * Weights are graph inputs, fed from the host arrays on every run, never copied into the graph: a
 * ViT-B/16 graph stays a few hundred kilobytes, its session is made in milliseconds, and the weights
 * exist once in memory whatever the number of passes traced.
 */
import { GraphBuilder } from '../onnx/proto.js';
import { nativeGraph, type NativeGraph } from '../ort-products.js';
import { normalise } from '../onnx/normalisers.js';
import { axisOf, sizeOf, type HostTensor, type LayerNormValues, type MatmulFlags, type Ops, type Params, type Pass, type Shape } from './ops.js';

/** A value in the graph: its name and static shape. */
export interface Sym {
  readonly name: string;
  readonly shape: Shape;
}

function broadcastShapes(a: Shape, b: Shape): Shape {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    return Math.max(x, y);
  });
}

class TraceOps implements Ops<Sym> {
  readonly g = new GraphBuilder('relprop_pass');
  /** Weights the pass read, in order: the graph inputs to feed. */
  readonly weights: string[] = [];
  private readonly params: Params;
  private readonly inputShapes: Readonly<Record<string, Shape>>;
  private readonly seen = new Map<string, Sym>();

  constructor(params: Params, inputShapes: Readonly<Record<string, Shape>>) {
    this.params = params;
    this.inputShapes = inputShapes;
  }

  private op(op: string, inputs: readonly Sym[], shape: Shape, attrs: Parameters<GraphBuilder['op']>[2] = {}, extra: readonly string[] = []): Sym {
    return { name: this.g.op(op, [...inputs.map((i) => i.name), ...extra], attrs), shape };
  }
  private elementwise(op: string, a: Sym, b: Sym): Sym {
    return this.op(op, [a, b], broadcastShapes(a.shape, b.shape));
  }
  private unary(op: string, x: Sym): Sym {
    return this.op(op, [x], x.shape);
  }

  shape(x: Sym): Shape {
    return x.shape;
  }
  param(name: string): Sym {
    let s = this.seen.get(`p:${name}`);
    if (!s) {
      const p = this.params.get(name);
      if (!p) throw new Error(`no weight named ${name}`);
      s = { name: this.g.input(`p:${name}`, 'float', p.shape), shape: p.shape };
      this.weights.push(name);
      this.seen.set(`p:${name}`, s);
    }
    return s;
  }
  input(name: string): Sym {
    let s = this.seen.get(`i:${name}`);
    if (!s) {
      const shape = this.inputShapes[name];
      if (!shape) throw new Error(`no pass input named ${name}`);
      s = { name: this.g.input(`i:${name}`, 'float', shape), shape };
      this.seen.set(`i:${name}`, s);
    }
    return s;
  }
  scalar(value: number): Sym {
    return { name: this.g.scalar(value), shape: [] };
  }
  add(a: Sym, b: Sym): Sym {
    return this.elementwise('Add', a, b);
  }
  sub(a: Sym, b: Sym): Sym {
    return this.elementwise('Sub', a, b);
  }
  mul(a: Sym, b: Sym): Sym {
    return this.elementwise('Mul', a, b);
  }
  div(a: Sym, b: Sym): Sym {
    return this.elementwise('Div', a, b);
  }
  maximum(a: Sym, b: Sym): Sym {
    return this.elementwise('Max', a, b);
  }
  exp(x: Sym): Sym {
    return this.unary('Exp', x);
  }
  erf(x: Sym): Sym {
    return this.unary('Erf', x);
  }
  tanh(x: Sym): Sym {
    return this.unary('Tanh', x);
  }
  sqrt(x: Sym): Sym {
    return this.unary('Sqrt', x);
  }
  relu(x: Sym): Sym {
    return this.unary('Relu', x);
  }
  positive(x: Sym): Sym {
    const gt = this.g.op('Greater', [x.name, this.g.scalar(0)]);
    return { name: this.g.op('Cast', [gt], { to: 1 }), shape: x.shape };
  }
  matmul(a: Sym, b: Sym, flags: MatmulFlags = {}): Sym {
    // A swapped operand is a Transpose in front; ONNX Runtime fuses it into the product (FusedMatMul).
    const swap = (x: Sym) => {
      const r = x.shape.length;
      const perm = [...Array(r).keys()];
      [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
      return this.transpose(x, perm);
    };
    const [x, y] = [flags.transA ? swap(a) : a, flags.transB ? swap(b) : b];
    const [m, k] = x.shape.slice(-2) as [number, number];
    const [k2, n] = y.shape.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`matmul of [${x.shape}] and [${y.shape}]`);
    const lead = broadcastShapes(x.shape.slice(0, -2), y.shape.slice(0, -2));
    if (m === 1 && x.shape.length === 2) {
      // MLAS takes a vector path for a single row, which rounds differently from its matrix kernel
      // (used for every M ≥ 2, where a row's result does not depend on the rows beside it): a lone
      // row gets a zero row beside it, so a sample's products are the same alone or in a batch.
      const two = this.concat([x, this.mul(x, this.scalar(0))], 0);
      return this.slice(this.op('MatMul', [two, y], [2, n]), 0, 0, 1);
    }
    return this.op('MatMul', [x, y], [...lead, m, n]);
  }
  reshape(x: Sym, shape: Shape): Sym {
    const known = shape.filter((d) => d !== -1);
    const full = shape.map((d) => (d === -1 ? sizeOf(x.shape) / sizeOf(known) : d));
    if (sizeOf(full) !== sizeOf(x.shape)) throw new Error(`reshape of [${x.shape}] to [${shape}]`);
    return this.op('Reshape', [x], full, {}, [this.g.ints(full)]);
  }
  transpose(x: Sym, perm: readonly number[]): Sym {
    return this.op('Transpose', [x], perm.map((p) => x.shape[p]!), { perm: [...perm] });
  }
  slice(x: Sym, axis: number, from: number, to: number): Sym {
    const a = axisOf(x.shape, axis);
    const end = Math.min(to, x.shape[a]!);
    const shape = x.shape.map((d, i) => (i === a ? end - from : d));
    return this.op('Slice', [x], shape, {}, [this.g.ints([from]), this.g.ints([end]), this.g.ints([a])]);
  }
  pad(x: Sym, axis: number, before: number, after: number): Sym {
    const a = axisOf(x.shape, axis);
    const r = x.shape.length;
    const pads = Array.from({ length: 2 * r }, (_, i) => (i === a ? before : i === r + a ? after : 0));
    return this.op('Pad', [x], x.shape.map((d, i) => (i === a ? d + before + after : d)), {}, [this.g.ints(pads)]);
  }
  concat(xs: readonly Sym[], axis: number): Sym {
    const a = axisOf(xs[0]!.shape, axis);
    const shape = xs[0]!.shape.map((d, i) => (i === a ? xs.reduce((s, x) => s + x.shape[a]!, 0) : d));
    return this.op('Concat', xs, shape, { axis: a });
  }
  broadcast(x: Sym, shape: Shape): Sym {
    return this.op('Expand', [x], broadcastShapes(x.shape, shape), {}, [this.g.ints(shape)]);
  }
  gather(table: Sym, ids: Sym): Sym {
    const at = this.g.op('Cast', [ids.name], { to: 7 });
    return { name: this.g.op('Gather', [table.name, at], { axis: 0 }), shape: [...ids.shape, table.shape[1]!] };
  }
  sum(x: Sym, axis: number): Sym {
    const a = axisOf(x.shape, axis);
    return this.op('ReduceSum', [x], x.shape.map((d, i) => (i === a ? 1 : d)), { keepdims: 1 }, [this.g.ints([a])]);
  }
  mean(x: Sym, axis: number): Sym {
    const a = axisOf(x.shape, axis);
    return this.op('ReduceMean', [x], x.shape.map((d, i) => (i === a ? 1 : d)), { axes: [a], keepdims: 1 });
  }
  softmax(x: Sym): Sym {
    return this.op('Softmax', [x], x.shape, { axis: -1 });
  }
  sparseMap(x: Sym, name: 'sparsemax' | 'entmax15'): Sym {
    return { name: normalise(this.g, name, x.name, x.shape[x.shape.length - 1]!), shape: x.shape };
  }
  layerNorm(x: Sym, gamma: Sym, beta: Sym, eps: number): LayerNormValues<Sym> {
    const [y, mean, invStd] = this.g.node('LayerNormalization', [x.name, gamma.name, beta.name], { axis: -1, epsilon: { float: eps } }, 3) as [string, string, string];
    const stats = [...x.shape.slice(0, -1), 1];
    return { y: { name: y, shape: x.shape }, mean: { name: mean, shape: stats }, invStd: { name: invStd, shape: stats } };
  }
}

interface Traced {
  readonly session: NativeGraph;
  readonly weights: readonly string[];
  readonly outputs: ReadonlyArray<readonly [string, Shape]>;
}

const traced = new WeakMap<object, Map<string, Traced>>();

/** Free the sessions traced for `owner`. */
export function releaseTraced(owner: object): void {
  for (const t of traced.get(owner)?.values() ?? []) t.session.dispose();
  traced.delete(owner);
}

/**
 * Run `pass` as one native graph on host inputs: traced on the first call for these input shapes
 * (under `key`, which names the pass and every option that changes its graph), then reused.
 */
export function runTraced(owner: object, key: string, params: Params, inputs: Readonly<Record<string, HostTensor>>, pass: Pass): Record<string, HostTensor> {
  const names = Object.keys(inputs).sort();
  const signature = `${key}|${names.map((n) => `${n}:${inputs[n]!.shape.join('x')}`).join(',')}`;
  let sessions = traced.get(owner);
  if (!sessions) traced.set(owner, (sessions = new Map()));
  let t = sessions.get(signature);
  if (!t) {
    const o = new TraceOps(params, Object.fromEntries(names.map((n) => [n, inputs[n]!.shape])));
    for (const n of names) o.input(n);
    const out = pass(o);
    const outputs = Object.entries(out).map(([name, s]) => {
      o.g.node('Identity', [s.name], {}, [`o:${name}`]);
      o.g.output(`o:${name}`, 'float', s.shape);
      return [name, s.shape] as const;
    });
    t = { session: nativeGraph(o.g.model(17)), weights: o.weights, outputs };
    sessions.set(signature, t);
  }
  const feeds: Record<string, { data: Float32Array; dims: Shape }> = {};
  for (const n of names) feeds[`i:${n}`] = { data: inputs[n]!.data, dims: inputs[n]!.shape };
  for (const w of t.weights) {
    const p = params.get(w)!;
    feeds[`p:${w}`] = { data: p.data, dims: p.shape };
  }
  const y = t.session.run(feeds, t.outputs.map(([n]) => `o:${n}`));
  return Object.fromEntries(t.outputs.map(([n, shape]) => [n, { data: y[`o:${n}`]!.data, shape }]));
}
