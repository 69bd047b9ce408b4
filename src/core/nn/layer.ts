/**
 * What every layer kind offers a pass: its forward, which also returns the record its other forms
 * read, and its backward (the input gradient only: weights are constants to every method). Relevance
 * rules will take the same records. A layer holds names of weights, never weights: the interpreter
 * resolves them (engine/ops.ts), so one definition runs on every engine.
 */
import type { Ops } from '../engine/ops.js';

export interface Forward<V> {
  readonly y: V;
  /** What the layer's backward and relevance forms read; opaque to the pass. */
  readonly rec: unknown;
}

export interface Layer {
  readonly name: string;
  /**
   * The leading token rows of the input this layer reads when only the first `rows` rows of its
   * output are needed (undefined: all rows). Lets a classifier's last block compute only the rows
   * its head reads.
   */
  inputRows(rows: number | undefined): number | undefined;
  /** `rows`: how many leading token rows of the output are needed (undefined: all). */
  forward<V>(o: Ops<V>, x: V, rows?: number): Forward<V>;
  /**
   * The input gradient, or with `ctx.rules` the modified gradient whose product with the input is
   * the layer's relevance (LXT's Gradient × Input form of the LRP rules). `ctx.sink` receives what
   * gradient-weighted methods read besides dx: each block's ∂/∂A.
   */
  backward<V>(o: Ops<V>, rec: unknown, dy: V, ctx?: BackwardContext<V>): V;
}

/** ∂(Σ seed ⊙ y)/∂A of the block named `layer`, [B, H, queries, T]. */
export type GradientSink<V> = (layer: string, dProbs: V) => void;

/**
 * Relevance rules as modified gradients (Achtibat et al. 2024, LXT's efficient form): x ⊙ g̃ at a
 * layer's input is its relevance when each layer's backward follows these rules.
 * - `norm`: 'constant-scale' holds the normaliser's 1/σ (1/rms) constant: the identity rule.
 * - `gate` (gated MLPs): 'identity-uniform' takes f(gate) by the identity rule and gate ⊙ up by the
 *   uniform rule (½ each, AttnLRP); 'stop' lets no relevance through the gate (CP-LRP).
 * - `attention`: 'uniform' splits Q·Kᵀ and A·V uniformly (q and k get ¼, v ½, AttnLRP); 'values-only'
 *   holds A constant, so relevance flows through v alone (CP-LRP).
 * A layer that has no form for a rule refuses it rather than fall back to the gradient.
 */
export interface BackwardRules {
  readonly id: string;
  readonly norm: 'gradient' | 'constant-scale';
  readonly gate: 'gradient' | 'identity-uniform' | 'stop';
  readonly attention: 'gradient' | 'uniform' | 'values-only';
}

export interface BackwardContext<V> {
  readonly sink?: GradientSink<V>;
  readonly rules?: BackwardRules;
}

/** Row-wise layers need of their input exactly the rows asked of their output. */
export const sameRows = (rows: number | undefined): number | undefined => rows;
