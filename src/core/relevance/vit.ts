/**
 * The relevance pass through a ViT, in the order of the authors' ViT_LRP.relprop: head, CLS pooling,
 * final norm, the blocks in reverse (add2 → MLP → norm2 → clone2 → add1 → attention → norm1 →
 * clone1), and, for pixel-level LRP, the position-embedding Add and the patch embedding.
 * Which rule each layer gets comes from the rule set; this file only knows the graph.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D, type Tensor4D } from '../tf.js';
import type { RelevanceOptions, RelevanceResult } from './result.js';
import { linear, tidy } from '../ops.js';
import type { ForwardResult } from '../models/types.js';
import { unpatchify, type ViTModel, type ViTRecord } from '../models/vit.js';
import type { RuleSet } from './rulesets.js';
import { LedgerRecorder } from './ledger.js';
import { preLnBlockRelevance, type PreLnBlockNames } from './pre-ln-block.js';
import { startRelevance } from './result.js';

/** timm's names (the authors' ViT_LRP): Block, Mlp, Attention, Linear, norm1/norm2, einsum products. */
const VIT_BLOCK_NAMES: PreLnBlockNames = {
  block: 'Block',
  mlp: 'Mlp',
  attention: 'Attention',
  linear: 'Linear',
  mlpDropout: 'drop',
  fc1: 'fc1',
  fc2: 'fc2',
  norm1: 'norm1',
  norm2: 'norm2',
  residDropout: 'proj_drop',
  proj: 'proj',
  core: { matmulKind: 'einsum', dropout: 'attn_drop', qkv: 'fused' },
};

export function vitRelevance(
  model: ViTModel,
  fwd: ForwardResult<ViTRecord>,
  targets: readonly number[],
  rules: RuleSet,
  options: RelevanceOptions = {},
): RelevanceResult {
  const B = fwd.batch;
  const T = model.tokens;
  const D = model.config.dim;
  const W = model.weights;
  const rec = fwd.record;
  const ledger = new LedgerRecorder(B);
  const captured: Record<string, Tensor> = {};
  const keep = (key: string, t: Tensor) => {
    if (options.capture) captured[key] = tf.keep(t.clone());
  };

  const from = options.continueFrom;
  if (options.toInput && from && from.fromLayer === 0 && from.tokens.shape[0] === B * T) {
    // The blocks were done by an earlier pass under the same rules and targets: only the embedding
    // and the patch projection remain, and the result shares that pass's tensors.
    const input = inputRelevance(model, fwd, from.tokens, rules, ledger, keep);
    const tail = ledger.finish();
    return { attnCam: from.attnCam, fromLayer: 0, tokens: from.tokens, input, ledger: from.ledger.map((l, b) => [...l, ...tail[b]!]), captured };
  }
  // A caller that needs R^(A) only from some layer up stops there (see RelevanceOptions.stopAtLayer).
  const lowest = options.toInput ? 0 : Math.min(Math.max(options.stopAtLayer ?? 0, 0), model.depth - 1);
  const result = tidy(() => {
    const R0 = startRelevance(targets, model.numClasses, fwd.logits, rules, options.contrast);

    // Heads: one, or DeiT's two whose mean is the logit (an Add of the two halves).
    let rPooled: Tensor2D[];
    if (W.heads.length === 1) {
      rPooled = [rules.linear(W.heads[0]!, rec.pooled[0]!, R0, fwd.logits)];
      ledger.record('head', 'Linear', R0, rPooled);
    } else {
      const halves = W.heads.map((h, i) => tf.mul(linear(h, rec.pooled[i]!), 0.5) as Tensor2D);
      const [r1, r2] = rules.add(halves[0]!, halves[1]!, R0, B);
      ledger.record('head.mean', 'Add', R0, [r1, r2]);
      rPooled = [rules.linear(W.heads[0]!, rec.pooled[0]!, r1), rules.linear(W.heads[1]!, rec.pooled[1]!, r2)];
      ledger.record('head', 'Linear', r1, [rPooled[0]!]);
      ledger.record('head_dist', 'Linear', r2, [rPooled[1]!]);
    }
    keep('head(pre_head_features)', rPooled[0]!);

    // CLS pooling: relevance lands on the pooled token rows, zero elsewhere.
    const prefixRows = rPooled.map((r, i) => tf.reshape(rules.pool(rec.pooled[i]!, r), [B, 1, D]));
    const rest = tf.zeros([B, T - prefixRows.length, D]);
    let R = tf.reshape(tf.concat([...prefixRows, rest], 1), [B * T, D]) as Tensor2D;
    ledger.record('pool', 'IndexSelect', rPooled, [R]);
    keep('pool(tokens_after_final_norm)', R);
    const rNorm = rules.layerNorm(R, { input: rec.blocks[model.depth - 1]!.output, output: rec.normOut, norm: W.norm });
    ledger.record('norm', 'LayerNorm', R, [rNorm]);
    R = rNorm;
    keep('norm(output_of_last_block)', R);

    const attnCam: Tensor4D[] = new Array(model.depth);
    for (let l = model.depth - 1; l >= lowest; l--) {
      const above = R;
      // One tidy per block: only R at its input (and R^(A)) outlive it.
      const step = tidy(() => blockRelevance(l, above));
      attnCam[l] = step.cam;
      if (!step.R) return { attnCam, tokens: tf.zeros([0, D]) as Tensor2D, input: null as Tensor | null };
      R = step.R;
      if (step.R !== above) above.dispose();
    }
    const input = options.toInput ? inputRelevance(model, fwd, R, rules, ledger, keep) : null;
    return { attnCam, tokens: R, input: input as Tensor | null };
  });
  return { ...result, fromLayer: lowest, ledger: ledger.finish(), captured };

  function blockRelevance(l: number, R: Tensor2D): { R: Tensor2D | null; cam: Tensor4D } {
    return preLnBlockRelevance(W.blocks[l]!, rec.blocks[l]!, R, VIT_BLOCK_NAMES, { batch: B, tokens: T, rules, ledger, keep }, l === lowest && lowest > 0);
  }
}

