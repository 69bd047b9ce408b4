/**
 * A BERT-style forward pass (BERT, RoBERTa, DistilBERT) as one ONNX graph: token ids, attention
 * mask and segment ids [B, T] → logits [B, classes]. The same steps as BertModel.predict
 * (models/bert.ts), for onnx/predict.ts to run on ONNX Runtime.
 */
import { GraphBuilder } from './proto.js';
import { attention, layerNorm, linear, mlp } from './layers.js';
import type { BertModel } from '../models/bert.js';

/**
 * `tokens`: the sequence length the graph is built for, which the sparse normalisers need (their
 * sort covers a row); null for a graph that takes any length (softmax attention).
 */
export function bertGraph(model: BertModel, tokens: number | null): Uint8Array {
  const { config: cfg, weights: W } = model;
  const g = new GraphBuilder(`relprop_${model.name}`);
  const T = tokens ?? 'T';
  const ids = g.input('ids', 'int64', ['B', T]);
  const mask = g.input('mask', 'float', ['B', T]);
  const types = g.input('types', 'int64', ['B', T]);
  const table = (name: string, t: { dataSync(): ArrayLike<number>; shape: number[] }) => g.constant(name, Float32Array.from(t.dataSync()), t.shape);
  const lookup = (name: string, t: { dataSync(): ArrayLike<number>; shape: number[] }, at: string) => g.op('Gather', [table(name, t), at], { axis: 0 });
  // Positions: 0, 1, … for BERT; RoBERTa counts non-padding tokens from padding_idx + 1.
  let positions: string;
  if (cfg.flavour === 'roberta') {
    const notPad = g.op('Cast', [g.op('Not', [g.op('Equal', [ids, g.constant('pad', BigInt64Array.of(BigInt(cfg.padTokenId)), [])])])], { to: 7 });
    positions = g.op('Add', [g.op('Mul', [g.op('CumSum', [notPad, g.constant('axis', BigInt64Array.of(1n), [])]), notPad]), g.constant('pad', BigInt64Array.of(BigInt(cfg.padTokenId)), [])]);
  } else {
    const length = g.op('Squeeze', [g.op('Slice', [g.op('Shape', [ids]), g.ints([1]), g.ints([2])]), g.ints([0])]);
    positions = g.op('Range', [g.constant('zero', BigInt64Array.of(0n), []), length, g.constant('one', BigInt64Array.of(1n), [])]);
  }
  let sum = g.op('Add', [lookup('words', W.wordEmbeddings, ids), lookup('positions', W.positionEmbeddings, positions)]);
  if (W.typeEmbeddings) sum = g.op('Add', [sum, lookup('types', W.typeEmbeddings, types)]);
  let x = layerNorm(g, W.embeddingNorm, sum);
  // (1 − mask)·(−10000), broadcast over heads and query rows: [B, 1, 1, T].
  const additive = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [g.scalar(1), mask]), g.scalar(-10000)]), g.ints([1, 2])]);
  for (const layer of W.layers) {
    const h = layerNorm(g, layer.norm1, g.op('Add', [attention(g, layer.attn, x, tokens ?? 0, additive), x]));
    x = layerNorm(g, layer.norm2, g.op('Add', [mlp(g, layer.mlp, h), h]));
  }
  const first = g.op('Gather', [x, g.constant('token', BigInt64Array.of(0n), [])], { axis: 1 });
  const pooled = linear(g, W.pooler, first);
  const activated = g.op(cfg.poolerActivation === 'tanh' ? 'Tanh' : 'Relu', [pooled]);
  g.node('Identity', [linear(g, W.classifier, activated)], {}, ['logits']);
  g.output('logits', 'float', ['B', cfg.numClasses]);
  return g.model();
}
