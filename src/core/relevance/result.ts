/** What a family's relevance pass returns, whatever the family, and where every pass starts. */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import type { LedgerEntry } from './ledger.js';
import type { RuleSet } from './rulesets.js';
import { targetWeights } from '../targets.js';
import { UsageError } from '../errors.js';

export interface RelevanceOptions {
  /**
   * Continue to the model's input: through the embeddings to the pixels (ViT), or sum the
   * encoder-input relevance over the hidden axis (text, where the authors' pass stops).
   */
  readonly toInput?: boolean;
  /**
   * The lowest layer whose R^(A) the caller needs: the pass may stop once it has it (attention
   * relevance of that layer, after A·V), leaving attnCam empty below it and `tokens` empty. A family
   * may go deeper than asked. Ignored with `toInput`. Default 0: every layer, down to the first
   * layer's input.
   */
  readonly stopAtLayer?: number;
  /**
   * A pass under the same rule set, targets and contrast that went down to the first layer's input
   * (toInput false, stopAtLayer 0): with `toInput`, a family may go on from its relevance at the
   * first layer's input instead of running the blocks again. The result then shares that pass's
   * tensors (attnCam, tokens) and extends its ledger.
   */
  readonly continueFrom?: RelevanceResult;
  /** Keep the relevance tensor at every module boundary, keyed like the goldens' `ours.relevance` (tests, the app's layer view). */
  readonly capture?: boolean;
  /**
   * Per input, a contrast class c: explain y_target − y_c ("why ' Paris' rather than ' Rome'"). The
   * difference is one more linear layer on top of the logits, and the pass starts from what the rule
   * set's own start gives it there (see startRelevance). Only for rule sets linear in the relevance.
   */
  readonly contrast?: readonly number[] | null;
}

export interface RelevanceResult {
  /** R^(A) of every layer from `fromLayer` up, [B, H, T, T] (entries below `fromLayer` are absent). */
  readonly attnCam: readonly Tensor4D[];
  /** The lowest layer the pass reached: 0 for a whole pass (see RelevanceOptions.stopAtLayer). */
  readonly fromLayer: number;
  /** Relevance at the input of the first layer, [B·T, D]; empty ([0, D]) when the pass stopped above it. */
  readonly tokens: Tensor2D;
  /** Relevance on the input, per sample: [B, H, W] pixels or [B, T] tokens (when toInput). */
  readonly input: Tensor | null;
  readonly ledger: readonly (readonly LedgerEntry[])[];
  readonly captured: Readonly<Record<string, Tensor>>;
}

export function disposeRelevance(r: RelevanceResult): void {
  for (const t of [...r.attnCam.filter((a) => a !== undefined), r.tokens, r.input, ...Object.values(r.captured)]) t?.dispose();
}

/**
 * The relevance at the logits, [B, C]: 1 at each input's target (the authors' generate_LRP), or the
 * target logit's value there (LRP proper, LXT, Ali et al.), as the rule set says.
 *
 * With a contrast class c the explained output is y = z_t − z_c, a Linear layer with weights e_t − e_c
 * on top of the logits. Its one-hot start (∂y/∂z, as generate_LRP's one-hot is ∂z_t/∂z) is e_t − e_c;
 * its logit start (R_y = y) passed through that layer by the ε-rule (z_k·R_y/y) is z_t·e_t − z_c·e_c,
 * which sums to y. Either is the single-target start of t minus that of c, so for a rule set linear
 * in the relevance the pass is exactly the difference of the two single-target passes; the paper's
 * renormalised Add is not linear (and would send nothing past it from a start summing to 0), so
 * its rules refuse a contrast.
 */
export function startRelevance(targets: readonly number[], classes: number, logits: Tensor2D, rules: RuleSet, contrast?: readonly number[] | null): Tensor2D {
  if (contrast && !rules.linearInRelevance) {
    throw new UsageError(
      `rule set '${rules.id}' cannot explain a contrastive target (logit A − logit B): its renormalised Add is not linear in the relevance, ` +
        `so the pass would not be the difference of the two targets' passes (and from e_A − e_B, whose total is 0, it passes nothing on). ` +
        `Use --rules baseline, attnlrp or cp-lrp, or a gradient, attention or occlusion method`,
    );
  }
  return tf.tidy(() => {
    const weights = targetWeights(targets, classes, contrast) as Tensor2D;
    return (rules.start === 'logit' ? tf.mul(weights, logits) : weights) as Tensor2D;
  });
}
