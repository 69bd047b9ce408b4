/** The one-call entry point: explain a batch of inputs with one method. */
import { ExplainContext, type ExplainProgress } from './context.js';
import { assertFitsInMemory } from './memory.js';
import { UsageError } from './errors.js';
import { getMethod } from './methods/registry.js';
import type { Explanation, MethodOptions } from './methods/types.js';
import type { ClassifierModel, ModelInput } from './models/types.js';

export interface ExplainRequest extends Omit<MethodOptions, 'onProgress'> {
  readonly method: string;
  /** A class for all inputs, one per input, or 'predicted' (default). */
  readonly target?: number | readonly number[] | 'predicted';
  /** Explain y_target − y_contrast (a class for all inputs, or one per input); see ContextOptions. */
  readonly contrast?: number | readonly number[];
  /** Stops integrated gradients, SmoothGrad and occlusion between passes (CancelledError). */
  readonly signal?: AbortSignal;
  /** Progress of integrated gradients, SmoothGrad and occlusion, after each pass. */
  readonly onProgress?: (p: ExplainProgress) => void;
}

export async function explain(model: ClassifierModel, input: ModelInput, request: ExplainRequest): Promise<Explanation[]> {
  const method = getMethod(request.method);
  if (request.contrast !== undefined && !method.targetDependent) {
    throw new UsageError(`a contrast does not apply to method '${method.id}': its map does not depend on the target class, so there is no y_target − y_contrast to explain`);
  }
  // Before any pass: a request that cannot fit fails now, with the reason, not after minutes.
  assertFitsInMemory(model, input, method.id);
  const { method: _m, target: _t, contrast: _c, signal, onProgress, ...options } = request;
  const ctx = new ExplainContext(model, input, { ...(request.contrast === undefined ? {} : { contrast: request.contrast }), ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
  try {
    const targets = ctx.resolveTargets(request.target ?? 'predicted');
    return await method.attribute(ctx, targets, options);
  } finally {
    ctx.dispose();
  }
}
