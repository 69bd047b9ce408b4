/**
 * Relevance through the core of multi-head self-attention, shared by every family: from R at the
 * context (A·V with heads concatenated) back through A·V, the normaliser (softmax), the mask Add
 * where there is a mask, Q·Kᵀ, and the q/k/v projections — the order of the authors'
 * Attention.relprop (ViT) and BertSelfAttention.relprop (BERT). Returns R at the layer's input and R
 * at the attention probabilities (the paper's R^(A), "attn_cam"), which attention-based methods read.
 * A rule set that holds the attention weights constant (CP-LRP's AH rule) stops at A·V: all of R goes
 * to V, and R^(A) is 0.
 */
import { tf, type Tensor2D, type Tensor4D } from '../tf.js';
import { tidy, type Linear } from '../ops.js';
import { causalMask, type Attention, type AttentionRecord } from '../models/layers.js';
import type { RuleSet } from './rulesets.js';
import type { LedgerRecorder } from './ledger.js';
import { UsageError } from '../errors.js';

/** How the family's module tree names the pieces, so the ledger lines up with the authors' trace. */
export interface AttentionNames {
  /** e.g. 'blocks.0.attn' (ViT) or 'bert.encoder.layer.0.attention.self' (BERT). */
  readonly scope: string;
  /** The authors' class for the two products: 'einsum' (ViT) or 'MatMul' (BERT). */
  readonly matmulKind: string;
  /** The dropout on A: 'attn_drop' (ViT) or 'dropout' (BERT). */
  readonly dropout: string;
  /** One fused qkv Linear (ViT, GPT-2), or query/key/value Linears joined by a 3-way Clone (BERT). */
  readonly qkv: 'fused' | 'separate';
  /** The fused Linear's name under the scope: 'qkv' (timm, the default) or 'c_attn' (GPT-2). */
  readonly fusedName?: string;
}

export interface AttentionRelevance {
  /** Relevance at the attention input (the q/k/v projections' input), [B·T, D]. */
  readonly input: Tensor2D;
  /** Relevance at A after the operand share, [B, H, T, T]. */
  readonly attnCam: Tensor4D;
}

/** A view of some output columns of a fused Linear (q, k or v of qkv). */
function columns(layer: Linear, name: string, from: number, width: number): Linear {
  return {
    name,
    wT: tf.slice(layer.wT, [0, from], [layer.wT.shape[0], width]) as Tensor2D,
    b: layer.b ? tf.slice(layer.b, [from], [width]) : null,
  };
}

