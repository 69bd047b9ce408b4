/**
 * Layers shared by every transformer family (ViT, BERT, …): multi-head self-attention and the MLP.
 * Each forward returns what the relevance rules need later (the layer's inputs and intermediate
 * values), so a relevance pass never has to recompute forward work.
 */
import { tf, type Tensor, type Tensor2D, type Tensor3D, type Tensor4D } from '../tf.js';
import { normalise, normaliserJvp, type NormaliserName } from '../normalisers.js';
import { gelu, geluBackward, geluTanh, linear, matmul, matmulBT, type Linear } from '../ops.js';
import type { ModelInput, Occlusions, TokenInput } from './types.js';
import type { AttentionEdit, AttentionRecord } from './records.js';

export type { AttentionEdit, AttentionRecord } from './records.js';

export interface Attention {
  readonly name: string;
  /** Fused q|k|v projection: output columns are [q (all heads) | k | v], each head contiguous. */
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly heads: number;
  readonly headDim: number;
  /** 1/√d. Not a layer of its own: in the authors' code relevance passes through it unchanged. */
  readonly scale: number;
  /** What turns scores into attention weights: softmax, or the sparse sparsemax / 1.5-entmax. */
  readonly normaliser?: NormaliserName;
}


export interface AttentionOptions {
  /** Additive mask on the scaled scores, [B, T] (0 = attend, large negative = ignore). */
  readonly mask?: Tensor2D;
  /**
   * Decoder (GPT-style) attention: token i attends to tokens j ≤ i only. Added to the scores as a
   * constant [T, T] mask, so every (sample, head) stays one pair of 2-D products.
   */
  readonly causal?: boolean;
  /**
   * Zero [T, T] tensors, one per (sample, head) in that order, added to A. Their gradient is
   * ∂(target)/∂A, which gradient-weighted methods (the paper's ∇A ⊙ R^A) need and which
   * TensorFlow.js cannot give for an intermediate tensor otherwise. One small probe per head, not one
   * big one sliced: a slice's gradient is a full-size pad, and those add up to gigabytes on ViT-B.
   */
  readonly probes?: readonly Tensor2D[];
  /**
   * All heads and samples in 3-D products. Slower per FLOP on wasm, but one op instead of B·H small
   * ones: faster for training small models, where per-op overhead dominates. No probes.
   */
  readonly batched?: boolean;
  /** Replace A of (sample, head) before it is used: attention permutation and adversarial attention tests. */
  readonly edit?: AttentionEdit;
}


/**
 * Multi-head self-attention on a batch flattened to [B·T, D]. Each (sample, head) pair is a pair of
 * 2-D products, the only fast matmul on wasm. q, k, v are cut with split (its gradient is a concat)
 * rather than slice (its gradient pads every piece back to full size).
 */
