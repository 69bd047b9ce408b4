/**
 * A BERT-style forward pass (BERT, RoBERTa, DistilBERT) as one ONNX graph: token ids, attention
 * mask and segment ids [B, T] → logits [B, classes], the same steps as BertModel.predict
 * (models/bert.ts). With `gradient`, the word embeddings come in as an input [B, T, D] instead of
 * being looked up, and the hand-written backward pass follows (BertModel.backward's steps): given
 * logit weights w [B, classes], the graph also gives ∂(Σ w ⊙ logits)/∂words.
 */
import { GraphBuilder } from './proto.js';
import { addToFirstRows, atToken, attention, attentionBack, layerNorm, layerNormBack, linear, linearBack, mlp, mlpBack, rows, tokenIndex, type AttentionNodes, type LayerNormNodes, type MlpNodes } from './layers.js';
import type { BertModel } from '../models/bert.js';

/**
 * `tokens`: the sequence length the graph is built for, which the sparse normalisers need (their
 * sort covers a row); null for a graph that takes any length (softmax attention).
 */
export function bertGraph(model: BertModel, tokens: number | null, gradient = false): Uint8Array {
  const { config: cfg, weights: W } = model;
  const g = new GraphBuilder(`relprop_${model.name}`);
  const T = tokens ?? 'T';
  const ids = g.input('ids', 'int64', ['B', T]);
  const mask = g.input('mask', 'float', ['B', T]);
  const types = g.input('types', 'int64', ['B', T]);
  const words = gradient ? g.input('words', 'float', ['B', T, cfg.dim]) : g.op('Gather', [g.weight('words', W.wordEmbeddings), ids], { axis: 0 });
  const index = tokenIndex(g, ids);
  // Positions: 0, 1, … for BERT; RoBERTa counts non-padding tokens from padding_idx + 1.
  let positions = index;
  if (cfg.flavour === 'roberta') {
    const pad = g.constant('pad', BigInt64Array.of(BigInt(cfg.padTokenId)), []);
    const notPad = g.op('Cast', [g.op('Not', [g.op('Equal', [ids, pad])])], { to: 7 });
    positions = g.op('Add', [g.op('Mul', [g.op('CumSum', [notPad, g.constant('axis', BigInt64Array.of(1n), [])]), notPad]), pad]);
  }
  let sum = g.op('Add', [words, g.op('Gather', [g.weight('positions', W.positionEmbeddings), positions], { axis: 0 })]);
  if (W.typeEmbeddings) sum = g.op('Add', [sum, g.op('Gather', [g.weight('types', W.typeEmbeddings), types], { axis: 0 })]);
  const embedded = layerNorm(g, W.embeddingNorm, sum);
  let x = embedded.output;
  // (1 − mask)·(−10000), broadcast over heads and query rows: [B, 1, 1, T].
  const additive = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [g.scalar(1), mask]), g.scalar(-10000)]), g.ints([1, 2])]);
  const records: Array<{ attn: AttentionNodes; norm1: LayerNormNodes; mlp: MlpNodes; norm2: LayerNormNodes }> = [];
  const last = W.layers.length - 1;
  for (const [l, layer] of W.layers.entries()) {
    // The pooler reads only the first token, so the last layer computes only its row past the keys
    // and values: its query, LayerNorms, FFN and residual.
    const only = l === last ? 1 : undefined;
    const attn = attention(g, layer.attn, x, tokens ?? 0, additive, only);
    const norm1 = layerNorm(g, layer.norm1, g.op('Add', [attn.output, only ? rows(g, x, 0, only) : x]));
    const ffn = mlp(g, layer.mlp, norm1.output);
    const norm2 = layerNorm(g, layer.norm2, g.op('Add', [ffn.output, norm1.output]));
    records.push({ attn, norm1, mlp: ffn, norm2 });
    x = norm2.output;
  }
  const first = g.op('Gather', [x, g.constant('token', BigInt64Array.of(0n), [])], { axis: 1 });
  const pooledIn = linear(g, W.pooler, first);
  const tanh = cfg.poolerActivation === 'tanh';
  const pooled = g.op(tanh ? 'Tanh' : 'Relu', [pooledIn]);
  g.node('Identity', [linear(g, W.classifier, pooled)], {}, ['logits']);
  g.output('logits', 'float', ['B', cfg.numClasses]);
  if (!gradient) return g.model();

  const dPooled = linearBack(g, W.classifier, g.input('weights', 'float', ['B', cfg.numClasses]));
  const slope = tanh ? g.op('Sub', [g.scalar(1), g.op('Mul', [pooled, pooled])]) : g.op('Cast', [g.op('Greater', [pooledIn, g.scalar(0)])], { to: 1 });
  let dx = atToken(g, linearBack(g, W.pooler, g.op('Mul', [dPooled, slope])), 0, tokenIndex(g, x));
  for (let l = W.layers.length - 1; l >= 0; l--) {
    const [r, layer] = [records[l]!, W.layers[l]!];
    const dNorm2In = layerNormBack(g, layer.norm2, r.norm2, dx);
    const dh = g.op('Add', [dNorm2In, mlpBack(g, layer.mlp, r.mlp, dNorm2In)]);
    const dNorm1In = layerNormBack(g, layer.norm1, r.norm1, dh);
    const dIn = attentionBack(g, layer.attn, r.attn, dNorm1In);
    dx = r.attn.queries ? addToFirstRows(g, dIn, dNorm1In, r.attn.queries) : g.op('Add', [dNorm1In, dIn]);
  }
  g.node('Identity', [layerNormBack(g, W.embeddingNorm, embedded, dx)], {}, ['gradient']);
  g.output('gradient', 'float', ['B', T, cfg.dim]);
  return g.model();
}
