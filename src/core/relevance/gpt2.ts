/**
 * The relevance pass through a GPT-2-style decoder, in the order of its graph, reversed: the tied LM
 * head (a Linear with W = wteᵀ), ln_f, the selector that picked each sample's last real token (as
 * BERT's CLS pooling picks the first), then each block in reverse — the second residual Add, the MLP
 * (c_proj, GELU, c_fc), ln_2, the Clone of the residual stream, the first residual Add, the attention
 * (c_proj, the causal attention core, c_attn), ln_1, the block input's Clone — and, for token-level
 * relevance, the embedding Add (token + position). Ledger entries carry HuggingFace's module names
 * (transformer.h.0.attn.c_attn, …); the few operations that are not modules there (residual Adds,
 * Clones, the attention products) are named as in the ViT pass (add1, clone1, matmul1, …).
 *
 * Our forward applies ln_f to the selected rows only; HF applies it to every row and then reads the
 * last one. LayerNorm works row by row, so both orders give the same relevance, and ours costs B rows.
 * Which rule each layer gets comes from the rule set; this file only knows the graph.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { matmul, tidy, type Linear } from '../ops.js';
import type { ForwardResult } from '../models/types.js';
import type { GPT2Model, GPT2Record } from '../models/gpt2.js';
import type { RuleSet } from './rulesets.js';
import type { RelevanceOptions, RelevanceResult } from './result.js';
import { LedgerRecorder } from './ledger.js';
import { preLnBlockRelevance, type PreLnBlockNames } from './pre-ln-block.js';
import { startRelevance } from './result.js';

/**
 * The head restricted to the columns that start with relevance. The tied head has one output per
 * vocabulary entry (GPT-2: 50 257), but the start is non-zero at the target (and contrast) only.
 * Every Linear rule treats output columns independently and a column without relevance passes
 * nothing on, so the rule on these columns alone gives the same result — without a transpose of the
 * whole [D, V] table (154 MB for GPT-2 small) on every pass.
 */
function startColumns(head: Linear, R0: Tensor2D, classes: readonly number[]): { head: Linear; R: Tensor2D } {
  const idx = tf.tensor1d([...new Set(classes)].sort((a, b) => a - b), 'int32');
  return {
    head: { name: head.name, wT: tf.gather(head.wT, idx, 1) as Tensor2D, b: head.b ? tf.gather(head.b, idx) : null },
    R: tf.gather(R0, idx, 1) as Tensor2D,
  };
}

/** HF's names: GPT2Block, GPT2MLP, GPT2Attention, Conv1D (c_fc, c_proj, c_attn), ln_1/ln_2, MatMul products. */
const GPT2_BLOCK_NAMES: PreLnBlockNames = {
  block: 'GPT2Block',
  mlp: 'GPT2MLP',
  attention: 'GPT2Attention',
  linear: 'Conv1D',
  mlpDropout: 'dropout',
  fc1: 'c_fc',
  fc2: 'c_proj',
  norm1: 'ln_1',
  norm2: 'ln_2',
  residDropout: 'resid_dropout',
  proj: 'c_proj',
  core: { matmulKind: 'MatMul', dropout: 'attn_dropout', qkv: 'fused', fusedName: 'c_attn' },
};

export function gpt2Relevance(
  model: GPT2Model,
  fwd: ForwardResult<GPT2Record>,
  targets: readonly number[],
  rules: RuleSet,
  options: RelevanceOptions = {},
): RelevanceResult {
  const B = fwd.batch;
  const W = model.weights;
  const rec = fwd.record;
  const T = rec.embeddings.shape[0] / B;
  const ledger = new LedgerRecorder(B);
  const captured: Record<string, Tensor> = {};
  const keep = (key: string, t: Tensor) => {
    if (options.capture) captured[key] = tf.keep(t.clone());
  };

  const result = tidy(() => {
    const R0 = startRelevance(targets, model.numClasses, fwd.logits, rules, options.contrast);
    const start = startColumns(W.head, R0, [...targets, ...(options.contrast ?? [])]);
    const rFinal = rules.linear(start.head, rec.finalOut, start.R);
    ledger.record('lm_head', 'Linear', R0, [rFinal]);
    keep('lm_head(ln_f out)', rFinal);

    const transformer = ledger.open('transformer', 'GPT2Model', rFinal);
    const rLast = rules.layerNorm(rFinal, { input: rec.lastHidden, output: rec.finalOut, norm: W.finalNorm });
    ledger.record('transformer.ln_f', 'LayerNorm', rFinal, [rLast]);
    keep('ln_f(last block out, last token)', rLast);
    // The selector picked each sample's last real token: relevance goes back to that row and is 0 on
    // every other (selectorᵀ·R, a 2-D product).
    const picked = rules.pool(rec.lastHidden, rLast);
    let R = matmul(tf.transpose(rec.selector) as Tensor2D, picked);
    ledger.record('transformer.last_token', 'IndexSelect', rLast, [R]);
    keep('last_token(tokens)', R);

    const attnCam: Tensor4D[] = new Array(model.depth);
    for (let l = model.depth - 1; l >= 0; l--) {
      // This family always runs the whole pass (RelevanceOptions.stopAtLayer allows going deeper).
      const step = preLnBlockRelevance(W.layers[l]!, rec.layers[l]!, R, GPT2_BLOCK_NAMES, { batch: B, tokens: T, rules, ledger, keep, mask: rec.mask, causal: true });
      attnCam[l] = step.cam;
      R = step.R!;
    }

    let input: Tensor | null = null;
    if (options.toInput) {
      // The embedding Add, wte[ids] + wpe[positions]. Token-level relevance is the token embeddings'
      // share summed over the hidden axis; the position embeddings are constants of the input (as
      // ViT's pos_embed), so their share stays in the ledger only. With ε-rules this is
      // gradient × input at the token embeddings, what gradient-input differentiates on GPT-2.
      ledger.record('transformer.drop', 'Dropout', R, [R]);
      const [rWords, rPositions] = rules.add(rec.words, rec.positions, R, B);
      ledger.record('transformer.add', 'Add', R, [rWords, rPositions]);
      keep('embeddings.add.wte', rWords);
      keep('embeddings.add.wpe', rPositions);
      input = tf.reshape(tf.sum(rWords, 1), [B, T]);
      ledger.close(transformer, [rWords, rPositions]);
    } else {
      ledger.close(transformer, [R]);
    }
    return { attnCam, tokens: R, input };
  });
  return { ...result, fromLayer: 0, ledger: ledger.finish(), captured };
}