export function attention(layer: Attention, x: Tensor2D, batch: number, tokens: number, options: AttentionOptions = {}): AttentionRecord {
  if (options.batched) return batchedAttention(layer, x, batch, tokens, options.mask, options.causal);
  const { heads } = layer;
  const normaliser = layer.normaliser ?? 'softmax';
  const qkv = linear(layer.qkv, x);
  const samples = batch === 1 ? [qkv] : (tf.split(qkv, batch, 0) as Tensor2D[]);
  const probsPerSample: Tensor4D[] = [];
  const contextPerSample: Tensor2D[] = [];
  const allScores: Tensor2D[] = [];
  const causal = options.causal ? causalMask(tokens) : null;
  samples.forEach((rows, b) => {
    const pieces = tf.split(rows, 3 * heads, 1) as Tensor2D[];
    const keyMask = options.mask ? (tf.slice(options.mask, [b, 0], [1, tokens]) as Tensor2D) : null;
    // One [T, T] (or [1, T]) mask per sample, shared by its heads: one add per head, not two.
    const maskRow = causal && keyMask ? (tf.add(causal, keyMask) as Tensor2D) : (causal ?? keyMask);
    const probs: Tensor2D[] = [];
    const context: Tensor2D[] = [];
    for (let h = 0; h < heads; h++) {
      const [q, k, v] = [pieces[h]!, pieces[heads + h]!, pieces[2 * heads + h]!];
      let scores = tf.mul(matmul(q, tf.transpose(k)), layer.scale) as Tensor2D;
      if (maskRow) scores = tf.add(scores, maskRow);
      allScores.push(scores);
      let a = normalise(normaliser, scores);
      if (options.edit) a = options.edit(a, b, h);
      const probe = options.probes?.[b * heads + h];
      if (probe) a = tf.add(a, probe);
      probs.push(a);
      context.push(matmul(a, v));
    }
    probsPerSample.push(tf.reshape(tf.stack(probs), [1, heads, tokens, tokens]) as Tensor4D);
    contextPerSample.push(tf.concat(context, 1) as Tensor2D);
  });
  const context = (batch === 1 ? contextPerSample[0]! : tf.concat(contextPerSample, 0)) as Tensor2D;
  return {
    input: x,
    qkv,
    probs: (batch === 1 ? probsPerSample[0] : tf.concat(probsPerSample, 0)) as Tensor4D,
    context,
    output: linear(layer.proj, context),
    scores: allScores,
  };
}

/**
 * 0 on and below the diagonal, −1e9 above: exp underflows to exactly 0 in float32 however large the
 * scores, so a later token has no effect at all on an earlier position (not merely a small one).
 */
export const CAUSAL_MASK_VALUE = -1e9;

export function causalMask(tokens: number): Tensor2D {
  return tf.tidy(() => {
    const rows = tf.reshape(tf.range(0, tokens, 1, 'int32'), [tokens, 1]);
    const cols = tf.reshape(tf.range(0, tokens, 1, 'int32'), [1, tokens]);
    return tf.mul(tf.cast(tf.greater(cols, rows), 'float32'), CAUSAL_MASK_VALUE) as Tensor2D;
  });
}

