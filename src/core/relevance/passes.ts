/**
 * The relevance pass of a loaded model: each family's pass (its graph in reverse under a rule set,
 * from the target logits down) is a function of the model and its recorded forward, looked up here
 * by family. Models do not carry their own relevance pass, so model files and rule files import
 * in one direction only.
 */
import type { ClassifierModel, ForwardResult } from '../models/types.js';
import type { RuleSet } from './rulesets.js';
import type { RelevanceOptions, RelevanceResult } from './result.js';
import { UsageError } from '../errors.js';
import { vitRelevance } from './vit.js';
import { bertRelevance } from './bert.js';
import { gpt2Relevance } from './gpt2.js';
import { llamaRelevance } from './llama.js';

type Pass = (model: never, fwd: never, targets: readonly number[], rules: RuleSet, options?: RelevanceOptions) => RelevanceResult;

const PASSES: Readonly<Record<string, Pass>> = { vit: vitRelevance, bert: bertRelevance, gpt2: gpt2Relevance, llama: llamaRelevance };

/** The family's relevance pass under `rules`, starting from the target logits (or target − contrast). */
export function relevancePass(model: ClassifierModel, fwd: ForwardResult, targets: readonly number[], rules: RuleSet, options?: RelevanceOptions): RelevanceResult {
  const pass = PASSES[model.family];
  if (!pass) throw new UsageError(`model family '${model.family}' has no relevance pass yet: the relevance methods (lrp, transformer-attribution, attnlrp, cp-lrp) do not apply to it; the gradient, occlusion and attention methods do (e.g. --method gradient-input)`);
  return pass(model as never, fwd as never, targets, rules, options);
}

/** Whether a family has a relevance pass. */
export function hasRelevancePass(model: Pick<ClassifierModel, 'family'>): boolean {
  return model.family in PASSES;
}
