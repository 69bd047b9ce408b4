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
  /** `sink` receives what gradient-weighted methods read besides dx: each block's ∂/∂A. */
  backward<V>(o: Ops<V>, rec: unknown, dy: V, sink?: GradientSink<V>): V;
}

/** ∂(Σ seed ⊙ y)/∂A of the block named `layer`, [B, H, queries, T]. */
export type GradientSink<V> = (layer: string, dProbs: V) => void;

/** Row-wise layers need of their input exactly the rows asked of their output. */
export const sameRows = (rows: number | undefined): number | undefined => rows;
