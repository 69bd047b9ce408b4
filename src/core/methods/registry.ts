/** Method ids → methods. The ids are fixed: the CLI, the app and saved results use them. */
import { findNonFinite, NonFiniteError, UsageError } from '../errors.js';
import type { ExplanationMethod } from './types.js';
import { rawAttention } from './raw-attention.js';
import { rollout } from './rollout.js';
import { transformerAttribution } from './transformer-attribution.js';
import { lrp } from './lrp.js';
import { partialLrp } from './partial-lrp.js';
import { attentionGradcam } from './attention-gradcam.js';
import { saliency } from './saliency.js';
import { gradientInput } from './gradient-input.js';
import { integratedGradients } from './integrated-gradients.js';
import { occlusion } from './occlusion.js';
import { randomBaseline } from './random.js';
import { attnlrp } from './attnlrp.js';
import { cpLrp } from './cp-lrp.js';
import { genericAttention } from './generic-attention.js';
import { smoothgrad } from './smoothgrad.js';
import { attentionFlow } from './attention-flow.js';

/**
 * A method whose maps are checked: NaN or ±Infinity anywhere in a map is an error, never a result
 * (a NaN map would be drawn blank and saved as nulls). The cause is looked for first in the input and
 * the logits, so the message names it.
 */
function checked(m: ExplanationMethod): ExplanationMethod {
  return {
    ...m,
    async attribute(ctx, targets, options) {
      const out = await m.attribute(ctx, targets, options);
      out.forEach((e, b) => {
        const bad = findNonFinite(e.map);
        if (!bad) return;
        ctx.checkFinite();
        throw new NonFiniteError(
          `method '${m.id}' gives a non-finite map${out.length > 1 ? ` for input ${b}` : ''} (${bad.value} at position ${bad.index}; ${bad.count} of ${e.map.length} values) from finite logits: ` +
            `the method's computation overflows or divides by zero; check its options ${JSON.stringify(options)}, the weights and config.json`,
          ctx.model.source?.folder,
        );
      });
      return out;
    },
  };
}

const METHODS: readonly ExplanationMethod[] = [
  transformerAttribution,
  lrp,
  partialLrp,
  attentionGradcam,
  rawAttention,
  rollout,
  saliency,
  gradientInput,
  integratedGradients,
  occlusion,
  randomBaseline,
  attnlrp,
  cpLrp,
  genericAttention,
  smoothgrad,
  attentionFlow,
].map(checked);

export function listMethods(): readonly ExplanationMethod[] {
  return METHODS;
}

export function getMethod(id: string): ExplanationMethod {
  const m = METHODS.find((x) => x.id === id);
  if (!m) throw new UsageError(`unknown method '${id}' (available: ${METHODS.map((x) => x.id).join(', ')})`);
  return m;
}