/**
 * From the relevance at the first block's input to the pixels: the position-embedding Add (its share
 * dropped, and so are the prefix tokens' rows) and the patch embedding, summed over colour channels.
 */
function inputRelevance(
  model: ViTModel,
  fwd: ForwardResult<ViTRecord>,
  R: Tensor2D,
  rules: RuleSet,
  ledger: LedgerRecorder,
  keep: (key: string, t: Tensor) => void,
): Tensor3D {
  return tidy(() => {
    const B = fwd.batch;
    const T = model.tokens;
    const D = model.config.dim;
    const rec = fwd.record;
    const [rTok, rPos] = rules.add(rec.tokenEmbeds, rec.posEmbeds, R, B);
    ledger.record('add', 'Add', R, [rTok, rPos]);
    keep('embedding.add.tokens', rTok);
    keep('embedding.add.pos_embed', rPos);
    const P = model.prefixTokens;
    const rPatches = tf.reshape(tf.slice(tf.reshape(rTok, [B, T, D]), [0, P, 0], [B, T - P, D]), [B * (T - P), D]) as Tensor2D;
    const pe = ledger.open('patch_embed', 'PatchEmbed', rPatches);
    const rIn = rules.patchEmbed(model.weights.patchEmbed, rec.patches, rPatches, B);
    ledger.record('patch_embed.proj', 'Conv2d', rPatches, [rIn]);
    ledger.close(pe, [rIn]);
    const perChannel = unpatchify(rIn, B, model.config.channels, model.grid, model.config.patchSize);
    keep('patch_embed(pixels,per_channel)', perChannel);
    return tf.sum(perChannel, 1) as Tensor3D;
  });
}
