// What an attention layer records in a forward pass, and how a test may edit A: shared by the
// model types and the layers, so it sits below both.
import type { Tensor2D, Tensor4D } from '../tf.js';

/** What one attention layer saw and produced, for one forward pass of a batch. */
export interface AttentionRecord {
  /** Input of the qkv projection, [B·T, D]. */
  readonly input: Tensor2D;
  /** q|k|v, [B·T, 3D]. */
  readonly qkv: Tensor2D;
  /** The attention probabilities A (softmax output), [B, H, T, T]. */
  readonly probs: Tensor4D;
  /** A·V with heads concatenated: the input of `proj`, [B·T, D]. */
  readonly context: Tensor2D;
  /** Output of `proj`, [B·T, D]. */
  readonly output: Tensor2D;
  /**
   * The normaliser's input, one [T, T] per (sample, head) in that order: scaled Q·Kᵀ plus every
   * additive mask, exactly as the forward computed it (the tensors it made anyway, so keeping them
   * costs no op). Relevance rules that decompose the normaliser at its input (AttnLRP) read it.
   * Absent from the batched path, which no relevance pass uses.
   */
  readonly scores?: readonly Tensor2D[];
  /** Set by the batched path (every sample and head in one 3-D product): attentionBackward then stays batched too. */
  readonly batched?: true;
}

/** A function of (A, sample, head) → A′, for one layer; differentiable when built from tf ops. */
export type AttentionEdit = (probs: Tensor2D, sample: number, head: number) => Tensor2D;
