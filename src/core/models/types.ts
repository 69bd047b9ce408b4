/**
 * What every model family offers the explanation methods. Methods talk to this interface only; what
 * is family-specific (the order of the relevance pass, how tokens map back to pixels or words) lives
 * in the family's own file.
 */
import type { Tensor2D, Tensor4D } from '../tf.js';
import type { AttentionRecord } from './layers.js';
import type { RuleSet } from '../relevance/rulesets.js';
import type { RelevanceOptions, RelevanceResult } from '../relevance/vit.js';

/** Images, already preprocessed: [B, C, H, W], normalised as the model expects. */
export interface ImageInput {
  readonly kind: 'image';
  readonly pixels: Tensor4D;
}

export type ModelInput = ImageInput;

export interface ForwardOptions {
  /** Per layer, zero [T, T] tensors for each (sample, head), added to A so that ∂(target)/∂A can be taken. */
  readonly probes?: readonly (readonly Tensor2D[])[];
}

/** The result of a forward pass: logits plus every layer's attention record. */
export interface ForwardResult<R = unknown> {
  readonly logits: Tensor2D;
  readonly attention: readonly AttentionRecord[];
  /** Family-specific activations that relevance rules need (see the family's file). */
  readonly record: R;
  readonly batch: number;
}

/** Where a token-level map lives in input space. */
export type MapSpace = 'patch' | 'pixel' | 'token';

export interface ClassifierModel {
  readonly family: string;
  /** Folder name or a label; shown in outputs. */
  readonly name: string;
  readonly labels: readonly string[];
  readonly numClasses: number;
  /** Number of encoder layers. */
  readonly depth: number;
  readonly heads: number;
  /** Sequence length T, prefix tokens included. */
  readonly tokens: number;
  /** Tokens before the input's own tokens (CLS, DeiT's distillation token). */
  readonly prefixTokens: number;
  forward(input: ModelInput, options?: ForwardOptions): ForwardResult;
  /** The family's relevance pass (its graph, in reverse) under a rule set, starting from one-hot targets. */
  relevance(fwd: ForwardResult, targets: readonly number[], rules: RuleSet, options?: RelevanceOptions): RelevanceResult;
  /**
   * Turn a row over all T tokens (e.g. the CLS row of a rollout) into a map over the input: for ViT,
   * the patch tokens laid out on the patch grid.
   */
  tokenRowToMap(row: ArrayLike<number>): { data: Float32Array; shape: number[]; space: MapSpace };
  dispose(): void;
}
