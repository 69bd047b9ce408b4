/**
 * ViT and DeiT as a table: the configuration, the layer list, and the checkpoint names (timm's).
 * Pre-LN blocks, exact GELU, CLS (and DeiT's distillation) token, learned positions.
 */
import type { Params } from '../../engine/ops.js';
import { HostParams } from '../host-params.js';
import { preLnBlock } from '../../nn/blocks.js';
import { patchEmbedding } from '../../nn/embeddings.js';
import { tokenHeads } from '../../nn/heads.js';
import { layerNorm } from '../../nn/layernorm.js';
import { linearSpec } from '../../nn/linear.js';
import type { Network } from '../../passes/passes.js';
import type { ViTModel } from '../../models/vit.js';
import type { Activation } from '../../nn/activations.js';
import type { NormaliserName } from '../../normalisers.js';

export interface VitShape {
  readonly channels: number;
  readonly patch: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly prefixTokens: 1 | 2;
  readonly lnEps: number;
  readonly lnEpsFinal: number;
  readonly activation: Activation;
  readonly qkvBias: boolean;
  readonly normaliser: NormaliserName;
}

export function vitNetwork(c: VitShape): Network {
  const blocks = Array.from({ length: c.depth }, (_, l) => {
    const at = `blocks.${l}`;
    return preLnBlock({
      name: at,
      norm1: { name: `${at}.norm1`, eps: c.lnEps },
      attn: { qkv: linearSpec(`${at}.attn.qkv`, c.qkvBias), proj: linearSpec(`${at}.attn.proj`), heads: c.heads, headDim: c.dim / c.heads, normaliser: c.normaliser },
      norm2: { name: `${at}.norm2`, eps: c.lnEps },
      mlp: { fc1: linearSpec(`${at}.mlp.fc1`), fc2: linearSpec(`${at}.mlp.fc2`), activation: c.activation },
    });
  });
  const heads = c.prefixTokens === 2 ? [linearSpec('head'), linearSpec('head_dist')] : [linearSpec('head')];
  return {
    layers: [
      patchEmbedding({ name: 'patch_embed', proj: linearSpec('patch_embed.proj'), patch: c.patch, channels: c.channels, prefix: 'prefix_tokens', positions: 'pos_embed' }),
      ...blocks,
      layerNorm({ name: 'norm', eps: c.lnEpsFinal }),
      tokenHeads('head', heads),
    ],
  };
}

/**
 * The layer table and host weights of an already loaded ViTModel (its tfjs weights read back, linear
 * weights to PyTorch's [out, in]), so the one definition can be tested against the model classes.
 */
export function vitFromModel(model: ViTModel): { network: Network; params: Params } {
  const { config: cfg, weights: W } = model;
  const params = new HostParams();
  params.linear('patch_embed.proj', W.patchEmbed);
  params.tensor('prefix_tokens', W.prefix);
  params.tensor('pos_embed', W.posEmbed);
  W.blocks.forEach((b, l) => {
    const at = `blocks.${l}`;
    params.layerNorm(`${at}.norm1`, b.norm1);
    params.linear(`${at}.attn.qkv`, b.attn.qkv);
    params.linear(`${at}.attn.proj`, b.attn.proj);
    params.layerNorm(`${at}.norm2`, b.norm2);
    params.linear(`${at}.mlp.fc1`, b.mlp.fc1);
    params.linear(`${at}.mlp.fc2`, b.mlp.fc2);
  });
  params.layerNorm('norm', W.norm);
  W.heads.forEach((h, i) => params.linear(i === 0 ? 'head' : 'head_dist', h));
  const activation = W.blocks[0]?.mlp.activation === 'gelu-tanh' ? 'gelu-tanh' : 'gelu';
  const network = vitNetwork({
    channels: cfg.channels,
    patch: cfg.patchSize,
    dim: cfg.dim,
    depth: cfg.depth,
    heads: cfg.heads,
    prefixTokens: cfg.prefixTokens,
    lnEps: cfg.lnEps,
    lnEpsFinal: cfg.lnEpsFinal,
    activation,
    qkvBias: cfg.qkvBias,
    normaliser: cfg.attention ?? 'softmax',
  });
  return { network, params };
}
