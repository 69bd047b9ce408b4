/**
 * Input embeddings. Patches (Dosovitskiy et al.): the patch convolution as a linear map of each
 * flattened (c, kh, kw) patch, prefix tokens (CLS, DeiT's distillation token) in front, learned
 * position embeddings added. The prefix and positions are constants to the input gradient.
 */
import type { Ops } from '../engine/ops.js';
import type { Layer } from './layer.js';
import { linear, linearBack, type LinearSpec } from './linear.js';

export interface PatchEmbeddingSpec {
  readonly name: string;
  /** The conv weight [D, C, p, p] read as [D, C·p·p]. */
  readonly proj: LinearSpec;
  readonly patch: number;
  readonly channels: number;
  /** [P, D] prefix token rows, and [T, D] position rows. */
  readonly prefix: string;
  readonly positions: string;
}

/** [B, C, H, W] → [B, N, C·p·p], rank ≤ 5 at every step (tfjs's limit). */
function patchify<V>(o: Ops<V>, x: V, p: number): V {
  const [B, C, H, W] = o.shape(x) as [number, number, number, number];
  const [gh, gw] = [H / p, W / p];
  const rows = o.transpose(o.reshape(x, [B * C * gh, p, gw, p]), [0, 2, 1, 3]);
  return o.reshape(o.transpose(o.reshape(rows, [B, C, gh * gw, p * p]), [0, 2, 1, 3]), [B, gh * gw, C * p * p]);
}

/** The adjoint: [B, N, C·p·p] → [B, C, H, W]. */
function unpatchify<V>(o: Ops<V>, x: V, channels: number, grid: readonly [number, number], p: number): V {
  const [B] = o.shape(x) as [number];
  const [gh, gw] = grid;
  const byPatch = o.transpose(o.reshape(x, [B, gh * gw, channels, p * p]), [0, 2, 1, 3]);
  return o.reshape(o.transpose(o.reshape(byPatch, [B * channels * gh, gw, p, p]), [0, 2, 1, 3]), [B, channels, gh * p, gw * p]);
}

interface PatchRec {
  readonly grid: readonly [number, number];
  readonly prefix: number;
}

export function patchEmbedding(spec: PatchEmbeddingSpec): Layer {
  return {
    name: spec.name,
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, pixels: V) {
      const [B, , H, W] = o.shape(pixels) as [number, number, number, number];
      const patches = linear(o, spec.proj, patchify(o, pixels, spec.patch));
      const prefix = o.param(spec.prefix);
      const [P, D] = o.shape(prefix) as [number, number];
      const tokens = o.concat([o.broadcast(o.reshape(prefix, [1, P, D]), [B, P, D]), patches], 1);
      const rec: PatchRec = { grid: [H / spec.patch, W / spec.patch], prefix: P };
      return { y: o.add(tokens, o.param(spec.positions)), rec };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V): V {
      const r = rec as PatchRec;
      const rows = o.slice(dy, 1, r.prefix, Infinity);
      return unpatchify(o, linearBack(o, spec.proj, rows), spec.channels, r.grid, spec.patch);
    },
  };
}

/** Token ids → word embeddings: the lookup in front of the differentiable input. */
export function wordLookup(name: string, table: string): Layer {
  return {
    name,
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, ids: V) {
      return { y: o.gather(o.param(table), ids), rec: null };
    },
    backward(): never {
      throw new Error('token ids have no gradient: gradient passes start at the word embeddings');
    },
  };
}

export interface TextEmbeddingSpec {
  readonly name: string;
  /** Tables read at the pass inputs `positions` and (if present) `types`. */
  readonly positions: string;
  readonly types?: string;
  /** BERT's LayerNorm after the sum; GPT-2 has none. */
  readonly norm?: { readonly name: string; readonly eps: number };
}

/**
 * BERT's embeddings (Devlin et al.): words + positions (+ segments), then LayerNorm; GPT-2's are
 * words + positions alone. Positions and segments are constants of the input; their ids are pass
 * inputs, as the host finds them (RoBERTa counts positions past padding_idx over non-padding tokens
 * only; GPT-2 counts real tokens, so padding does not shift them).
 */
export function textEmbeddings(spec: TextEmbeddingSpec, norm?: Layer): Layer {
  return {
    name: spec.name,
    inputRows: () => undefined,
    forward<V>(o: Ops<V>, words: V) {
      let sum = o.add(words, o.gather(o.param(spec.positions), o.input('positions')));
      if (spec.types) sum = o.add(sum, o.gather(o.param(spec.types), o.input('types')));
      return norm ? norm.forward(o, sum) : { y: sum, rec: null };
    },
    backward<V>(o: Ops<V>, rec: unknown, dy: V): V {
      return norm ? norm.backward(o, rec, dy) : dy;
    },
  };
}
