/**
 * BERT, RoBERTa and DistilBERT classifiers as a table (HuggingFace names): word lookup, embeddings +
 * LayerNorm, post-LN layers, a pooler on the first token and a classifier. The three differ in names,
 * position ids, segments and the pooler's activation; the computation is one.
 */
import type { HostTensor, Params } from '../../engine/ops.js';
import { postLnBlock } from '../../nn/blocks.js';
import { textEmbeddings, wordLookup } from '../../nn/embeddings.js';
import { poolerHead } from '../../nn/heads.js';
import { layerNorm } from '../../nn/layernorm.js';
import { linearSpec } from '../../nn/linear.js';
import type { Activation } from '../../nn/activations.js';
import type { NormaliserName } from '../../normalisers.js';
import type { Network } from '../../passes/passes.js';
import type { BertModel } from '../../models/bert.js';
import type { TokenInput } from '../../models/types.js';
import { HostParams } from '../host-params.js';

export interface BertShape {
  readonly flavour: 'bert' | 'roberta' | 'distilbert';
  readonly depth: number;
  readonly dim: number;
  readonly heads: number;
  readonly lnEps: number;
  readonly segments: boolean;
  readonly activation: Activation;
  readonly pooler: 'tanh' | 'relu';
  readonly normaliser: NormaliserName;
  readonly padTokenId: number;
}

export function bertNetwork(c: BertShape): Network {
  const layers = Array.from({ length: c.depth }, (_, l) => {
    const at = `layer.${l}`;
    return postLnBlock({
      name: at,
      attn: { qkv: linearSpec(`${at}.attention.qkv`), proj: linearSpec(`${at}.attention.output.dense`), heads: c.heads, headDim: c.dim / c.heads, normaliser: c.normaliser },
      norm1: { name: `${at}.attention.output.LayerNorm`, eps: c.lnEps },
      mlp: { fc1: linearSpec(`${at}.intermediate.dense`), fc2: linearSpec(`${at}.output.dense`), activation: c.activation },
      norm2: { name: `${at}.output.LayerNorm`, eps: c.lnEps },
      mask: 'mask',
    });
  });
  const norm = layerNorm({ name: 'embeddings.LayerNorm', eps: c.lnEps });
  return {
    differentiableFrom: 1,
    layers: [
      wordLookup('embeddings.word', 'embeddings.word_embeddings.weight'),
      textEmbeddings({ name: 'embeddings', positions: 'embeddings.position_embeddings.weight', ...(c.segments ? { types: 'embeddings.token_type_embeddings.weight' } : {}), norm: { name: 'embeddings.LayerNorm', eps: c.lnEps } }, norm),
      ...layers,
      poolerHead('pooler', linearSpec('pooler.dense'), c.pooler, linearSpec('classifier')),
    ],
  };
}

/**
 * The pass inputs besides `x` for token input [B, T], each sample repeated `copies` times: token ids,
 * position ids (BERT from 0; RoBERTa from padding_idx + 1 over non-padding tokens), segment ids, and
 * the additive mask (1 − m)·(−10000) as [B, 1, 1, T].
 */
export function bertInputs(c: Pick<BertShape, 'flavour' | 'padTokenId'>, tokens: TokenInput, copies = 1): Record<string, HostTensor> {
  const [B, T] = tokens.ids.shape;
  const ids = tokens.ids.dataSync();
  const mask = tokens.attentionMask.dataSync();
  const types = tokens.typeIds?.dataSync();
  const n = B * copies;
  const out = { ids: new Float32Array(n * T), positions: new Float32Array(n * T), types: new Float32Array(n * T), mask: new Float32Array(n * T) };
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let t = 0; t < T; t++) {
      const at = b * T + t;
      const id = ids[at]!;
      const notPad = id !== c.padTokenId ? 1 : 0;
      count += notPad;
      const position = c.flavour === 'roberta' ? count * notPad + c.padTokenId : t;
      for (let k = 0; k < copies; k++) {
        const to = (b * copies + k) * T + t;
        out.ids[to] = id;
        out.positions[to] = position;
        out.types[to] = types?.[at] ?? 0;
        out.mask[to] = (1 - mask[at]!) * -10000;
      }
    }
  }
  return {
    ids: { data: out.ids, shape: [n, T] },
    positions: { data: out.positions, shape: [n, T] },
    types: { data: out.types, shape: [n, T] },
    mask: { data: out.mask, shape: [n, 1, 1, T] },
  };
}

/** The layer table and host weights of a loaded BertModel (see families/host-params.ts). */
export function bertFromModel(model: BertModel): { network: Network; shape: BertShape; params: Params } {
  const { config: cfg, weights: W } = model;
  const params = new HostParams();
  params.tensor('embeddings.word_embeddings.weight', W.wordEmbeddings);
  params.tensor('embeddings.position_embeddings.weight', W.positionEmbeddings);
  if (W.typeEmbeddings) params.tensor('embeddings.token_type_embeddings.weight', W.typeEmbeddings);
  params.layerNorm('embeddings.LayerNorm', W.embeddingNorm);
  W.layers.forEach((l, i) => {
    const at = `layer.${i}`;
    params.linear(`${at}.attention.qkv`, l.attn.qkv);
    params.linear(`${at}.attention.output.dense`, l.attn.proj);
    params.layerNorm(`${at}.attention.output.LayerNorm`, l.norm1);
    params.linear(`${at}.intermediate.dense`, l.mlp.fc1);
    params.linear(`${at}.output.dense`, l.mlp.fc2);
    params.layerNorm(`${at}.output.LayerNorm`, l.norm2);
  });
  params.linear('pooler.dense', W.pooler);
  params.linear('classifier', W.classifier);
  const shape: BertShape = {
    flavour: cfg.flavour,
    depth: cfg.depth,
    dim: cfg.dim,
    heads: cfg.heads,
    lnEps: cfg.lnEps,
    segments: !!W.typeEmbeddings,
    activation: W.layers[0]?.mlp.activation === 'gelu-tanh' ? 'gelu-tanh' : 'gelu',
    pooler: cfg.poolerActivation,
    normaliser: cfg.attention ?? 'softmax',
    padTokenId: cfg.padTokenId,
  };
  return { network: bertNetwork(shape), shape, params };
}
