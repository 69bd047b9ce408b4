/**
 * What every model family offers the explanation methods. Methods talk to this interface only; what
 * is family-specific (the order of the relevance pass, how tokens map back to pixels or words) lives
 * in the family's own file.
 */
import type { Tensor, Tensor2D, Tensor4D } from '../tf.js';
import type { AttentionEdit, AttentionRecord } from './records.js';
import type { ModelSource } from '../provenance.js';
import type { HostTensor, Params } from '../engine/ops.js';
import type { Network } from '../nn/network.js';
import { UsageError } from '../errors.js';

/** Images, already preprocessed: [B, C, H, W], normalised as the model expects. */
export interface ImageInput {
  readonly kind: 'image';
  readonly pixels: Tensor4D;
}

/** Token ids with their attention mask (1 = token, 0 = padding) and segment ids, each [B, T] int32. */
export interface TokenInput {
  readonly kind: 'tokens';
  readonly ids: Tensor2D;
  readonly attentionMask: Tensor2D;
  readonly typeIds?: Tensor2D;
  /**
   * Decoders: per sample, the position whose next-token prediction is explained (default: the last
   * real token). Causal attention makes the tokens after it irrelevant, so one forward pass serves
   * every position of a generated continuation.
   */
  readonly explainAt?: readonly number[];
}

/** Per sample, the decoder's explained position: explainAt, checked against the real tokens, else the last real token. */
export function explainedPositions(tokens: TokenInput, mask: ArrayLike<number>): number[] {
  const [B, T] = tokens.ids.shape;
  return Array.from({ length: B }, (_, b) => {
    let last = -1;
    for (let t = 0; t < T; t++) if (mask[b * T + t]) last = t;
    const at = tokens.explainAt?.[b];
    if (at === undefined) return last;
    if (!Number.isInteger(at) || at < 0 || at > last || !mask[b * T + at]) throw new UsageError(`position ${at} is not a token of input ${b} (its real tokens end at ${last})`);
    return at;
  });
}

export type ModelInput = ImageInput | TokenInput;

export function batchSize(input: ModelInput): number {
  return input.kind === 'image' ? input.pixels.shape[0] : input.ids.shape[0];
}

export function disposeInput(input: ModelInput): void {
  if (input.kind === 'image') input.pixels.dispose();
  else for (const t of [input.ids, input.attentionMask, input.typeIds]) t?.dispose();
}

export interface ForwardOptions {
  /** Per layer, zero [T, T] tensors for each (sample, head), added to A so that ∂(target)/∂A can be taken. */
  readonly probes?: readonly (readonly Tensor2D[])[];
  /**
   * A replacement for the differentiable input (see ClassifierModel.gradientInput): pixels for images,
   * word embeddings for text. Its batch may be a multiple n of the input's when the input has one
   * sample (integrated gradients' interpolation path).
   */
  readonly inputValue?: Tensor;
  /** All heads in 3-D products (training small models); incompatible with probes. */
  readonly batchedAttention?: boolean;
  /** Change one layer's attention weights (attention tests). */
  readonly attentionEdit?: { readonly layer: number; readonly edit: AttentionEdit };
}

/** What every family's forward records of a layer's attention: the weights A, [B, H, T, T]. */
export interface AttentionMaps {
  readonly probs: Tensor4D;
}

/** The result of a forward pass: logits plus every layer's attention weights (and, in `record`, what the family's relevance pass reads). */
export interface ForwardResult<R = unknown> {
  readonly logits: Tensor2D;
  readonly attention: readonly AttentionMaps[];
  /** Family-specific activations that relevance rules need (see the family's file). */
  readonly record: R;
  readonly batch: number;
}

/** Where a token-level map lives in input space. */
export type MapSpace = 'patch' | 'pixel' | 'token';

/**
 * The authors' ViT and BERT code differ in small ways that change numbers; each family states its
 * own, so the method files need no family checks.
 */
export interface MethodConventions {
  /** Row-normalise Ā + I in the transformer-attribution rollout (BERT's ExplanationGenerator does; ViT_LRP does not). */
  readonly attributionRolloutRowNormalise: boolean;
  /** Attention GradCAM: head weights from the explained token's row over input tokens ('cls-row', ViT, GPT-2) or from the whole T×T gradient, min-max normalised over the whole map ('whole-map', BERT). */
  readonly gradcam: 'cls-row' | 'whole-map';
  /**
   * Which token's row of an attention map the prediction is read from: 'first' (CLS, the default
   * when absent) for encoder classifiers, 'last' (the last real token of each sample) for decoders,
   * whose logits are the next-token prediction at the end of the text.
   */
  readonly explainedToken?: 'first' | 'last';
}

/** 'auto': [MASK], else [UNK], else removal for text; the baseline for images. */
export type OcclusionMode = 'auto' | 'mask' | 'unk' | 'remove' | 'baseline';

