/** A network is its layer list: what a family defines (families/) and every pass loops over (passes/). */
import type { Layer } from './layer.js';

export interface Network {
  readonly layers: readonly Layer[];
  /**
   * The first layer the input gradient reaches: layers before it map discrete inputs (token ids) to
   * the differentiable input (word embeddings), which gradient passes take as `x` instead.
   */
  readonly differentiableFrom?: number;
}
