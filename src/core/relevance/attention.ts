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
  /** Relevance at the attention input (the q/k/v projections' input), [B·T, D]; null when the pass stopped at R^(A). */
  readonly input: Tensor2D | null;
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
  /**
   * Stop once R^(A) is known (after A·V and the dropout on A): for a caller that needs this layer's
   * attention relevance and nothing below it. `input` is then null.
   */
  stopAtAttention = false,
): AttentionRelevance {
  return tidy(() => {
    const { heads: H } = layer;
    const T = tokens;
    const { scope } = names;
    const share = rules.matmulShare;
    // With A held constant, A·V is linear in V alone: V keeps all of R, nothing reaches A.
    const constantA = rules.attentionWeights === 'constant';
    const vShare = constantA ? 1 : share;
    const normaliser = layer.normaliser ?? 'softmax';
    const causalScores = causal && !constantA && !stopAtAttention ? causalMask(T) : null;
    const masked = !constantA && (mask !== undefined || causal);
    const rowsOf = (t: Tensor2D, b: number): Tensor2D => (batch === 1 ? t : (tf.slice(t, [b * T, 0], [T, t.shape[1]]) as Tensor2D));
    // Per sample, each operand's relevance before its share: [T, H·d] for q, k, v (heads side by
    // side, as in qkv), [H·T, T] for A and the scores (heads stacked). Rules are elementwise or
    // row-wise, so they apply to all heads at once; only the products are taken head by head.
    const out = { a: [] as Tensor2D[], rA: [] as Tensor2D[], v: [] as Tensor2D[], s: [] as Tensor2D[], scores: [] as Tensor2D[], mask: [] as Tensor2D[], q: [] as Tensor2D[], k: [] as Tensor2D[] };
    for (let b = 0; b < batch; b++) {
      const qkv = rowsOf(rec.qkv, b);
      const width = qkv.shape[1] / 3;
      const pieces = tf.split(qkv, 3 * H, 1) as Tensor2D[];
      const probs = tf.reshape(batch === 1 ? rec.probs : tf.slice(rec.probs, [b, 0, 0, 0], [1, H, T, T]), [H * T, T]) as Tensor2D;
      const a = tf.split(probs, H, 0) as Tensor2D[];
      // A·V, whose output Z is the recorded context: S = R ⊘ Z, R_V = V ⊙ (Aᵀ·S), R_A = A ⊙ (S·Vᵀ).
      const S = tf.split(rules.matmulRatio(rowsOf(rContext, b), rowsOf(rec.context, b)), H, 1) as Tensor2D[];
      const v = tf.slice(qkv, [0, 2 * width], [T, width]) as Tensor2D;
      out.v.push(tf.mul(v, tf.concat(a.map((ah, h) => tf.matMul(tf.transpose(ah), S[h]!)), 1)) as Tensor2D);
      if (constantA) continue;
      const ra = tf.mul(probs, tf.concat(S.map((sh, h) => tf.matMul(sh, tf.transpose(pieces[2 * H + h]!))), 0)) as Tensor2D;
      out.a.push(ra);
      const rA = tf.mul(ra, share) as Tensor2D;
      out.rA.push(rA);
      if (stopAtAttention) continue;
      // The normaliser, all heads at once (its rules are row-wise). The scores are read only by rules
      // that need them (a getter), so the paper's identity rule still runs on a forward pass that did
      // not record them.
      const scoresOf = () => {
        const list = rec.scores?.slice(b * H, (b + 1) * H);
        if (!list || list.length < H) throw new UsageError(`the relevance pass needs the attention scores, which this forward pass did not record (the batched training path)`);
        return tf.concat(list, 0) as Tensor2D;
      };
      const rS = rules.softmax(rA, { get scores() { return scoresOf(); }, probs, normaliser });
      out.s.push(rS);
      // Q·Kᵀ, unscaled: 1/√d is not a layer, relevance passes through it.
      const qk = tf.concat(Array.from({ length: H }, (_, h) => tf.matMul(pieces[h]!, tf.transpose(pieces[H + h]!))), 0) as Tensor2D;
      let rScores = rS;
      if (masked) {
        // The mask Add, over all heads of the sample at once: the authors' Add renormalises over the
        // whole [H, T, T] tensor, not per head. The mask's share is dropped. A decoder's mask is the
        // causal one plus the sample's key mask, as the forward added it.
        const scores = tf.mul(qk, layer.scale) as Tensor2D;
        const keyRow = mask ? (tf.slice(mask, [b, 0], [1, T]) as Tensor2D) : null;
        const maskRows = (
          causalScores ? tf.tile(keyRow ? tf.add(causalScores, keyRow) : causalScores, [H, 1]) : tf.broadcastTo(keyRow!, [H * T, T])
        ) as Tensor2D;
        const [rs, rm] = rules.add(scores, maskRows, rS, 1);
        out.scores.push(rs);
        out.mask.push(rm);
        rScores = rs;
      }
      // R_Q = Q ⊙ (S·K), R_K = K ⊙ (Sᵀ·Q), with S = R ⊘ (Q·Kᵀ) per head.
      const S2 = tf.split(rules.matmulRatio(rScores, qk), H, 0) as Tensor2D[];
      const q = tf.slice(qkv, [0, 0], [T, width]) as Tensor2D;
      const k = tf.slice(qkv, [0, width], [T, width]) as Tensor2D;
      out.q.push(tf.mul(q, tf.concat(S2.map((sh, h) => tf.matMul(sh, pieces[H + h]!)), 1)) as Tensor2D);
      out.k.push(tf.mul(k, tf.concat(S2.map((sh, h) => tf.matMul(tf.transpose(sh), pieces[h]!)), 1)) as Tensor2D);
    }
    const cat = (xs: Tensor2D[]) => (xs.length === 1 ? xs[0]! : (tf.concat(xs, 0) as Tensor2D));
    // Per-sample rows, so the ledger's per-sample sums see each sample's pieces together.
    const perSample = (xs: Tensor2D[]) => tf.reshape(cat(xs), [batch, -1]);
    const vAll = cat(out.v);
    const v = vShare === 1 ? vAll : (tf.mul(vAll, vShare) as Tensor2D);
    if (constantA) {
      // A is a constant of the product, not an operand: V is its only input, and the pass stops here.
      ledger.record(`${scope}.matmul2`, names.matmulKind, rContext, [perSample(out.v)]);
      const attnCam = tf.zeros([batch, H, T, T]) as Tensor4D;
      if (stopAtAttention) return { input: null, attnCam };
      const zero = tf.zerosLike(v) as Tensor2D;
      return { input: qkvInput(layer, rec, zero, zero, v, rules, ledger, names), attnCam };
    }
    const attnCam = tf.reshape(cat(out.rA), [batch, H, T, T]) as Tensor4D;
    ledger.record(`${scope}.matmul2`, names.matmulKind, rContext, [perSample(out.a), perSample(out.v)]);
    ledger.record(`${scope}.${names.dropout}`, 'Dropout', attnCam, [attnCam]);
    if (stopAtAttention) return { input: null, attnCam };
    const rSoftmaxIn = perSample(out.s);
    ledger.record(`${scope}.softmax`, 'Softmax', attnCam, [rSoftmaxIn], { expectedDrift: !rules.softmaxConserves });
    const rMatmul1 = masked ? perSample(out.scores) : rSoftmaxIn;
    if (masked) ledger.record(`${scope}.add`, 'Add', rSoftmaxIn, [rMatmul1, perSample(out.mask)]);
    ledger.record(`${scope}.matmul1`, names.matmulKind, rMatmul1, [perSample(out.q), perSample(out.k)]);
    const q = tf.mul(cat(out.q), share) as Tensor2D;
    const k = tf.mul(cat(out.k), share) as Tensor2D;
    return { input: qkvInput(layer, rec, q, k, v, rules, ledger, names), attnCam };
  });
}

