/**
 * The Llama family's relevance pass: AttnLRP and CP-LRP as modified gradients over the family table
 * (nn/'s backward forms under BackwardRules), read as x ⊙ g̃ — LXT's efficient implementation
 * (lxt/efficient/models/llama.py) of Achtibat et al. 2024 and Ali et al. 2022. The ledger has one row
 * per top-level module under HF's names (model.layers.N, model.norm, lm_head): x ⊙ g̃ summed at its
 * input and its output. AttnLRP's softmax keeps the Taylor bias term, so its blocks drift by design;
 * CP-LRP holds A and the gate constant and conserves on these bias-free models.
 */
import { tf, type Tensor, type Tensor2D } from '../tf.js';
import { tidy } from '../ops.js';
import { UsageError } from '../errors.js';
import { withEager } from '../engine/eager.js';
import { backward } from '../passes/passes.js';
import type { BackwardRules } from '../nn/layer.js';
import { isBlock, type LlamaModel, type LlamaRecord } from '../models/llama.js';
import type { ForwardResult } from '../models/types.js';
import { targetWeights } from '../targets.js';
import type { LedgerEntry } from './ledger.js';
import type { RuleSet } from './rulesets.js';
import type { RelevanceOptions, RelevanceResult } from './result.js';

const RULES: Readonly<Record<string, BackwardRules>> = {
  attnlrp: { id: 'attnlrp', norm: 'constant-scale', gate: 'identity-uniform', attention: 'uniform' },
  'cp-lrp': { id: 'cp-lrp', norm: 'constant-scale', gate: 'stop', attention: 'values-only' },
};

/** Per sample, Σ of x ⊙ g over every axis but the first. */
function perSample(x: Tensor, g: Tensor, batch: number): number[] {
  return Array.from(tf.tidy(() => tf.sum(tf.reshape(tf.mul(x, g), [batch, -1]), 1)).dataSync());
}

export function llamaRelevance(model: LlamaModel, fwd: ForwardResult<LlamaRecord>, targets: readonly number[], rules: RuleSet, options: RelevanceOptions = {}): RelevanceResult {
  const backwardRules = RULES[rules.id];
  if (backwardRules && (model.shape.attnSoftcap !== null || model.shape.finalSoftcap !== null)) {
    throw new UsageError(`rule set '${rules.id}' is not defined for ${model.modelType}'s soft-capped attention and logits (LXT defines no rule for them; Gemma 3 has none): use a gradient, occlusion or attention method`);
  }
  if (!backwardRules) {
    throw new UsageError(`rule set '${rules.id}' is not defined for ${model.modelType} decoders: use attnlrp or cp-lrp (the paper's rules and their baseline are written for ViT, BERT and GPT-2)`);
  }
  const r = fwd.record;
  const B = fwd.batch;
  const layers = model.network.layers;
  return tidy((): RelevanceResult => {
    // x ⊙ g̃ is the relevance for a seed of e_t (− e_c): the pass starts at the logit's value (LXT).
    const seed = targetWeights(targets, model.numClasses, options.contrast) as Tensor2D;
    const grads: Tensor[] = [];
    const dWords = withEager(model.params, r.feeds, (o) => backward(o, model.network, r.pass, seed, 1, { rules: backwardRules }, (i, d) => (grads[i] = d)));
    // Totals at each top-level boundary: layer i's input is r.inputs[i], its output r.inputs[i + 1] (the logits last).
    const totals = layers.map((_, i) => (i === 0 ? null : perSample(r.inputs[i]!, grads[i]!, B)));
    const logitTotals = perSample(fwd.logits, seed, B);
    // HF's module names; the explained-row selection and the embedding scale are relprop's own boundaries.
    const KINDS: Record<string, [string, string]> = {
      embed_scale: ['model.embed_scale', 'Scale'],
      explained: ['model.explained', 'Select'],
      norm: ['model.norm', 'RMSNorm'],
      lm_head: ['lm_head', 'Linear'],
      score: ['score', 'Linear'],
      softcap: ['final_logit_softcapping', 'Softcap'],
    };
    const names = (i: number): [string, string] => (isBlock(layers[i]!) ? [`model.${layers[i]!.name}`, 'DecoderLayer'] : KINDS[layers[i]!.name]!);
    const ledger: LedgerEntry[][] = Array.from({ length: B }, (_, b) => {
      const rows: LedgerEntry[] = [];
      for (let i = layers.length - 1; i >= 1; i--) {
        const [layer, kind] = names(i);
        const relevanceIn = i === layers.length - 1 ? logitTotals[b]! : totals[i + 1]![b]!;
        rows.push({ layer, kind, depth: 0, relevanceIn, relevanceOut: totals[i]![b]!, ...(rules.id === 'attnlrp' && isBlock(layers[i]!) ? { expectedDrift: true as const } : {}) });
      }
      return rows;
    });
    const tokens = tf.reshape(tf.mul(r.inputs[1]!, dWords), [-1, model.shape.dim]) as Tensor2D;
    const input = options.toInput ? tf.reshape(tf.sum(tokens, 1), [B, -1]) : null;
    return { attnCam: [], fromLayer: 0, tokens, input, ledger, captured: {} };
  });
}
