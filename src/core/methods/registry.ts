/** Method ids → methods. The ids are fixed: the CLI, the app and saved results use them. */
import { UsageError } from '../errors.js';
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
];

export function listMethods(): readonly ExplanationMethod[] {
  return METHODS;
}

export function getMethod(id: string): ExplanationMethod {
  const m = METHODS.find((x) => x.id === id);
  if (!m) throw new UsageError(`unknown method '${id}' (available: ${METHODS.map((x) => x.id).join(', ')})`);
  return m;
}