/** The q/k/v projections: one fused Linear, or three joined by a Clone. */
function qkvInput(layer: Attention, rec: AttentionRecord, q: Tensor2D, k: Tensor2D, v: Tensor2D, rules: RuleSet, ledger: LedgerRecorder, names: AttentionNames): Tensor2D {
  const { scope } = names;
  const width = q.shape[1];
  if (names.qkv === 'fused') {
    const rQkv = tf.concat([q, k, v], 1) as Tensor2D;
    const input = rules.linear(layer.qkv, rec.input, rQkv, rec.qkv);
    ledger.record(`${scope}.${names.fusedName ?? 'qkv'}`, 'Linear', rQkv, [input]);
    return input;
  }
  const parts = (['query', 'key', 'value'] as const).map((part, i) => {
    const view = columns(layer.qkv, `${scope}.${part}`, i * width, width);
    const rOut = [q, k, v][i]!;
    const r = rules.linear(view, rec.input, rOut, tf.slice(rec.qkv, [0, i * width], [rec.qkv.shape[0], width]) as Tensor2D);
    ledger.record(view.name, 'Linear', rOut, [r]);
    return r;
  });
  const input = rules.clone(rec.input, parts);
  ledger.record(`${scope}.clone`, 'Clone', parts, [input]);
  return input;
}