function batchedAttention(layer: Attention, x: Tensor2D, batch: number, tokens: number, mask?: Tensor2D, causal?: boolean): AttentionRecord {
  const { heads, headDim: d } = layer;
  const qkv = linear(layer.qkv, x);
  // [B·T, 3·H·d] → [B, 3H, T, d]: rank ≤ 4 throughout.
  const byHead = tf.transpose(tf.reshape(qkv, [batch, tokens, 3 * heads, d]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(byHead, 3, 1).map((t) => tf.reshape(t, [batch * heads, tokens, d]) as Tensor3D);
  let scores = tf.mul(tf.matMul(q!, k!, false, true), layer.scale) as Tensor3D;
  if (mask) scores = tf.add(scores, tf.reshape(tf.tile(tf.reshape(mask, [batch, 1, tokens]), [1, heads, 1]), [batch * heads, 1, tokens]));
  if (causal) scores = tf.add(scores, causalMask(tokens));
  const flat = normalise(layer.normaliser ?? 'softmax', tf.reshape(scores, [batch * heads * tokens, tokens]) as Tensor2D);
  const probs = tf.reshape(flat, [batch * heads, tokens, tokens]) as Tensor3D;
  const ctx = tf.matMul(probs, v!);
  const context = tf.reshape(tf.transpose(tf.reshape(ctx, [batch, heads, tokens, d]), [0, 2, 1, 3]), [batch * tokens, heads * d]) as Tensor2D;
  return { input: x, qkv, probs: tf.reshape(probs, [batch, heads, tokens, tokens]) as Tensor4D, context, output: linear(layer.proj, context), batched: true };
}

export interface Mlp {
  readonly name: string;
  readonly fc1: Linear;
  readonly fc2: Linear;
  /** 'gelu' (exact, erf; the default) or 'gelu-tanh' (the tanh approximation GPT-2 uses). */
  readonly activation?: 'gelu' | 'gelu-tanh';
}

export interface MlpRecord {
  /** Input of fc1. */
  readonly input: Tensor2D;
  /** fc1 output, before GELU. */
  readonly hidden: Tensor2D;
  /** GELU output: the input of fc2. */
  readonly activated: Tensor2D;
  readonly output: Tensor2D;
}

export function mlp(layer: Mlp, x: Tensor2D): MlpRecord {
  const hidden = linear(layer.fc1, x);
  const activated = (layer.activation === 'gelu-tanh' ? geluTanh(hidden) : gelu(hidden)) as Tensor2D;
  return { input: x, hidden, activated, output: linear(layer.fc2, activated) };
}

/**
 * One pre-LN block's recorded activations (ViT's Block, GPT-2's GPT2Block), [B·T, ·]: x + Attn(LN₁(x)),
 * then + MLP(LN₂(·)). What its relevance pass (relevance/pre-ln-block.ts) and backward pass read.
 */
export interface PreLnBlockRecord {
  /** The residual stream entering the block: LN₁'s input and the first residual branch. */
  readonly input: Tensor2D;
  /** LN₁'s output: the attention's input. */
  readonly norm1Out: Tensor2D;
  readonly attn: AttentionRecord;
  /** input + attention output: LN₂'s input and the second residual branch. */
  readonly mid: Tensor2D;
  /** LN₂'s output: the MLP's input. */
  readonly norm2Out: Tensor2D;
  readonly mlp: MlpRecord;
  /** mid + MLP output: the next block's input. */
  readonly output: Tensor2D;
}

/** Sample b of a batch of token inputs, as a batch of one (ids, mask and, where present, segment ids). */
export function tokenSampleOf(t: TokenInput, b: number): TokenInput {
  const row = (x: Tensor2D) => tf.slice(x, [b, 0], [1, x.shape[1]]) as Tensor2D;
  return { kind: 'tokens', ids: row(t.ids), attentionMask: row(t.attentionMask), ...(t.typeIds ? { typeIds: row(t.typeIds) } : {}), ...(t.explainAt ? { explainAt: [t.explainAt[b]!] } : {}) };
}

/**
 * Token models' attribution maps (BERT, GPT-2): a gradient-based attribution on the word
 * embeddings, [B·T, D], reduced over the hidden axis — Σ|·| for saliency, Σ for signed methods —
 * to one value per token.
 */
export function tokenAttributionMaps(attribution: Tensor, batch: number, mode: 'abs' | 'abs-sum' | 'signed') {
  const reduced = tf.tidy(() => tf.sum(mode === 'signed' ? attribution : tf.abs(attribution), 1));
  const flat = reduced.dataSync() as Float32Array;
  reduced.dispose();
  const T = flat.length / batch;
  return { maps: Array.from({ length: batch }, (_, b) => flat.slice(b * T, (b + 1) * T)), shape: [T], space: 'token' as const };
}

/**
 * The backward pass through one attention layer, from the gradient at its output (before `proj`'s
 * input is reached the caller has applied proj: `dContext` is the gradient at A·V, heads side by
 * side): the gradient at its input x and, per (sample, head), at the attention weights A — what a
 * zero probe added to A would receive. Every product is 2-D, per head; the elementwise work runs on
 * all heads at once. The normaliser's Jacobian is symmetric (softmax, sparsemax, 1.5-entmax), so its
 * vector-Jacobian product is normaliserJvp. Additive masks pass gradients unchanged.
 */
export function attentionBackward(layer: Attention, rec: AttentionRecord, dContext: Tensor2D, batch: number, tokens: number): { input: Tensor2D; probs: Tensor4D } {
  if (rec.batched) return batchedAttentionBackward(layer, rec, dContext, batch, tokens);
  return tf.tidy(() => {
    const { heads: H } = layer;
    const T = tokens;
    const normaliser = layer.normaliser ?? 'softmax';
    const dQkv: Tensor2D[] = [];
    const dProbs: Tensor2D[] = [];
    for (let b = 0; b < batch; b++) {
      const rows = <X extends Tensor2D>(t: X) => (batch === 1 ? t : (tf.slice(t, [b * T, 0], [T, t.shape[1]]) as X));
      const pieces = tf.split(rows(rec.qkv), 3 * H, 1) as Tensor2D[];
      const probs = tf.reshape(batch === 1 ? rec.probs : tf.slice(rec.probs, [b, 0, 0, 0], [1, H, T, T]), [H * T, T]) as Tensor2D;
      const a = tf.split(probs, H, 0) as Tensor2D[];
      const dc = tf.split(rows(dContext), H, 1) as Tensor2D[];
      // context_h = A_h·V_h: ∂A_h = ∂ctx_h·V_hᵀ, ∂V_h = A_hᵀ·∂ctx_h.
      const dA = tf.concat(dc.map((g, h) => tf.matMul(g, tf.transpose(pieces[2 * H + h]!))), 0) as Tensor2D;
      const dV = tf.concat(dc.map((g, h) => tf.matMul(tf.transpose(a[h]!), g)), 1);
      dProbs.push(dA);
      // A = normaliser(scale·Q·Kᵀ + masks): ∂(Q·Kᵀ) = scale·Jᵀ∂A, then ∂Q_h = ∂S_h·K_h, ∂K_h = ∂S_hᵀ·Q_h.
      const dS = tf.split(tf.mul(normaliserJvp(normaliser, probs, dA), layer.scale), H, 0) as Tensor2D[];
      const dQ = tf.concat(dS.map((g, h) => tf.matMul(g, pieces[H + h]!)), 1);
      const dK = tf.concat(dS.map((g, h) => tf.matMul(tf.transpose(g), pieces[h]!)), 1);
      dQkv.push(tf.concat([dQ, dK, dV], 1) as Tensor2D);
    }
    const d = batch === 1 ? dQkv[0]! : (tf.concat(dQkv, 0) as Tensor2D);
    return {
      input: matmulBT(d, layer.qkv.wT),
      probs: tf.reshape(batch === 1 ? dProbs[0]! : tf.concat(dProbs, 0), [batch, H, T, T]) as Tensor4D,
    };
  });
}

/**
 * attentionBackward for a record of the batched path: the same products with every (sample, head)
 * in one 3-D product each (for several samples at once on ONNX Runtime, where a 3-D product costs
 * one call instead of B·H).
 */
function batchedAttentionBackward(layer: Attention, rec: AttentionRecord, dContext: Tensor2D, batch: number, tokens: number): { input: Tensor2D; probs: Tensor4D } {
  return tf.tidy(() => {
    const { heads: H, headDim: d } = layer;
    const [B, T] = [batch, tokens];
    const byHead = tf.transpose(tf.reshape(rec.qkv, [B, T, 3 * H, d]), [0, 2, 1, 3]);
    const [q, k, v] = tf.split(byHead, 3, 1).map((t) => tf.reshape(t, [B * H, T, d]) as Tensor3D) as [Tensor3D, Tensor3D, Tensor3D];
    const probs = tf.reshape(rec.probs, [B * H, T, T]) as Tensor3D;
    const dc = tf.reshape(tf.transpose(tf.reshape(dContext, [B, T, H, d]), [0, 2, 1, 3]), [B * H, T, d]) as Tensor3D;
    // context = A·V: ∂A = ∂ctx·Vᵀ, ∂V = Aᵀ·∂ctx; A = normaliser(scale·Q·Kᵀ + masks): ∂Q = ∂S·K, ∂K = ∂Sᵀ·Q.
    const dA = tf.matMul(dc, v, false, true);
    const dV = tf.matMul(probs, dc, true, false);
    const flat = (t: Tensor) => tf.reshape(t, [B * H * T, T]) as Tensor2D;
    const dS = tf.reshape(tf.mul(normaliserJvp(layer.normaliser ?? 'softmax', flat(probs), flat(dA)), layer.scale), [B * H, T, T]) as Tensor3D;
    const dQ = tf.matMul(dS, k);
    const dK = tf.matMul(dS, q, true, false);
    // Back to q|k|v's columns (q heads, k heads, v heads), row per (sample, token).
    const perHead = (t: Tensor) => tf.reshape(t, [B, H, T, d]);
    const dQkv = tf.reshape(tf.transpose(tf.concat([perHead(dQ), perHead(dK), perHead(dV)], 1), [0, 2, 1, 3]), [B * T, 3 * H * d]) as Tensor2D;
    return { input: matmulBT(dQkv, layer.qkv.wT), probs: tf.reshape(dA, [B, H, T, T]) as Tensor4D };
  });
}

/** The backward pass through an MLP (exact-GELU activation) from the gradient at its output to its input. */
export function mlpBackward(layer: Mlp, rec: MlpRecord, dOutput: Tensor2D): Tensor2D {
  if (layer.activation === 'gelu-tanh') throw new Error('mlpBackward: only the exact (erf) GELU');
  return tf.tidy(() => matmulBT(geluBackward(rec.hidden, matmulBT(dOutput, layer.fc2.wT)) as Tensor2D, layer.fc1.wT));
}

/**
 * Leave-one-out by removal for decoders, which have no [MASK] or [UNK]: each real token of sample b in
 * turn is cut out and the rest moves up (positions stay contiguous), `filler` padding the end. The
 * last token counts too: it is a word of the text, not a CLS.
 */
export function removalOcclusions(t: TokenInput, b: number, filler: number): Occlusions {
  const T = t.ids.shape[1];
  const ids = tokenRow(t.ids, b);
  const mask = tokenRow(t.attentionMask, b);
  const real = mask.flatMap((m, i) => (m ? [i] : []));
  // The explained position moves up with the tokens when one at or before it is removed; a token
  // after it cannot change the prediction (causal attention) and scores 0 without a pass.
  const at = t.explainAt?.[b];
  const kept = at === undefined ? real : real.filter((pos) => pos <= at);
  // A text of one token has nothing left to predict from once it is removed.
  const positions = kept.length > 1 ? kept : [];
  const variants = positions.map((pos) => ({
    ids: [...ids.slice(0, pos), ...ids.slice(pos + 1), filler],
    mask: [...mask.slice(0, pos), ...mask.slice(pos + 1), 0],
    ...(at === undefined ? {} : { explainAt: at - 1 }),
  }));
  const batches: ModelInput[] = [];
  for (let s = 0; s < variants.length; s += 16) {
    const group = variants.slice(s, s + 16);
    batches.push({
      kind: 'tokens',
      ids: tf.tensor2d(group.flatMap((v) => v.ids), [group.length, T], 'int32'),
      attentionMask: tf.tensor2d(group.flatMap((v) => v.mask), [group.length, T], 'int32'),
      ...(at === undefined ? {} : { explainAt: group.map((v) => v.explainAt!) }),
    });
  }
  return { batches, positions, shape: [T], space: 'token', mode: 'remove' };
}

/** Row b of a [B, T] token tensor, as numbers. */
export function tokenRow(x: Tensor2D, b: number): number[] {
  const r = tf.slice(x, [b, 0], [1, x.shape[1]]);
  const values = Array.from(r.dataSync());
  r.dispose();
  return values;
}

/** A decoder's map over tokens: every position, the explained one included (it is a word of the text, unlike a CLS). */
export function decoderTokenMap(row: ArrayLike<number>): { data: Float32Array; shape: number[]; space: 'token' } {
  const data = Float32Array.from(row);
  return { data, shape: [data.length], space: 'token' };
}
