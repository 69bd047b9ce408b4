/**
 * The relevance pass through a BERT-style classifier, in the order and with the module names of
 * the authors' BertForSequenceClassification.relprop: classifier, pooler (activation, dense, CLS
 * pooling), then each layer in reverse — BertOutput (LayerNorm, Add [dense branch, residual], dense),
 * BertIntermediate (GELU, dense), the layer's Clone, BertAttention (BertSelfOutput, then
 * BertSelfAttention with its mask Add and q/k/v Linears, then the attention Clone). It stops at the
 * encoder input (after the embedding LayerNorm), as theirs does.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { linear, tidy } from '../ops.js';
import type { ForwardResult } from '../models/types.js';
import type { BertModel, BertRecord } from '../models/bert.js';
import type { RuleSet } from './rulesets.js';
import type { RelevanceOptions, RelevanceResult } from './result.js';
import { LedgerRecorder } from './ledger.js';
import { attentionCoreRelevance } from './attention.js';
import { startRelevance } from './result.js';

export function bertRelevance(
  model: BertModel,
  fwd: ForwardResult<BertRecord>,
  targets: readonly number[],
  rules: RuleSet,
  options: RelevanceOptions = {},
): RelevanceResult {
  const B = fwd.batch;
  const D = model.config.dim;
  const W = model.weights;
  const rec = fwd.record;
  const T = rec.embeddings.shape[0] / B;
  const ledger = new LedgerRecorder(B);
  const captured: Record<string, Tensor> = {};
  const keep = (key: string, t: Tensor) => {
    if (options.capture) captured[key] = tf.keep(t.clone());
  };

  /**
   * Past the authors' stopping point: the embedding LayerNorm (its rule from the rule set), then one
   * value per token, summed over the hidden axis.
   */
  const inputRelevance = (R: Tensor2D): Tensor =>
    tidy(() => {
      const rEmb = rules.layerNorm(R, { input: rec.embeddingSum, output: rec.embeddings, norm: W.embeddingNorm });
      ledger.record('bert.embeddings.LayerNorm', 'LayerNorm', R, [rEmb]);
      return tf.reshape(tf.sum(rEmb, 1), [B, T]);
    });
  const from = options.continueFrom;
  if (options.toInput && from && from.fromLayer === 0 && from.tokens.shape[0] === B * T) {
    // The layers were done by an earlier pass under the same rules and targets (see RelevanceOptions).
    const input = inputRelevance(from.tokens);
    const tail = ledger.finish();
    return { attnCam: from.attnCam, fromLayer: 0, tokens: from.tokens, input, ledger: from.ledger.map((l, b) => [...l, ...tail[b]!]), captured };
  }
  // A caller that needs R^(A) only from some layer up stops there (see RelevanceOptions.stopAtLayer).
  const lowest = options.toInput ? 0 : Math.min(Math.max(options.stopAtLayer ?? 0, 0), model.depth - 1);
  const result = tidy(() => {
    const R0 = startRelevance(targets, model.numClasses, fwd.logits, rules, options.contrast);
    let rPooled = rules.linear(W.classifier, rec.pooled, R0, fwd.logits);
    ledger.record('classifier', 'Linear', R0, [rPooled]);
    ledger.record('dropout', 'Dropout', rPooled, [rPooled]);
    keep('classifier(pooled)', rPooled);

    const bert = ledger.open('bert', 'BertModel', rPooled);
    const pooler = ledger.open('bert.pooler', 'BertPooler', rPooled);
    const activation = model.config.poolerActivation;
    // The dense layer's output z, recomputed as the forward computed it, only for a rule that reads it.
    const poolerRecord = { get input() { return linear(W.pooler, rec.poolInput); }, output: rec.pooled, activation };
    const rDenseOut = rules.poolerActivation(rPooled, poolerRecord);
    // The gradient rule on ReLU is the identity rule, and conserves as it does.
    const poolerDrift = !rules.poolerActivationConserves && activation !== 'relu';
    ledger.record('bert.pooler.activation', activation === 'tanh' ? 'Tanh' : 'ReLU', rPooled, [rDenseOut], { expectedDrift: poolerDrift });
    rPooled = rules.linear(W.pooler, rec.poolInput, rDenseOut);
    ledger.record('bert.pooler.dense', 'Linear', rDenseOut, [rPooled]);
    // The pooler reads the first token: relevance lands on its row, zero elsewhere.
    const first = tf.reshape(rules.pool(rec.poolInput, rPooled), [B, 1, D]);
    let R = tf.reshape(tf.concat([first, tf.zeros([B, T - 1, D])], 1), [B * T, D]) as Tensor2D;
    ledger.record('bert.pooler.pool', 'IndexSelect', rPooled, [R]);
    ledger.close(pooler, [R]);
    keep('pooler(tokens)', R);

    const encoder = ledger.open('bert.encoder', 'BertEncoder', R);
    const attnCam: Tensor4D[] = new Array(model.depth);
    for (let l = model.depth - 1; l >= lowest; l--) {
      const above = R;
      // One tidy per layer: only R at its input (and R^(A)) outlive it.
      const step = tidy((): { R: Tensor2D | null; cam: Tensor4D } => {
        const R = above;
        const layer = W.layers[l]!;
        const r = rec.layers[l]!;
        const n = layer.name;
        const key = (k: string) => `layers.${l}.${k}`;
        const top = ledger.open(n, 'BertLayer', R);

        // BertOutput: LN(dense(FFN) + residual).
        const out = ledger.open(`${n}.output`, 'BertOutput', R);
        const rOutNorm = rules.layerNorm(R, { input: r.norm2In, output: r.output, norm: layer.norm2 });
        ledger.record(`${n}.output.LayerNorm`, 'LayerNorm', R, [rOutNorm]);
        const [rDense, rRes] = rules.add(r.mlp.output, r.norm1Out, rOutNorm, B);
        ledger.record(`${n}.output.add`, 'Add', rOutNorm, [rDense, rRes]);
        ledger.record(`${n}.output.dropout`, 'Dropout', rDense, [rDense]);
        const rAct = rules.linear(layer.mlp.fc2, r.mlp.activated, rDense, r.mlp.output);
        ledger.record(`${n}.output.dense`, 'Linear', rDense, [rAct]);
        ledger.close(out, [rAct, rRes]);
        keep(key('output.dense_branch(intermediate_act_out)'), rAct);
        keep(key('output.residual'), rRes);

        const inter = ledger.open(`${n}.intermediate`, 'BertIntermediate', rAct);
        const rHidden = rules.gelu(rAct, { input: r.mlp.hidden, output: r.mlp.activated });
        ledger.record(`${n}.intermediate.intermediate_act_fn`, 'GELU', rAct, [rHidden]);
        const rFfnIn = rules.linear(layer.mlp.fc1, r.mlp.input, rHidden, r.mlp.hidden);
        ledger.record(`${n}.intermediate.dense`, 'Linear', rHidden, [rFfnIn]);
        ledger.close(inter, [rFfnIn]);
        keep(key('intermediate(=attention_output, ffn branch)'), rFfnIn);

        const rAttnOut = rules.clone(r.norm1Out, [rFfnIn, rRes]);
        ledger.record(`${n}.clone`, 'Clone', [rFfnIn, rRes], [rAttnOut]);
        keep(key('clone(attention_output)'), rAttnOut);

        // BertAttention: BertSelfOutput (LN(dense(context) + residual)), then self-attention.
        const attn = ledger.open(`${n}.attention`, 'BertAttention', rAttnOut);
        const selfOut = ledger.open(`${n}.attention.output`, 'BertSelfOutput', rAttnOut);
        const rSelfNorm = rules.layerNorm(rAttnOut, { input: r.norm1In, output: r.norm1Out, norm: layer.norm1 });
        ledger.record(`${n}.attention.output.LayerNorm`, 'LayerNorm', rAttnOut, [rSelfNorm]);
        const [rProj, rRes1] = rules.add(r.attn.output, r.input, rSelfNorm, B);
        ledger.record(`${n}.attention.output.add`, 'Add', rSelfNorm, [rProj, rRes1]);
        ledger.record(`${n}.attention.output.dropout`, 'Dropout', rProj, [rProj]);
        const rContext = rules.linear(layer.attn.proj, r.attn.context, rProj, r.attn.output);
        ledger.record(`${n}.attention.output.dense`, 'Linear', rProj, [rContext]);
        ledger.close(selfOut, [rContext, rRes1]);
        keep(key('attention.output.dense_branch(context)'), rContext);
        keep(key('attention.output.residual'), rRes1);

        const selfAttn = ledger.open(`${n}.attention.self`, 'BertSelfAttention', rContext);
        const core = attentionCoreRelevance(
          layer.attn,
          r.attn,
          rContext,
          B,
          T,
          rules,
          ledger,
          { scope: `${n}.attention.self`, matmulKind: 'MatMul', dropout: 'dropout', qkv: 'separate' },
          rec.mask,
          false,
          l === lowest && lowest > 0,
        );
        if (!core.input) {
          // Stopped at this layer's R^(A): the composites around it were not crossed.
          for (const open of [selfAttn, attn, top, encoder, bert]) ledger.abandon(open);
          return { R: null, cam: core.attnCam };
        }
        ledger.close(selfAttn, [core.input]);
        keep(key('attention.self(input, via q/k/v)'), core.input);

        const rIn = rules.clone(r.input, [core.input, rRes1]);
        ledger.record(`${n}.attention.clone`, 'Clone', [core.input, rRes1], [rIn]);
        ledger.close(attn, [rIn]);
        ledger.close(top, [rIn]);
        keep(key('layer_input(attention.clone)'), rIn);
        return { R: rIn, cam: core.attnCam };
          });
      attnCam[l] = step.cam;
      if (!step.R) return { attnCam, tokens: tf.zeros([0, D]) as Tensor2D, input: null };
      R = step.R;
      if (step.R !== above) above.dispose();
    }
    ledger.close(encoder, [R]);
    ledger.close(bert, [R]);
    const input = options.toInput ? inputRelevance(R) : null;
    return { attnCam, tokens: R, input };
  });
  return { ...result, fromLayer: lowest, ledger: ledger.finish(), captured };
}
