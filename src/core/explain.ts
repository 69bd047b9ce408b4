/** The one-call entry point: explain a batch of inputs with one method. */
import { ExplainContext } from './context.js';
import { UsageError } from './errors.js';
import { getMethod } from './methods/registry.js';
import type { Explanation, MethodOptions } from './methods/types.js';
import type { ClassifierModel, ModelInput } from './models/types.js';

export interface ExplainRequest extends MethodOptions {
  readonly method: string;
  /** A class for all inputs, one per input, or 'predicted' (default). */
  readonly target?: number | readonly number[] | 'predicted';
  /** Explain y_target − y_contrast (a class for all inputs, or one per input); see ContextOptions. */
  readonly contrast?: number | readonly number[];
}

export async function explain(model: ClassifierModel, input: ModelInput, request: ExplainRequest): Promise<Explanation[]> {
  const method = getMethod(request.method);
  if (request.contrast !== undefined && !method.targetDependent) {
    throw new UsageError(`a contrast does not apply to method '${method.id}': its map does not depend on the target class, so there is no y_target − y_contrast to explain`);
  }
  const ctx = new ExplainContext(model, input, request.contrast === undefined ? {} : { contrast: request.contrast });
  try {
    const targets = ctx.resolveTargets(request.target ?? 'predicted');
    const { method: _m, target: _t, contrast: _c, ...options } = request;
    return await method.attribute(ctx, targets, options);
  } finally {
    ctx.dispose();
  }
}
