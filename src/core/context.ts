/**
 * An explanation context: one model, one batch of inputs, and the work done on them so far. Every
 * method asks the context for what it needs, so a compare grid runs one forward pass, not one per
 * method. Dispose it to free the recorded activations.
 */
import { tf, type Tensor, type Tensor4D } from './tf.js';
import { batchSize, disposeInput, explainedPositions, type ClassifierModel, type ForwardResult, type ModelInput } from './models/types.js';
import { CancelledError, findNonFinite, NonFiniteError, UsageError } from './errors.js';
import type { RuleSet } from './relevance/rulesets.js';
import { disposeRelevance, type RelevanceResult } from './relevance/result.js';
import { relevancePass } from './relevance/passes.js';
import { gradientsAt } from './gradients.js';
import { tensorsOf } from './tensors.js';

export { tensorsOf };
import { hasCheapNativePredict, hasNativePasses } from './onnx/run.js';

/** Gradients of the target logits (one target per input; the batch's sum is differentiated). */
export interface Gradients {
  /** ∂y_t/∂A per layer, [B, H, T, T]: the paper's ∇A. */
  readonly attention: readonly Tensor4D[];
  /** ∂y_t/∂x for the model's differentiable input (pixels, or word embeddings for text). */
  readonly input: Tensor;
}

const key = (targets: readonly number[], extra = '') => `${targets.join(',')}|${extra}`;

export interface ContextOptions {
  /**
   * A contrastive target: explain y_target − y_contrast instead of y_target — one class per input,
   * or one for all (e.g. the next token ' Paris' against ' Rome'). Gradient methods differentiate
   * the difference, occlusion scores its drop; relevance passes start from the contrastive start
   * (relevance/result.ts: startRelevance), for rule sets linear in the relevance. Fixed for the
   * context's life, so every cached gradient and relevance pass means the same thing.
   */
  readonly contrast?: number | readonly number[];
  /**
   * Stops the multi-pass methods (integrated gradients, SmoothGrad, occlusion) between passes:
   * they throw CancelledError, having freed what they allocated.
   */
  readonly signal?: AbortSignal;
  /** Called after each pass of a multi-pass method, with what is done of the whole call. */
  readonly onProgress?: (p: ExplainProgress) => void;
}

/** How far a multi-pass method is: `done` of `total` units (steps, noisy copies, occluded units) over all inputs. */
export interface ExplainProgress {
  readonly method: string;
  readonly done: number;
  readonly total: number;
  readonly unit: 'steps' | 'samples' | 'units';
}

/** Back to the event loop, so that a signal handler (Ctrl-C) or a cancel message can run. */
const yieldToEventLoop = (): Promise<void> => new Promise((ok) => (typeof setImmediate === 'function' ? setImmediate(ok) : setTimeout(ok, 0)));

export class ExplainContext {
  private fwd: ForwardResult | null = null;
  private logitRows: Float32Array[] | null = null;
  private readonly attnCache = new Map<number, Float32Array[]>();
  private readonly gradCache = new Map<string, Gradients>();
  private readonly relevanceCache = new Map<string, Array<{ result: RelevanceResult; toInput: boolean }>>();
  private maskRows: Uint8Array[] | null = null;
  /** The contrast class of each input (see ContextOptions), or null. */
  readonly contrast: readonly number[] | null;
  private readonly signal: AbortSignal | undefined;
  private readonly onProgress: ((p: ExplainProgress) => void) | undefined;

  constructor(
    readonly model: ClassifierModel,
    readonly input: ModelInput,
    options: ContextOptions = {},
  ) {
    this.signal = options.signal;
    this.onProgress = options.onProgress;
    const c = options.contrast;
    this.contrast = c === undefined ? null : this.checkClasses(typeof c === 'number' ? Array(this.batch).fill(c) : [...c], 'contrast');
  }

  get batch(): number {
    return batchSize(this.input);
  }

  /** Sequence length T of this context's input. */
  get tokens(): number {
    return this.model.tokensOf(this.input);
  }

  /** The recorded forward pass (computed once). */
  forward(): ForwardResult {
    if (!this.fwd) this.fwd = this.model.forward(this.input);
    return this.fwd;
  }

  /**
   * Input b's logits from the engine that `model.predict` runs on, for methods that compare them with
   * predict's logits of edited inputs (occlusion): where predict is one native graph and this
   * context's logits came from the tfjs forward, one more lean pass, so the intact input and its
   * variants differ only by the edit; elsewhere the context's logits (no second forward).
   */
  predictedLogits(b: number): Float32Array {
    if (!hasNativePasses(this.model)) return this.logits()[b]!;
    const sample = this.model.sampleOf(this.input, b);
    try {
      const intact = this.model.predict(sample);
      const row = intact.dataSync() as Float32Array;
      intact.dispose();
      return row;
    } finally {
      disposeInput(sample);
    }
  }

