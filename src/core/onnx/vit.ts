/**
 * A ViT / DeiT forward pass as one ONNX graph: pixels [B, C, H, W] → logits [B, classes], the same
 * steps as ViTModel.predict (models/vit.ts), but the last block's for the prefix tokens alone. With `gradient`, the hand-written backward pass follows
 * (ViTModel.backward's steps): given per-sample logit weights w [B, classes] (e_target, or
 * e_target − e_contrast), the graph also gives ∂(Σ w ⊙ logits)/∂pixels.
 */
import { GraphBuilder } from './proto.js';
import { addToFirstRows, atToken, attention, attentionBack, layerNorm, layerNormBack, linear, linearBack, mlp, mlpBack, rows, tokenIndex, type AttentionNodes, type LayerNormNodes, type MlpNodes } from './layers.js';
import type { ViTModel } from '../models/vit.js';

export function vitGraph(model: ViTModel, gradient = false): Uint8Array {
  const { config: cfg, weights: W } = model;
  const [c, p, D, P, T] = [cfg.channels, cfg.patchSize, cfg.dim, cfg.prefixTokens, model.tokens];
  const [gh, gw] = model.grid;
  const g = new GraphBuilder(`relprop_${model.name}`);
  const pixels = g.input('pixels', 'float', ['B', c, gh * p, gw * p]);
  // patchify: [B, C, gh·p, gw·p] → [B, gh, gw, C, p, p] → [B, N, C·p·p], each patch flattened (c, kh, kw).
  const patches = g.op('Reshape', [
    g.op('Transpose', [g.op('Reshape', [pixels, g.ints([0, c, gh, p, gw, p])])], { perm: [0, 2, 4, 1, 3, 5] }),
    g.ints([0, gh * gw, c * p * p]),
  ]);
  const patchEmbeds = linear(g, W.patchEmbed, patches);
  // The prefix tokens (CLS, DeiT's distillation token), broadcast over the batch, in front.
  const batch = g.op('Slice', [g.op('Shape', [pixels]), g.ints([0]), g.ints([1])]);
  const prefix = g.op('Expand', [g.op('Unsqueeze', [g.weight('prefix', W.prefix), g.ints([0])]), g.op('Concat', [batch, g.ints([P, D])], { axis: 0 })]);
  let x = g.op('Add', [g.op('Concat', [prefix, patchEmbeds], { axis: 1 }), g.weight('pos', W.posEmbed)]);
  const records: Array<{ norm1: LayerNormNodes; attn: AttentionNodes; norm2: LayerNormNodes; mlp: MlpNodes }> = [];
  const last = W.blocks.length - 1;
  for (const [l, block] of W.blocks.entries()) {
    // The heads read only the prefix tokens, so the last block computes only their rows past its
    // keys and values: its queries, MLP and residual (about a sixth of a pass on the shipped models).
    const only = l === last ? P : undefined;
    const norm1 = layerNorm(g, block.norm1, x);
    const attn = attention(g, block.attn, norm1.output, T, undefined, only);
    const mid = g.op('Add', [only ? rows(g, x, 0, only) : x, attn.output]);
    const norm2 = layerNorm(g, block.norm2, mid);
    const ffn = mlp(g, block.mlp, norm2.output);
    records.push({ norm1, attn, norm2, mlp: ffn });
    x = g.op('Add', [mid, ffn.output]);
  }
  const final = layerNorm(g, W.norm, x);
  const normed = final.output;
  // Head i reads token i (CLS, then the distillation token); two heads are averaged.
  const pick = (i: number) => g.op('Gather', [normed, g.constant('token', BigInt64Array.of(BigInt(i)), [])], { axis: 1 });
  const heads = W.heads.map((head, i) => linear(g, head, pick(i)));
  const sum = heads.length === 1 ? heads[0]! : g.op('Div', [heads.reduce((a, b) => g.op('Add', [a, b])), g.scalar(heads.length)]);
  g.node('Identity', [sum], {}, ['logits']);
  g.output('logits', 'float', ['B', cfg.numClasses]);
  if (!gradient) return g.model();

  const w = g.input('weights', 'float', ['B', cfg.numClasses]);
  const share = heads.length === 1 ? w : g.op('Div', [w, g.scalar(heads.length)]);
  const tokens = tokenIndex(g, normed);
  let dx = layerNormBack(
    g,
    W.norm,
    final,
    W.heads.map((head, i) => atToken(g, linearBack(g, head, share), i, tokens)).reduce((a, b) => g.op('Add', [a, b])),
  );
  for (let l = W.blocks.length - 1; l >= 0; l--) {
    const [r, b] = [records[l]!, W.blocks[l]!];
    const dMid = g.op('Add', [dx, layerNormBack(g, b.norm2, r.norm2, mlpBack(g, b.mlp, r.mlp, dx))]);
    const dIn = layerNormBack(g, b.norm1, r.norm1, attentionBack(g, b.attn, r.attn, dMid));
    dx = r.attn.queries ? addToFirstRows(g, dIn, dMid, r.attn.queries) : g.op('Add', [dMid, dIn]);
  }
  // Only the patch tokens lead back to the pixels: [B, N, D] → [B, N, C·p·p] → unpatchify.
  const dPatches = linearBack(g, W.patchEmbed, rows(g, dx, P, T));
  const dPixels = g.op('Reshape', [
    g.op('Transpose', [g.op('Reshape', [dPatches, g.ints([0, gh, gw, c, p, p])])], { perm: [0, 3, 1, 4, 2, 5] }),
    g.ints([0, c, gh * p, gw * p]),
  ]);
  g.node('Identity', [dPixels], {}, ['gradient']);
  g.output('gradient', 'float', ['B', c, gh * p, gw * p]);
  return g.model();
}