export function attentionCoreRelevance(
  layer: Attention,
  rec: AttentionRecord,
  rContext: Tensor2D,
  batch: number,
  tokens: number,
  rules: RuleSet,
  ledger: LedgerRecorder,
  names: AttentionNames,
  /** The additive key (padding) mask on the scaled scores, [B, T], when the family has one. */
  mask?: Tensor2D,
  /** Decoder attention: the forward also added the causal [T, T] mask (models/layers.ts). */
  causal = false,
): AttentionRelevance {
  return tidy(() => {
    const { heads, headDim: d } = layer;
    const { scope } = names;
    const width = heads * d;
    const share = rules.matmulShare;
    // With A held constant, A·V is linear in V alone: V keeps all of R, nothing reaches A.
    const constantA = rules.attentionWeights === 'constant';
    const vShare = constantA ? 1 : share;
    const normaliser = layer.normaliser ?? 'softmax';
    const scoresOf = (b: number, h: number): Tensor2D => {
      const s = rec.scores?.[b * heads + h];
      if (!s) throw new UsageError(`the relevance pass needs the attention scores, which this forward pass did not record (the batched training path)`);
      return s;
    };
    const sums = { a: [] as Tensor2D[], v: [] as Tensor2D[], s: [] as Tensor2D[], scores: [] as Tensor2D[], mask: [] as Tensor2D[], q: [] as Tensor2D[], k: [] as Tensor2D[] };
    const rA: Tensor2D[] = [];
    const rQ: Tensor2D[] = [];
    const rK: Tensor2D[] = [];
    const rV: Tensor2D[] = [];
    const causalScores = causal && !constantA ? causalMask(tokens) : null;
    for (let b = 0; b < batch; b++) {
      const pieces = tf.split(tf.slice(rec.qkv, [b * tokens, 0], [tokens, 3 * width]), 3 * heads, 1) as Tensor2D[];
      const rCtx = tf.split(tf.slice(rContext, [b * tokens, 0], [tokens, width]), heads, 1) as Tensor2D[];
      const rS: Tensor2D[] = [];
      const rv: Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        const a = tf.reshape(tf.slice(rec.probs, [b, h, 0, 0], [1, 1, tokens, tokens]), [tokens, tokens]) as Tensor2D;
        // A·V: relevance of the attention probabilities and of the values.
        const [ra, rvh] = rules.matmul(a, pieces[2 * heads + h]!, rCtx[h]!);
        sums.v.push(rvh);
        rv.push(vShare === 1 ? rvh : (tf.mul(rvh, vShare) as Tensor2D));
        if (constantA) {
          rA.push(tf.zerosLike(a) as Tensor2D);
          continue;
        }
        sums.a.push(ra);
        const shared = tf.mul(ra, share) as Tensor2D;
        rA.push(shared);
        // The scores are read only by rules that need them (a getter), so the paper's identity rule
        // still runs on a forward pass that did not record them.
        rS.push(rules.softmax(shared, { get scores() { return scoresOf(b, h); }, probs: a, normaliser }));
      }
      if (constantA) {
        rV.push(tf.concat(rv, 1) as Tensor2D);
        continue;
      }
      let rScores = rS;
      if (mask || causalScores) {
        // The mask Add, over all heads of the sample at once: the authors' Add renormalises over the
        // whole [H, T, T] tensor, not per head. The mask's share is dropped. A decoder's mask is the
        // causal one plus the sample's key mask, as the forward added it.
        const qk = Array.from({ length: heads }, (_, h) =>
          tf.mul(tf.matMul(pieces[h]!, tf.transpose(pieces[heads + h]!)), layer.scale),
        );
        const scores = tf.reshape(tf.stack(qk), [heads * tokens, tokens]) as Tensor2D;
        const keyRow = mask ? (tf.slice(mask, [b, 0], [1, tokens]) as Tensor2D) : null;
        const maskRows = (
          causalScores
            ? tf.tile(keyRow ? tf.add(causalScores, keyRow) : causalScores, [heads, 1])
            : tf.broadcastTo(keyRow!, [heads * tokens, tokens])
        ) as Tensor2D;
        const rIn = tf.reshape(tf.stack(rS), [heads * tokens, tokens]) as Tensor2D;
        const [rs, rm] = rules.add(scores, maskRows, rIn, 1);
        sums.scores.push(rs);
        sums.mask.push(rm);
        rScores = tf.split(rs, heads, 0) as Tensor2D[];
      }
      const rq: Tensor2D[] = [];
      const rk: Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        // Q·Kᵀ, unscaled: 1/√d is not a layer, relevance passes through it.
        const [rqh, rkT] = rules.matmul(pieces[h]!, tf.transpose(pieces[heads + h]!) as Tensor2D, rScores[h]!);
        const rkh = tf.transpose(rkT) as Tensor2D;
        sums.s.push(rS[h]!);
        sums.q.push(rqh);
        sums.k.push(rkh);
        rq.push(tf.mul(rqh, share) as Tensor2D);
        rk.push(tf.mul(rkh, share) as Tensor2D);
      }
      rQ.push(tf.concat(rq, 1) as Tensor2D);
      rK.push(tf.concat(rk, 1) as Tensor2D);
      rV.push(tf.concat(rv, 1) as Tensor2D);
    }
    // Per-sample stacks, so the ledger's per-sample sums see each sample's pieces together.
    const perSample = (xs: Tensor2D[]) => tf.reshape(tf.stack(xs.map((x) => tf.reshape(x, [-1]))), [batch, -1]);
    const attnCam = tf.reshape(tf.stack(rA), [batch, heads, tokens, tokens]) as Tensor4D;
    let q: Tensor2D;
    let k: Tensor2D;
    const v = tf.concat(rV, 0) as Tensor2D;
    if (constantA) {
      // A is a constant of the product, not an operand: V is its only input, and the pass stops here.
      ledger.record(`${scope}.matmul2`, names.matmulKind, rContext, [perSample(sums.v)]);
      q = tf.zerosLike(v) as Tensor2D;
      k = q;
    } else {
      const rSoftmaxIn = perSample(sums.s);
      ledger.record(`${scope}.matmul2`, names.matmulKind, rContext, [perSample(sums.a), perSample(sums.v)]);
      ledger.record(`${scope}.${names.dropout}`, 'Dropout', attnCam, [attnCam]);
      ledger.record(`${scope}.softmax`, 'Softmax', attnCam, [rSoftmaxIn], { expectedDrift: !rules.softmaxConserves });
      const masked = mask !== undefined || causalScores !== null;
      const rMatmul1 = masked ? perSample(sums.scores) : rSoftmaxIn;
      if (masked) ledger.record(`${scope}.add`, 'Add', rSoftmaxIn, [rMatmul1, perSample(sums.mask)]);
      ledger.record(`${scope}.matmul1`, names.matmulKind, rMatmul1, [perSample(sums.q), perSample(sums.k)]);
      q = tf.concat(rQ, 0) as Tensor2D;
      k = tf.concat(rK, 0) as Tensor2D;
    }

    let input: Tensor2D;
    if (names.qkv === 'fused') {
      const rQkv = tf.concat([q, k, v], 1) as Tensor2D;
      input = rules.linear(layer.qkv, rec.input, rQkv);
      ledger.record(`${scope}.${names.fusedName ?? 'qkv'}`, 'Linear', rQkv, [input]);
    } else {
      const parts = (['query', 'key', 'value'] as const).map((part, i) => {
        const view = columns(layer.qkv, `${scope}.${part}`, i * width, width);
        const rOut = [q, k, v][i]!;
        const r = rules.linear(view, rec.input, rOut);
        ledger.record(view.name, 'Linear', rOut, [r]);
        return r;
      });
      input = rules.clone(rec.input, parts);
      ledger.record(`${scope}.clone`, 'Clone', parts, [input]);
    }
    return { input, attnCam };
  });
}