  /** Whether the recorded forward pass has been run (relevance and attention methods reuse it). */
  hasForward(): boolean {
    return this.fwd !== null;
  }

  /** Logits of each input, [B][C]. */
  logits(): Float32Array[] {
    if (!this.logitRows) {
      // Before any method has asked for the recorded forward pass, and where the model's lean pass
      // is one native graph (onnx/run.ts), that pass gives the logits: integrated gradients,
      // SmoothGrad and occlusion need nothing else from a forward.
      const lean = !this.fwd && hasCheapNativePredict(this.model);
      const logits = lean ? this.model.predict(this.input) : this.forward().logits;
      const flat = logits.dataSync() as Float32Array;
      const c = logits.shape[1];
      if (lean) logits.dispose();
      const bad = findNonFinite(flat);
      if (bad) {
        this.checkInputFinite();
        const at = this.batch > 1 ? `input ${Math.floor(bad.index / c)}, class ${bad.index % c}` : `class ${bad.index}`;
        throw new NonFiniteError(
          `model '${this.model.name}' gives non-finite logits (${bad.value} at ${at}; ${bad.count} of ${flat.length} values) on a finite input: ` +
            'its forward pass overflows or divides by zero; check the weights and config.json (layer_norm_eps must be > 0)',
          this.model.source?.folder,
        );
      }
      this.logitRows = Array.from({ length: this.batch }, (_, b) => flat.slice(b * c, (b + 1) * c));
    }
    return this.logitRows;
  }

  /**
   * NonFiniteError naming the first cause found, the input or the logits. Methods call it when a map
   * comes out non-finite, so the message says why rather than where it showed.
   */
  checkFinite(): void {
    this.checkInputFinite();
    this.logits();
  }

  private checkInputFinite(): void {
    if (this.input.kind !== 'image') return;
    const values = this.input.pixels.dataSync();
    const bad = findNonFinite(values);
    if (bad) throw new NonFiniteError(`the input image holds ${bad.value} at value ${bad.index} (${bad.count} of ${values.length} values are not finite): an input must be finite`);
  }

  /** Predicted class of each input. */
  predictions(): number[] {
    return this.logits().map((row) => row.indexOf(Math.max(...row)));
  }

  /** What input b's explanation is about, from a row of its logits: y_target, or y_target − y_contrast. */
  targetScore(logits: ArrayLike<number>, b: number, target: number): number {
    return logits[target]! - (this.contrast ? logits[this.contrast[b]!]! : 0);
  }

  /** Per input, 1 at its real tokens and 0 at padding (all ones for images), length T. */
  tokenMask(): Uint8Array[] {
    if (!this.maskRows) {
      const T = this.tokens;
      if (this.input.kind === 'tokens') {
        const flat = this.input.attentionMask.dataSync();
        this.maskRows = Array.from({ length: this.batch }, (_, b) => Uint8Array.from(flat.subarray(b * T, (b + 1) * T), (v) => (v ? 1 : 0)));
      } else {
        this.maskRows = Array.from({ length: this.batch }, () => new Uint8Array(T).fill(1));
      }
    }
    return this.maskRows;
  }

  /**
   * Per input, the row of an attention map the prediction is read from: 0 (CLS) for encoder
   * classifiers, the last real token for decoders (the model's conventions say which).
   */
  explainedRows(): number[] {
    if ((this.model.conventions.explainedToken ?? 'first') === 'first') return Array(this.batch).fill(0);
    const input = this.input;
    if (input.kind === 'tokens' && input.explainAt) return explainedPositions(input, input.attentionMask.dataSync());
    return this.tokenMask().map((m) => m.lastIndexOf(1));
  }

  /** Attention probabilities of a layer for each input: [B][H·T·T]. */
  attention(layer: number): Float32Array[] {
    this.checkLayer(layer);
    let rows = this.attnCache.get(layer);
    if (!rows) {
      const probs = this.forward().attention[layer]!.probs;
      const flat = probs.dataSync() as Float32Array;
      const per = flat.length / this.batch;
      rows = Array.from({ length: this.batch }, (_, b) => flat.slice(b * per, (b + 1) * per));
      this.attnCache.set(layer, rows);
    }
    return rows;
  }

