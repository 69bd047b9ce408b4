/**
 * A ViT / DeiT forward pass as one ONNX graph: pixels [B, C, H, W] → logits [B, classes]. The same
 * steps as ViTModel.predict (models/vit.ts), for onnx/predict.ts to run on ONNX Runtime.
 */
import { GraphBuilder } from './proto.js';
import { attention, layerNorm, linear, mlp } from './layers.js';
import type { ViTModel } from '../models/vit.js';

export function vitGraph(model: ViTModel): Uint8Array {
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
  const prefixShape = g.op('Concat', [batch, g.ints([P, D])], { axis: 0 });
  const prefix = g.op('Expand', [g.constant('prefix', Float32Array.from(W.prefix.dataSync()), [1, P, D]), prefixShape]);
  let x = g.op('Add', [g.op('Concat', [prefix, patchEmbeds], { axis: 1 }), g.constant('pos', Float32Array.from(W.posEmbed.dataSync()), [1, T, D])]);
  for (const block of W.blocks) {
    x = g.op('Add', [x, attention(g, block.attn, layerNorm(g, block.norm1, x), T)]);
    x = g.op('Add', [x, mlp(g, block.mlp, layerNorm(g, block.norm2, x))]);
  }
  const normed = layerNorm(g, W.norm, x);
  // Head i reads token i (CLS, then the distillation token); two heads are averaged.
  const heads = W.heads.map((head, i) => linear(g, head, g.op('Gather', [normed, g.constant('token', BigInt64Array.of(BigInt(i)), [])], { axis: 1 })));
  const sum = heads.length === 1 ? heads[0]! : g.op('Div', [heads.reduce((a, b) => g.op('Add', [a, b])), g.scalar(heads.length)]);
  g.node('Identity', [sum], {}, ['logits']);
  g.output('logits', 'float', ['B', cfg.numClasses]);
  return g.model();
}
