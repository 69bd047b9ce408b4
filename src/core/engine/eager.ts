/**
 * The eager interpreter: each op runs at once on tfjs tensors. It is the reference the traced
 * graphs are tested against, and the engine wherever ONNX Runtime is absent. Weights become tfjs
 * tensors once per Params (kept until `releaseEager`); everything a pass makes is freed with it.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { normalise } from '../normalisers.js';
import { axisOf, type HostTensor, type LayerNormValues, type MatmulFlags, type Ops, type Params, type Pass, type Shape } from './ops.js';

const uploaded = new WeakMap<Params, Map<string, Tensor>>();

/** Free the tfjs copies of `params`' weights. */
export function releaseEager(params: Params): void {
  for (const t of uploaded.get(params)?.values() ?? []) t.dispose();
  uploaded.delete(params);
}

class EagerOps implements Ops<Tensor> {
  constructor(
    private readonly params: Params,
    private readonly inputs: Readonly<Record<string, Tensor>>,
  ) {}

  shape(x: Tensor): Shape {
    return x.shape;
  }
  param(name: string): Tensor {
    let cache = uploaded.get(this.params);
    if (!cache) uploaded.set(this.params, (cache = new Map()));
    let t = cache.get(name);
    if (!t) {
      const p = this.params.get(name);
      if (!p) throw new Error(`no weight named ${name}`);
      // Kept out of the pass's tidy: the upload outlives the pass.
      t = tf.keep(tf.tensor(p.data, [...p.shape], 'float32'));
      cache.set(name, t);
    }
    return t;
  }
  input(name: string): Tensor {
    const t = this.inputs[name];
    if (!t) throw new Error(`no pass input named ${name}`);
    return t;
  }
  scalar(value: number): Tensor {
    return tf.scalar(value);
  }
  add(a: Tensor, b: Tensor): Tensor {
    return tf.add(a, b);
  }
  sub(a: Tensor, b: Tensor): Tensor {
    return tf.sub(a, b);
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return tf.mul(a, b);
  }
  div(a: Tensor, b: Tensor): Tensor {
    return tf.div(a, b);
  }
  maximum(a: Tensor, b: Tensor): Tensor {
    return tf.maximum(a, b);
  }
  exp(x: Tensor): Tensor {
    return tf.exp(x);
  }
  erf(x: Tensor): Tensor {
    return tf.erf(x);
  }
  tanh(x: Tensor): Tensor {
    return tf.tanh(x);
  }
  sqrt(x: Tensor): Tensor {
    return tf.sqrt(x);
  }
  relu(x: Tensor): Tensor {
    return tf.relu(x);
  }
  positive(x: Tensor): Tensor {
    return tf.cast(tf.greater(x, 0), 'float32');
  }
  matmul(a: Tensor, b: Tensor, flags: MatmulFlags = {}): Tensor {
    const [ra, rb] = [a.rank, b.rank];
    // tfjs multiplies equal batches only: broadcast the smaller operand's leading axes first.
    const lead = ra >= rb ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
    const full = (t: Tensor) => (t.rank - 2 === lead.length && t.shape.slice(0, -2).every((d, i) => d === lead[i]) ? t : tf.broadcastTo(t, [...lead, ...t.shape.slice(-2)]));
    if (ra === 2 && rb === 2) return tf.matMul(a, b, flags.transA, flags.transB);
    const [fa, fb] = [full(a), full(b)];
    const flat = (t: Tensor) => tf.reshape(t, [-1, t.shape[t.rank - 2]!, t.shape[t.rank - 1]!]) as tf.Tensor3D;
    const y = tf.matMul(flat(fa), flat(fb), flags.transA, flags.transB);
    return tf.reshape(y, [...lead, ...y.shape.slice(-2)]);
  }
  reshape(x: Tensor, shape: Shape): Tensor {
    return tf.reshape(x, [...shape]);
  }
  transpose(x: Tensor, perm: readonly number[]): Tensor {
    return tf.transpose(x, [...perm]);
  }
  slice(x: Tensor, axis: number, from: number, to: number): Tensor {
    const a = axisOf(x.shape, axis);
    const begin = x.shape.map((_, i) => (i === a ? from : 0));
    const size = x.shape.map((d, i) => (i === a ? Math.min(to, d) - from : d));
    return tf.slice(x, begin, size);
  }
  pad(x: Tensor, axis: number, before: number, after: number): Tensor {
    const a = axisOf(x.shape, axis);
    return tf.pad(x, x.shape.map((_, i) => (i === a ? [before, after] : [0, 0])) as Array<[number, number]>);
  }
  concat(xs: readonly Tensor[], axis: number): Tensor {
    return tf.concat([...xs], axis);
  }
  broadcast(x: Tensor, shape: Shape): Tensor {
    return tf.broadcastTo(x, [...shape]);
  }
  gather(table: Tensor, ids: Tensor): Tensor {
    const rows = tf.gather(table, tf.cast(tf.reshape(ids, [-1]), 'int32'));
    return tf.reshape(rows, [...ids.shape, table.shape[1]!]);
  }
  sum(x: Tensor, axis: number): Tensor {
    return tf.sum(x, axis, true);
  }
  mean(x: Tensor, axis: number): Tensor {
    return tf.mean(x, axis, true);
  }
  softmax(x: Tensor): Tensor {
    return tf.softmax(x);
  }
  sparseMap(x: Tensor, name: 'sparsemax' | 'entmax15'): Tensor {
    const n = x.shape[x.rank - 1]!;
    return tf.reshape(normalise(name, tf.reshape(x, [-1, n]) as Tensor2D), x.shape);
  }
  layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): LayerNormValues<Tensor> {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const invStd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps));
    return { y: tf.add(tf.mul(tf.mul(centred, invStd), gamma), beta), mean, invStd };
  }
}

/** Run `pass` eagerly on host inputs; its named outputs come back as host tensors. */
export function runEager(params: Params, inputs: Readonly<Record<string, HostTensor>>, pass: Pass): Record<string, HostTensor> {
  let result: Record<string, HostTensor> = {};
  tf.tidy(() => {
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, [...v.shape], 'float32')]));
    const out = pass(new EagerOps(params, feeds));
    result = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.dataSync() as Float32Array, shape: v.shape }]));
  });
  return result;
}

/**
 * Run `f` eagerly on tfjs tensors and hand back what it returns, tensors included (the caller owns
 * them and tidies): for a model class that keeps a forward's records, or differentiates through it.
 */
export function withEager<T>(params: Params, inputs: Readonly<Record<string, Tensor>>, f: (o: Ops<Tensor>) => T): T {
  return f(new EagerOps(params, inputs));
}