  /**
   * ∂(target logit)/∂A for every layer and ∂(target logit)/∂x, in one backward pass. Each input's
   * own target logit is differentiated; inputs do not interact, so summing over the batch keeps
   * them apart. The forward pass taken here is kept as the context's forward if there was none.
   */
  gradients(targets: readonly number[]): Gradients {
    const k = key(targets);
    const cached = this.gradCache.get(k);
    if (cached) return cached;
    const adopt = this.fwd === null;
    const g = gradientsAt(this.model, this.input, targets, true, {
      contrast: this.contrast,
      // A model with its own backward pass differentiates the recorded forward pass, if there is one.
      ...(this.fwd ? { forward: this.fwd } : {}),
      onForward: (fwd) => {
        if (!adopt) return false;
        for (const t of tensorsOf(fwd)) tf.keep(t);
        this.fwd = fwd;
        return true;
      },
    });
    const result: Gradients = { input: g.input, attention: g.attention };
    this.gradCache.set(k, result);
    return result;
  }

  /**
   * The relevance pass under a rule set (computed once per rule set, targets and depth). With a
   * contrast it starts from the contrastive start (startRelevance), which rule sets linear in the
   * relevance accept and the paper's refuse. `fromLayer`: the lowest layer whose R^(A) the caller
   * needs — the pass may stop there (RelevanceOptions.stopAtLayer); any cached pass that went at
   * least as deep serves the request.
   */
  relevance(rules: RuleSet, targets: readonly number[], toInput = false, options: { fromLayer?: number } = {}): RelevanceResult {
    // How deep a pass goes: -1 to the input, else the lowest layer whose R^(A) it holds.
    const depthOf = (r: RelevanceResult, input: boolean) => (input ? -1 : r.fromLayer);
    const wanted = toInput ? -1 : (options.fromLayer ?? 0);
    const k = key(targets, rules.id);
    const passes = this.relevanceCache.get(k) ?? [];
    const hit = passes.find((p) => depthOf(p.result, p.toInput) <= wanted);
    if (hit) return hit.result;
    // To the input: go on from a whole pass to the first layer's input, if there is one.
    const below = toInput ? passes.find((p) => !p.toInput && p.result.fromLayer === 0) : undefined;
    const result = relevancePass(this.model, this.forward(), targets, rules, {
      toInput,
      contrast: this.contrast,
      ...(toInput || !options.fromLayer ? {} : { stopAtLayer: options.fromLayer }),
      ...(below ? { continueFrom: below.result } : {}),
    });
    passes.push({ result, toInput });
    this.relevanceCache.set(k, passes);
    return result;
  }

  /**
   * Between two passes of a multi-pass method: throws CancelledError once the signal is aborted,
   * reports progress, and yields to the event loop when someone listens (a signal or a progress
   * callback), so that they get to run during a long computation.
   */
  async pass(progress?: ExplainProgress): Promise<void> {
    if (!this.signal && !this.onProgress) return;
    this.throwIfCancelled();
    if (progress) this.onProgress?.(progress);
    await yieldToEventLoop();
    this.throwIfCancelled();
  }

  throwIfCancelled(): void {
    if (this.signal?.aborted) throw new CancelledError('cancelled');
  }

  /** Validate targets (one per input, or one for all) against the model's classes. */
  resolveTargets(targets: number | readonly number[] | 'predicted'): number[] {
    const list = targets === 'predicted' ? this.predictions() : this.checkClasses(typeof targets === 'number' ? Array(this.batch).fill(targets) : [...targets], 'target');
    this.contrast?.forEach((c, b) => {
      if (c === list[b]) throw new UsageError(`the contrast class ${c} is the target itself${this.batch > 1 ? ` (input ${b})` : ''}: y_target − y_contrast would be 0`);
    });
    return list;
  }

  private checkClasses(list: number[], what: 'target' | 'contrast'): number[] {
    if (list.length !== this.batch) throw new UsageError(`${list.length} ${what}s given for ${this.batch} inputs`);
    for (const t of list) {
      if (!Number.isInteger(t) || t < 0 || t >= this.model.numClasses) {
        throw new UsageError(`${what} ${t} is out of range: model '${this.model.name}' has classes 0..${this.model.numClasses - 1}`);
      }
    }
    return list;
  }

  checkLayer(layer: number, option = 'layer'): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.model.depth) {
      throw new UsageError(`${option} ${layer} is out of range: model '${this.model.name}' has layers 0..${this.model.depth - 1}`);
    }
  }

  dispose(): void {
    if (this.fwd) tf.dispose(tensorsOf(this.fwd));
    this.fwd = null;
    for (const g of this.gradCache.values()) tf.dispose([g.input, ...g.attention]);
    for (const passes of this.relevanceCache.values()) for (const p of passes) disposeRelevance(p.result);
    this.gradCache.clear();
    this.relevanceCache.clear();
    this.logitRows = null;
    this.maskRows = null;
    this.attnCache.clear();
  }
}

