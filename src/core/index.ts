/** relprop's public API (Node). */
export { ensureBackend, BACKEND_CHOICES, type BackendChoice } from './backend.js';
export { RelpropError, CheckpointError, InputError, UsageError } from './errors.js';
export { loadModel, SUPPORTED_MODEL_TYPES, type LoadOptions } from './models/load.js';
export type { ClassifierModel, ModelInput, ImageInput, ForwardResult, MapSpace } from './models/types.js';
export { ViTModel, type ViTConfig } from './models/vit.js';
export { ExplainContext } from './context.js';
export { explain, type ExplainRequest } from './explain.js';
export { listMethods, getMethod } from './methods/registry.js';
export type { Explanation, ExplanationMethod, MethodOptions } from './methods/types.js';
export type { LedgerEntry } from './relevance/ledger.js';
export { loadImageFile, loadTensorFile, imageToInput, type LoadedImage } from './inputs.js';
export { readSafetensors, parseSafetensors, encodeSafetensors, writeSafetensors } from './io/safetensors.js';
export { readJsonTensor, parseJsonTensor } from './io/tensor-json.js';
export { conservationReport, conservationViolations, type Drift } from './relevance/ledger.js';
export { RULE_SETS, PAPER_RULES, BASELINE_RULES, getRuleSet, type RuleSet } from './relevance/rulesets.js';
export { randomViT, VIT_B16 } from './models/random.js';
export { gradientsAt } from './gradients.js';
