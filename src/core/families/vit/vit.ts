/**
 * ViT and DeiT as a table: the configuration, the layer list, and the checkpoint names (timm's).
 * Pre-LN blocks, exact GELU, CLS (and DeiT's distillation) token, learned positions.
 */
import type { Params } from '../../engine/ops.js';
import { preLnBlock } from '../../nn/blocks.js';
import { patchEmbedding } from '../../nn/embeddings.js';
import { tokenHeads } from '../../nn/heads.js';
import { layerNorm } from '../../nn/layernorm.js';
import { linearSpec } from '../../nn/linear.js';
import type { Network } from '../../nn/network.js';
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

