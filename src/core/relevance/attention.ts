/**
 * Relevance through one multi-head self-attention layer (shared by every family): proj, then A·V,
 * the normaliser (softmax), then Q·Kᵀ, then the fused qkv projection — the order of the authors'
 * Attention.relprop. Returns R at the layer's input and R at the attention probabilities
 * (the paper's R^(A), "attn_cam"), which the attention-based methods read.
 */
import { tf, type Tensor2D, type Tensor4D } from '../tf.js';
import { tidy } from '../ops.js';
import type { Attention, AttentionRecord } from '../models/layers.js';
import type { RuleSet } from './rulesets.js';
import type { LedgerRecorder } from './ledger.js';

export interface AttentionRelevance {
  /** Relevance at the attention input (the qkv Linear's input), [B·T, D]. */
  readonly input: Tensor2D;
  /** Relevance at A after the operand share, [B, H, T, T]. */
  readonly attnCam: Tensor4D;
}

export function attentionRelevance(
  layer: Attention,
  rec: AttentionRecord,
  R: Tensor2D,
  batch: number,
  tokens: number,
  rules: RuleSet,
  ledger: LedgerRecorder,
): AttentionRelevance {
  return tidy(() => {
    const { heads, headDim: d, name } = layer;
    const width = heads * d;
    const top = ledger.open(name, 'Attention', R);
    ledger.record(`${name}.proj_drop`, 'Dropout', R, [R]);
    const rContext = rules.linear(layer.proj, rec.context, R);
    ledger.record(`${name}.proj`, 'Linear', R, [rContext]);

    const rA: Tensor2D[] = [];
    const rScores: Tensor2D[] = [];
    const rVRows: Tensor2D[] = [];
    const rQRows: Tensor2D[] = [];
    const rKRows: Tensor2D[] = [];
    const rawSums = { a: [] as Tensor2D[], v: [] as Tensor2D[], q: [] as Tensor2D[], k: [] as Tensor2D[] };
    const share = rules.matmulShare;
    for (let b = 0; b < batch; b++) {
      const rows = tf.slice(rec.qkv, [b * tokens, 0], [tokens, 3 * width]) as Tensor2D;
      const rCtx = tf.slice(rContext, [b * tokens, 0], [tokens, width]) as Tensor2D;
      const rv: Tensor2D[] = [];
      const rq: Tensor2D[] = [];
      const rk: Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        const q = tf.slice(rows, [0, h * d], [tokens, d]) as Tensor2D;
        const k = tf.slice(rows, [0, width + h * d], [tokens, d]) as Tensor2D;
        const v = tf.slice(rows, [0, 2 * width + h * d], [tokens, d]) as Tensor2D;
        const a = tf.reshape(tf.slice(rec.probs, [b, h, 0, 0], [1, 1, tokens, tokens]), [tokens, tokens]) as Tensor2D;
        // A·V: relevance of the attention probabilities and of the values.
        const [ra, rvh] = rules.matmul(a, v, tf.slice(rCtx, [0, h * d], [tokens, d]) as Tensor2D);
        rawSums.a.push(ra);
        rawSums.v.push(rvh);
        const raShared = tf.mul(ra, share) as Tensor2D;
        rA.push(raShared);
        // The normaliser, then Q·Kᵀ (unscaled: 1/√d is not a layer, relevance passes through it).
        const rs = rules.softmax(raShared);
        rScores.push(rs);
        const [rqh, rkT] = rules.matmul(q, tf.transpose(k) as Tensor2D, rs);
        const rkh = tf.transpose(rkT) as Tensor2D;
        rawSums.q.push(rqh);
        rawSums.k.push(rkh);
        rv.push(tf.mul(rvh, share) as Tensor2D);
        rq.push(tf.mul(rqh, share) as Tensor2D);
        rk.push(tf.mul(rkh, share) as Tensor2D);
      }
      rVRows.push(tf.concat(rv, 1) as Tensor2D);
      rQRows.push(tf.concat(rq, 1) as Tensor2D);
      rKRows.push(tf.concat(rk, 1) as Tensor2D);
    }
    const perSample = (xs: Tensor2D[]) => tf.reshape(tf.stack(xs), [batch, -1]);
    const attnCam = tf.reshape(tf.stack(rA), [batch, heads, tokens, tokens]) as Tensor4D;
    ledger.record(`${name}.matmul2`, 'einsum', rContext, [perSample(rawSums.a), perSample(rawSums.v)]);
    ledger.record(`${name}.attn_drop`, 'Dropout', attnCam, [attnCam]);
    const rS = perSample(rScores);
    ledger.record(`${name}.softmax`, 'Softmax', attnCam, [rS]);
    ledger.record(`${name}.matmul1`, 'einsum', rS, [perSample(rawSums.q), perSample(rawSums.k)]);
    const rQkv = tf.concat([tf.concat(rQRows, 0), tf.concat(rKRows, 0), tf.concat(rVRows, 0)], 1) as Tensor2D;
    const input = rules.linear(layer.qkv, rec.input, rQkv);
    ledger.record(`${name}.qkv`, 'Linear', rQkv, [input]);
    ledger.close(top, [input]);
    return { input, attnCam };
  });
}
