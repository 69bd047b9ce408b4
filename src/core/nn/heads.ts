/**
 * Classification heads on prefix tokens: a linear map of token i's row per head; with two heads
 * (DeiT's CLS and distillation heads) the logits are their mean.
 */
import type { Ops } from '../engine/ops.js';
import type { Layer } from './layer.js';
import { linear, linearBack, type LinearSpec } from './linear.js';

export function tokenHeads(name: string, heads: readonly LinearSpec[]): Layer {
  const n = heads.length;
  return {
    name,
    inputRows: () => n,
    forward<V>(o: Ops<V>, x: V) {
      const [B, T, D] = o.shape(x) as [number, number, number];
      const logits = heads.map((h, i) => linear(o, h, o.reshape(o.slice(x, 1, i, i + 1), [B, D])));
      const sum = logits.reduce((a, b) => o.add(a, b));
      return { y: n === 1 ? sum : o.div(sum, o.scalar(n)), rec: { tokens: T } };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V): V {
      const { tokens } = rec as { tokens: number };
      const share = n === 1 ? dy : o.div(dy, o.scalar(n));
      const [B] = o.shape(dy) as [number];
      const rows = heads.map((h) => {
        const g = linearBack(o, h, share);
        return o.reshape(g, [B, 1, o.shape(g)[1]!]);
      });
      const stacked = rows.length === 1 ? rows[0]! : o.concat(rows, 1);
      return tokens === n ? stacked : o.pad(stacked, 1, 0, tokens - n);
    },
  };
}

/**
 * BERT's pooler and classifier on the first token: classifier(f(dense(x₀))), f tanh (BERT's pooler,
 * RoBERTa's classifier.dense) or ReLU (DistilBERT's pre_classifier).
 */
export function poolerHead(name: string, dense: LinearSpec, activation: 'tanh' | 'relu', classifier: LinearSpec): Layer {
  return {
    name,
    inputRows: () => 1,
    forward<V>(o: Ops<V>, x: V) {
      const [B, T, D] = o.shape(x) as [number, number, number];
      const pre = linear(o, dense, o.reshape(o.slice(x, 1, 0, 1), [B, D]));
      const pooled = activation === 'tanh' ? o.tanh(pre) : o.relu(pre);
      return { y: linear(o, classifier, pooled), rec: { pooled, tokens: T } };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V): V {
      const r = rec as { pooled: V; tokens: number };
      const dPooled = linearBack(o, classifier, dy);
      // tanh′ = 1 − tanh², ReLU′ = [out > 0], both from the recorded activation.
      const dPre = activation === 'tanh' ? o.mul(dPooled, o.sub(o.scalar(1), o.mul(r.pooled, r.pooled))) : o.mul(dPooled, o.positive(r.pooled));
      const first = linearBack(o, dense, dPre);
      const [B, D] = o.shape(first) as [number, number];
      const row = o.reshape(first, [B, 1, D]);
      return r.tokens === 1 ? row : o.pad(row, 1, 0, r.tokens - 1);
    },
  };
}

/**
 * A decoder's explained row: y = S·x with S [B, 1, T] one-hot at each sample's explained position
 * (the pass input `select`: the last real token, or a chosen one), so padding and any position are
 * one product, and its backward is Sᵀ·dy.
 */
export function selectedRow(name: string, select: string): Layer {
  return {
    name,
    // The selection reads any row.
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, x: V) {
      return { y: o.matmul(o.input(select), x), rec: null };
    },
    backward<V>(o: Ops<V>, _rec: unknown, dy: V): V {
      return o.matmul(o.input(select), dy, { transA: true });
    },
  };
}
