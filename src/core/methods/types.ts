/**
 * One interface for every explanation method, in Captum's spirit: the same call shape
 * (`attribute(context, targets, options)`) and results that carry their own metadata.
 */
import type { MapSpace, OcclusionMode } from '../models/types.js';
import type { ExplainContext } from '../context.js';
import type { LedgerEntry } from '../relevance/ledger.js';
import type { OptionName, OptionValues } from './options.js';

/**
 * Every option any method takes, as options.ts defines them (name, range, default, help); a method
 * lists the ones it reads in `options`.
 */
export interface MethodOptions extends OptionValues {
  /**
   * Called after each pass of a multi-pass method (integrated gradients' steps, SmoothGrad's noisy
   * copies, summed over the targets; occlusion's variants, per target). Not a setting: never recorded with the
   * map. May throw (a CancelledError) to stop the method between passes.
   */
  readonly onProgress?: (done: number, total: number) => void;
}

export type { OptionName };

// The schema's occlusion modes are the models' (which act on them): the same set, checked here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
export type OcclusionModesAgree = Holds<Same<NonNullable<MethodOptions['occlusion']>, OcclusionMode>>;

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
