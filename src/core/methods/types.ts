/**
 * One interface for every explanation method, in Captum's spirit: the same call shape
 * (`attribute(context, targets, options)`) and results that carry their own metadata.
 */
import type { MapSpace, OcclusionMode } from '../models/types.js';
import type { ExplainContext } from '../context.js';
import type { LedgerEntry } from '../relevance/ledger.js';

/** Every option any method takes. A method lists the ones it reads in `options`. */
export interface MethodOptions {
  /** First layer included in a rollout-style product (the authors' `start_layer`). */
  readonly startLayer?: number;
  /** Rule set for relevance propagation: 'paper' (Chefer et al.'s rules), 'baseline' (their original-LRP baseline), 'attnlrp' or 'cp-lrp'. */
  readonly rules?: string;
  /** Integration steps (integrated gradients). */
  readonly steps?: number;
  /** What occlusion puts in a unit's place: 'mask' / 'unk' token, 'remove' it (text), or the 'baseline' (images). */
  readonly occlusion?: OcclusionMode;
  /** LRP-γ on the Linear layers (CP-LRP): 0 is LRP-0/ε, larger values favour positive contributions. */
  readonly gamma?: number;
  /** CP-LRP through a text pooler's tanh: 'gradient' (the default, as Ali et al.'s code) or 'identity' (the identity rule). */
  readonly pooler?: 'gradient' | 'identity';
  /** Noisy copies averaged (SmoothGrad). */
  readonly samples?: number;
  /** Noise level σ / (max(x) − min(x)) of the input (SmoothGrad). */
  readonly noise?: number;
  /** Seed of the noise (SmoothGrad): the same seed gives the same map. */
  readonly seed?: number;
  /** How SmoothGrad combines the noisy copies, by Captum's NoiseTunnel names: 'smoothgrad' (mean, the default), 'smoothgrad_sq' (mean of squares) or 'vargrad' (variance). */
  readonly ntType?: 'smoothgrad' | 'smoothgrad_sq' | 'vargrad';
  /** SmoothGrad: |∂y/∂x| of each noisy copy (true, the default: Captum Saliency's abs) or the signed gradient (false). */
  readonly abs?: boolean;
}

export type OptionName = keyof MethodOptions;

export interface Explanation {
  readonly method: string;
  /** The class explained. Target-independent methods report the target they were asked for. */
  readonly target: number;
  /** With a contrastive target, the class subtracted: the map explains y_target − y_contrast. */
  readonly contrast?: number;
  /** The raw map (not normalised, not upsampled), row-major. */
  readonly map: Float32Array;
  readonly shape: readonly number[];
  readonly space: MapSpace;
  /** Relevance totals at every layer boundary crossed, for relevance-propagation methods. */
  readonly ledger: readonly LedgerEntry[] | null;
  readonly logits: Float32Array;
  readonly options: MethodOptions;
}

export interface ExplanationMethod {
  readonly id: string;
  readonly title: string;
  /** Where the method comes from, for help texts and reports. */
  readonly reference: string;
  /** False when the map does not depend on the target class (raw attention, rollout). */
  readonly targetDependent: boolean;
  /** True when the map is signed (positive and negative evidence): display it with a diverging colormap. */
  readonly signed: boolean;
  readonly options: readonly OptionName[];
  /** One explanation per input of the context's batch; `targets[i]` is the class for input i. */
  attribute(ctx: ExplainContext, targets: readonly number[], options: MethodOptions): Promise<Explanation[]>;
}
