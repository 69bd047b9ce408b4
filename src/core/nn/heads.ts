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
