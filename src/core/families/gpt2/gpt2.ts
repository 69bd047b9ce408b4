/**
 * GPT-2 as a table (HuggingFace names, Radford et al. 2019): token + position embeddings, pre-LN
 * blocks with causal self-attention, the explained position's row, ln_f and the head tied to wte.
 * The prediction explained is the next token after that row.
 */
import type { HostTensor } from '../../engine/ops.js';
import { preLnBlock } from '../../nn/blocks.js';
import { textEmbeddings, wordLookup } from '../../nn/embeddings.js';
import { selectedRow, tokenHeads } from '../../nn/heads.js';
import { layerNorm } from '../../nn/layernorm.js';
import { linearSpec } from '../../nn/linear.js';
import type { Activation } from '../../nn/activations.js';
import type { NormaliserName } from '../../normalisers.js';
import type { Network } from '../../nn/network.js';

export interface Gpt2Shape {
  readonly depth: number;
  readonly dim: number;
  readonly heads: number;
  readonly lnEps: number;
  readonly activation: Activation;
  readonly normaliser: NormaliserName;
  /** Each layer's score factor: 1/√d (scale_attn_weights), times 1/(layer + 1) where asked. */
  readonly scales: readonly number[];
}

export function gpt2Network(c: Gpt2Shape): Network {
  const blocks = Array.from({ length: c.depth }, (_, l) => {
    const at = `h.${l}`;
    return preLnBlock({
      name: at,
      norm1: { name: `${at}.ln_1`, eps: c.lnEps },
      attn: { qkv: linearSpec(`${at}.attn.c_attn`), proj: linearSpec(`${at}.attn.c_proj`), heads: c.heads, headDim: c.dim / c.heads, normaliser: c.normaliser, scale: c.scales[l]! },
      norm2: { name: `${at}.ln_2`, eps: c.lnEps },
      mlp: { fc1: linearSpec(`${at}.mlp.c_fc`), fc2: linearSpec(`${at}.mlp.c_proj`), activation: c.activation },
      mask: 'mask',
    });
  });
  return {
    differentiableFrom: 1,
    layers: [
      wordLookup('wte', 'wte.weight'),
      textEmbeddings({ name: 'embeddings', positions: 'wpe.weight' }),
      ...blocks,
      selectedRow('explained', 'select'),
      layerNorm({ name: 'ln_f', eps: c.lnEps }),
      // Tied: the head's [V, D] weight is wte itself.
      tokenHeads('lm_head', [{ w: 'wte.weight' }]),
    ],
  };
}

/** Where each sample's tokens are: its explained position and its position ids, [B·T]. */
export interface Gpt2Layout {
  readonly explained: readonly number[];
  readonly positionIds: Int32Array;
}

/**
 * The pass inputs for token ids [B, T] with their attention mask, each sample repeated `copies`
 * times: ids, position ids, the additive mask (causal, plus padded keys) [B, 1, T, T], and the
 * one-hot selection of the explained row [B, 1, T].
 */
export function gpt2Inputs(ids: ArrayLike<number>, attentionMask: ArrayLike<number>, shape: readonly [number, number], layout: Gpt2Layout, maskValue: number, copies = 1): Record<string, HostTensor> {
  const [B, T] = shape;
  const n = B * copies;
  const out = { ids: new Float32Array(n * T), positions: new Float32Array(n * T), mask: new Float32Array(n * T * T), select: new Float32Array(n * T) };
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < copies; k++) {
      const s = b * copies + k;
      for (let t = 0; t < T; t++) {
        out.ids[s * T + t] = ids[b * T + t]!;
        out.positions[s * T + t] = layout.positionIds[b * T + t]!;
      }
      for (let i = 0; i < T; i++) {
        for (let j = 0; j < T; j++) {
          // As the model class adds them: the causal mask, then the padded keys' mask.
          out.mask[(s * T + i) * T + j] = (j > i ? maskValue : 0) + (1 - attentionMask[b * T + j]!) * maskValue;
        }
      }
      out.select[s * T + layout.explained[b]!] = 1;
    }
  }
  return {
    ids: { data: out.ids, shape: [n, T] },
    positions: { data: out.positions, shape: [n, T] },
    mask: { data: out.mask, shape: [n, 1, T, T] },
    select: { data: out.select, shape: [n, 1, T] },
  };
}
