/** What a family's relevance pass returns, whatever the family. */
import type { Tensor, Tensor2D, Tensor4D } from '../tf.js';
import type { LedgerEntry } from './ledger.js';

export interface RelevanceOptions {
  /**
   * Continue to the model's input: through the embeddings to the pixels (ViT), or sum the
   * encoder-input relevance over the hidden axis (text, where the authors' pass stops).
   */
  readonly toInput?: boolean;
  /** Keep the relevance tensor at every module boundary, keyed like the goldens' `ours.relevance` (tests, the app's layer view). */
  readonly capture?: boolean;
}

export interface RelevanceResult {
  /** R^(A) of every layer, [B, H, T, T]. */
  readonly attnCam: readonly Tensor4D[];
  /** Relevance at the input of the first layer, [B·T, D]. */
  readonly tokens: Tensor2D;
  /** Relevance on the input, per sample: [B, H, W] pixels or [B, T] tokens (when toInput). */
  readonly input: Tensor | null;
  readonly ledger: readonly (readonly LedgerEntry[])[];
  readonly captured: Readonly<Record<string, Tensor>>;
}

export function disposeRelevance(r: RelevanceResult): void {
  for (const t of [...r.attnCam, r.tokens, ...(r.input ? [r.input] : []), ...Object.values(r.captured)]) t.dispose();
}