export interface Occlusions {
  /** One input per occluded unit, in batches small enough to run. */
  readonly batches: readonly ModelInput[];
  /** Map position of each variant, in order across batches. */
  readonly positions: readonly number[];
  readonly shape: number[];
  readonly space: MapSpace;
  /** The mode actually used (e.g. 'mask' falls back to 'unk' when the tokenizer has no [MASK]). */
  readonly mode: OcclusionMode;
}

/**
 * How a CLS-row map treats the CLS position itself (text maps keep every position). Decoders ignore
 * it: their explained token is the text's last word, which a map must show.
 */
export type ClsEntry = 'zero' | 'row-min' | 'keep';

/**
 * A model's one layer definition (families/) with its weights, for a runner that executes whole
 * passes (engine/trace.ts): the runner sees the layer list and graph inputs, never the model class.
 */
export interface NativeForm {
  readonly network: Network;
  readonly params: Params;
  /** The graph inputs of the forward pass for `input` (`x` the network's input). */
  predictFeeds(input: ModelInput): Record<string, HostTensor>;
  /**
   * The graph inputs of an input-gradient pass at the values `x` of the differentiable input (copies
   * stacked along the first axis), with their count; null where this form does not take them.
   */
  gradientFeeds(input: ModelInput, x: Tensor): { feeds: Record<string, HostTensor>; copies: number } | null;
}

export interface ClassifierModel {
  readonly family: string;
  /** Folder name or a label; shown in outputs. */
  readonly name: string;
  /** The folder it was loaded from, with hashes of its weights and config (absent for models built in memory). */
  source?: ModelSource;
  /** Values neither config.json nor the weights state that loading assumed, each with its override (see docs/models.md). */
  inferred?: readonly string[];
  readonly labels: readonly string[];
  readonly numClasses: number;
  /** The one-definition form of the model, where its family has one (see NativeForm). */
  nativeForm?(): NativeForm;
  /** Number of encoder layers. */
  readonly depth: number;
  readonly heads: number;
  /** Tokens before the input's own tokens (CLS, DeiT's distillation token). */
  readonly prefixTokens: number;
  readonly conventions: MethodConventions;
  /** Sequence length T of this input, prefix tokens included. */
  tokensOf(input: ModelInput): number;
  forward(input: ModelInput, options?: ForwardOptions): ForwardResult;
  /** Logits only, [B, C], freeing each layer's activations as it goes (occlusion, perturbation tests). */
  predict(input: ModelInput, options?: Pick<ForwardOptions, 'attentionEdit'>): Tensor2D;
  /**
   * Variants of sample b with one input unit occluded each (a token masked or removed, a patch set to
   * the baseline), batched, and where each unit sits in the map. Units not occluded (special tokens,
   * padding) score 0.
   */
  occlusions(input: ModelInput, b: number, mode: OcclusionMode): Occlusions;
  /** Each layer's output hidden states in a forward result, [B·T, D] (analyses of representations). */
  hiddenStates(fwd: ForwardResult): readonly Tensor2D[];
  /**
   * Optional: the gradient of Σ seed ⊙ logits ([B, C] weights: one-hot targets, or e_t − e_c) with
   * respect to the differentiable input and, if asked, each layer's attention weights A ([B, H, T, T]),
   * by a hand-written backward pass over a recorded forward pass (no attention edits). Families that
   * have it are differentiated without a tape (gradients.ts); the others through tf.grads.
   */
  backward?(fwd: ForwardResult, seed: Tensor2D, options: { attention: boolean }): { input: Tensor; attention: Tensor4D[] };
  /**
   * Turn a row over all T tokens (e.g. the CLS row of a rollout) into a map over the input: for ViT,
   * the patch tokens laid out on the patch grid; for text, every token position.
   */
  tokenRowToMap(row: ArrayLike<number>, cls?: ClsEntry): { data: Float32Array; shape: number[]; space: MapSpace };
  /** The tensor gradient methods differentiate (pixels [B, C, H, W], or word embeddings [B·T, D]); the caller disposes it. */
  gradientInput(input: ModelInput): Tensor;
  /** The integrated-gradients reference point for one sample's gradient input (batch 1); the caller disposes it. */
  gradientBaseline(input: ModelInput): Tensor;
  /**
   * Per-sample maps from attributions shaped like gradientInput: 'abs' (saliency: max over colours,
   * Σ|·| over the hidden axis), 'abs-sum' (Σ|·| over colours or hidden axis) or 'signed' (Σ: × input, IG).
   */
  attributionMaps(attribution: Tensor, batch: number, mode: 'abs' | 'abs-sum' | 'signed'): { maps: Float32Array[]; shape: number[]; space: MapSpace };
  /** One sample of a batched input, as an input of batch 1 (the caller disposes its tensors). */
  sampleOf(input: ModelInput, b: number): ModelInput;
  dispose(): void;
}
