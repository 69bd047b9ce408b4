/**
 * Transformer blocks. Pre-norm (ViT, GPT-2 with LayerNorm; Llama-style decoders with RMSNorm and a
 * gated MLP): x + Attn(N₁(x)), then + MLP(N₂(·)). Each block is one layer to the passes; its forward
 * keeps what its backward and relevance forms read.
 */
import type { Ops } from '../engine/ops.js';
import { attention, attentionBack, type AttentionRec, type AttentionSpec } from './attention.js';
import { layerNorm, type LayerNormSpec } from './layernorm.js';
import type { BackwardContext, BackwardRules, Layer } from './layer.js';
import { gatedMlp, gatedMlpBack, mlp, mlpBack, type GatedMlpRec, type GatedMlpSpec, type MlpRec, type MlpSpec } from './mlp.js';
import { rmsNorm, type RmsNormSpec } from './rmsnorm.js';

/** A block's normaliser: LayerNorm, or RMSNorm where `rms` is set. */
export type NormSpec = LayerNormSpec | (RmsNormSpec & { readonly rms: true });
export type AnyMlpSpec = MlpSpec | GatedMlpSpec;

const normLayer = (n: NormSpec): Layer => ('rms' in n ? rmsNorm(n) : layerNorm(n));
const isGated = (m: AnyMlpSpec): m is GatedMlpSpec => 'gate' in m;

function anyMlp<V>(o: Ops<V>, m: AnyMlpSpec, x: V): { y: V; rec: MlpRec<V> | GatedMlpRec<V> } {
  return isGated(m) ? gatedMlp(o, m, x) : mlp(o, m, x);
}
function anyMlpBack<V>(o: Ops<V>, m: AnyMlpSpec, rec: MlpRec<V> | GatedMlpRec<V>, dy: V, rules?: BackwardRules): V {
  return isGated(m) ? gatedMlpBack(o, m, rec as GatedMlpRec<V>, dy, rules) : mlpBack(o, m, rec, dy, rules);
}

export interface PreLnBlockSpec {
  readonly name: string;
  readonly norm1: NormSpec;
  readonly attn: AttentionSpec;
  readonly norm2: NormSpec;
  readonly mlp: AnyMlpSpec;
  /** Gemma 2/3's sandwich: a norm after the attention and one after the MLP, each before its residual add. */
  readonly postNorm1?: NormSpec;
  readonly postNorm2?: NormSpec;
  /** The pass input holding the additive attention mask (GPT-2: causal + padded keys, [B, 1, T, T]). */
  readonly mask?: string;
}

interface BlockRec<V> {
  readonly norm1: unknown;
  readonly attn: AttentionRec<V>;
  readonly norm2: unknown;
  readonly mlp: MlpRec<V> | GatedMlpRec<V>;
  readonly post1?: unknown;
  readonly post2?: unknown;
  /** Token rows this block computed (all, or the first `rows`). */
  readonly rows?: number;
  readonly tokens: number;
}

export function preLnBlock(spec: PreLnBlockSpec): Layer {
  const [ln1, ln2] = [normLayer(spec.norm1), normLayer(spec.norm2)];
  const [post1, post2] = [spec.postNorm1 && normLayer(spec.postNorm1), spec.postNorm2 && normLayer(spec.postNorm2)];
  return {
    name: spec.name,
    // Keys and values read every token.
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, x: V, rows?: number) {
      const tokens = o.shape(x)[1]!;
      const n1 = ln1.forward(o, x);
      const a = attention(o, spec.attn, n1.y, { ...(rows === undefined ? {} : { queries: rows }), ...(spec.mask ? { mask: o.input(spec.mask) } : {}) });
      const p1 = post1?.forward(o, a.y);
      const mid = o.add(rows === undefined ? x : o.slice(x, 1, 0, rows), p1 ? p1.y : a.y);
      const n2 = ln2.forward(o, mid);
      const m = anyMlp(o, spec.mlp, n2.y);
      const p2 = post2?.forward(o, m.y);
      const rec: BlockRec<V> = { norm1: n1.rec, attn: a.rec, norm2: n2.rec, mlp: m.rec, tokens, ...(rows === undefined ? {} : { rows }), ...(p1 ? { post1: p1.rec } : {}), ...(p2 ? { post2: p2.rec } : {}) };
      return { y: o.add(mid, p2 ? p2.y : m.y), rec };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V {
      const r = rec as BlockRec<V>;
      // The residual Adds pass dy to both branches: the ε-rule on a sum, in Gradient × Input form.
      const dMlp = post2 ? post2.backward(o, r.post2, dy, ctx) : dy;
      const dMid = o.add(dy, ln2.backward(o, r.norm2, anyMlpBack(o, spec.mlp, r.mlp, dMlp, ctx?.rules), ctx));
      const dAttn = post1 ? post1.backward(o, r.post1, dMid, ctx) : dMid;
      const back = attentionBack(o, spec.attn, r.attn, dAttn, ctx?.rules);
      ctx?.sink?.(spec.name, back.dProbs);
      const dIn = ln1.backward(o, r.norm1, back.dx, ctx);
      return o.add(r.rows === undefined ? dMid : o.pad(dMid, 1, 0, r.tokens - r.rows), dIn);
    },
  };
}

export interface PostLnBlockSpec {
  readonly name: string;
  readonly attn: AttentionSpec;
  /** After the attention's residual sum, and after the MLP's. */
  readonly norm1: LayerNormSpec;
  readonly mlp: MlpSpec;
  readonly norm2: LayerNormSpec;
  /** The pass input holding the additive attention mask, [B, 1, 1, T]. */
  readonly mask?: string;
}

/** Post-LN (BERT): h = LN₁(x + Attn(x)), y = LN₂(h + MLP(h)). */
export function postLnBlock(spec: PostLnBlockSpec): Layer {
  const [ln1, ln2] = [layerNorm(spec.norm1), layerNorm(spec.norm2)];
  return {
    name: spec.name,
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, x: V, rows?: number) {
      const tokens = o.shape(x)[1]!;
      const a = attention(o, spec.attn, x, { ...(rows === undefined ? {} : { queries: rows }), ...(spec.mask ? { mask: o.input(spec.mask) } : {}) });
      const n1 = ln1.forward(o, o.add(a.y, rows === undefined ? x : o.slice(x, 1, 0, rows)));
      const m = mlp(o, spec.mlp, n1.y);
      const n2 = ln2.forward(o, o.add(m.y, n1.y));
      const rec: BlockRec<V> = { norm1: n1.rec, attn: a.rec, norm2: n2.rec, mlp: m.rec, tokens, ...(rows === undefined ? {} : { rows }) };
      return { y: n2.y, rec };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V {
      const r = rec as BlockRec<V>;
      const dNorm2In = ln2.backward(o, r.norm2, dy, ctx);
      const dNorm1In = ln1.backward(o, r.norm1, o.add(dNorm2In, mlpBack(o, spec.mlp, r.mlp as MlpRec<V>, dNorm2In, ctx?.rules)), ctx);
      const back = attentionBack(o, spec.attn, r.attn, dNorm1In, ctx?.rules);
      ctx?.sink?.(spec.name, back.dProbs);
      const dx = back.dx;
      return o.add(dx, r.rows === undefined ? dNorm1In : o.pad(dNorm1In, 1, 0, r.tokens - r.rows));
    },
  };
}
