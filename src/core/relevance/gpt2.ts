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
import { attentionCoreRelevance } from './attention.js';
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
      const layer = W.layers[l]!;
      const r = rec.layers[l]!;
      const n = layer.name;
      const block = ledger.open(n, 'GPT2Block', R);

      // output = mid + MLP(ln_2(mid)).
      const [rRes2, rMlpOut] = rules.add(r.mid, r.mlp.output, R, B);
      ledger.record(`${n}.add2`, 'Add', R, [rRes2, rMlpOut]);
      keep(`${n}.add2.residual`, rRes2);
      keep(`${n}.add2.mlp_branch`, rMlpOut);
      const mlp = ledger.open(`${n}.mlp`, 'GPT2MLP', rMlpOut);
      ledger.record(`${n}.mlp.dropout`, 'Dropout', rMlpOut, [rMlpOut]);
      const rAct = rules.linear(layer.mlp.fc2, r.mlp.activated, rMlpOut, r.mlp.output);
      ledger.record(`${n}.mlp.c_proj`, 'Conv1D', rMlpOut, [rAct]);
      const rHidden = rules.gelu(rAct, { input: r.mlp.hidden, output: r.mlp.activated });
      ledger.record(`${n}.mlp.act`, 'GELU', rAct, [rHidden]);
      const rMlpIn = rules.linear(layer.mlp.fc1, r.mlp.input, rHidden, r.mlp.hidden);
      ledger.record(`${n}.mlp.c_fc`, 'Conv1D', rHidden, [rMlpIn]);
      ledger.close(mlp, [rMlpIn]);
      keep(`${n}.mlp(=ln_2 out)`, rMlpIn);
      const rNorm2 = rules.layerNorm(rMlpIn, { input: r.mid, output: r.norm2Out, norm: layer.norm2 });
      ledger.record(`${n}.ln_2`, 'LayerNorm', rMlpIn, [rNorm2]);
      const rMid = rules.clone(r.mid, [rRes2, rNorm2]);
      ledger.record(`${n}.clone2`, 'Clone', [rRes2, rNorm2], [rMid]);
      keep(`${n}.clone2(mid)`, rMid);

      // mid = input + Attn(ln_1(input)), causal.
      const [rRes1, rAttnOut] = rules.add(r.input, r.attn.output, rMid, B);
      ledger.record(`${n}.add1`, 'Add', rMid, [rRes1, rAttnOut]);
      keep(`${n}.add1.residual`, rRes1);
      keep(`${n}.add1.attn_branch`, rAttnOut);
      const scope = layer.attn.name;
      const attn = ledger.open(scope, 'GPT2Attention', rAttnOut);
      ledger.record(`${scope}.resid_dropout`, 'Dropout', rAttnOut, [rAttnOut]);
      const rContext = rules.linear(layer.attn.proj, r.attn.context, rAttnOut, r.attn.output);
      ledger.record(`${scope}.c_proj`, 'Conv1D', rAttnOut, [rContext]);
      const core = attentionCoreRelevance(
        layer.attn,
        r.attn,
        rContext,
        B,
        T,
        rules,
        ledger,
        { scope, matmulKind: 'MatMul', dropout: 'attn_dropout', qkv: 'fused', fusedName: 'c_attn' },
        rec.mask,
        true,
      );
      // This family always runs the whole pass (RelevanceOptions.stopAtLayer allows going deeper).
      const rAttnIn = core.input!;
      ledger.close(attn, [rAttnIn]);
      attnCam[l] = core.attnCam;
      keep(`${n}.attn(=ln_1 out)`, rAttnIn);
      const rNorm1 = rules.layerNorm(rAttnIn, { input: r.input, output: r.norm1Out, norm: layer.norm1 });
      ledger.record(`${n}.ln_1`, 'LayerNorm', rAttnIn, [rNorm1]);
      R = rules.clone(r.input, [rRes1, rNorm1]);
      ledger.record(`${n}.clone1`, 'Clone', [rRes1, rNorm1], [R]);
      ledger.close(block, [R]);
      keep(`${n}.block_input`, R);
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
