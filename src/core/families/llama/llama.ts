/**
 * Llama-style decoders as a table (HuggingFace names, without the `model.` prefix): token embeddings,
 * pre-RMSNorm blocks with rotary, grouped-query, causal self-attention and a SwiGLU MLP, the explained
 * position's row, the final RMSNorm and the (tied or untied) LM head. Llama 2/3, Mistral and Qwen2 are
 * this table with different config values: q/k/v biases (Qwen2), a sliding window (Mistral), rope
 * scaling (Llama 3.1/3.2's `llama3`, `linear`). Their …ForSequenceClassification heads are the same
 * table with `score` in place of the LM head, read at the last real token as HF reads it.
 */
import type { HostTensor } from '../../engine/ops.js';
import { preLnBlock } from '../../nn/blocks.js';
import { wordLookup } from '../../nn/embeddings.js';
import { selectedRow, tokenHeads } from '../../nn/heads.js';
import { linearSpec } from '../../nn/linear.js';
import type { Network } from '../../nn/network.js';
import { rmsNorm } from '../../nn/rmsnorm.js';
import { CheckpointError } from '../../errors.js';

export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'llama3'; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositions: number };

export interface LlamaShape {
  readonly depth: number;
  readonly dim: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly eps: number;
  /** q, k and v projections with biases (Qwen2). */
  readonly qkvBias: boolean;
  readonly tied: boolean;
  /** 'lm': the next-token head (lm_head, or embed_tokens when tied); 'score': …ForSequenceClassification's classes, read at the last real token. */
  readonly head: 'lm' | 'score';
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  /** Mistral: a token attends to the last `slidingWindow` positions only (itself included). */
  readonly slidingWindow: number | null;
}

export function llamaNetwork(c: LlamaShape): Network {
  const blocks = Array.from({ length: c.depth }, (_, l) => {
    const at = `layers.${l}`;
    return preLnBlock({
      name: at,
      norm1: { name: `${at}.input_layernorm`, eps: c.eps, rms: true },
      attn: {
        qkv: { q: linearSpec(`${at}.self_attn.q_proj`, c.qkvBias), k: linearSpec(`${at}.self_attn.k_proj`, c.qkvBias), v: linearSpec(`${at}.self_attn.v_proj`, c.qkvBias) },
        proj: linearSpec(`${at}.self_attn.o_proj`, false),
        heads: c.heads,
        kvHeads: c.kvHeads,
        headDim: c.headDim,
        rope: { cos: 'cos', sin: 'sin' },
      },
      norm2: { name: `${at}.post_attention_layernorm`, eps: c.eps, rms: true },
      mlp: { gate: linearSpec(`${at}.mlp.gate_proj`, false), up: linearSpec(`${at}.mlp.up_proj`, false), down: linearSpec(`${at}.mlp.down_proj`, false), activation: 'silu' },
      mask: 'mask',
    });
  });
  return {
    differentiableFrom: 1,
    layers: [
      wordLookup('embed_tokens', 'embed_tokens.weight'),
      ...blocks,
      selectedRow('explained', 'select'),
      rmsNorm({ name: 'norm', eps: c.eps }),
      c.head === 'score' ? tokenHeads('score', [{ w: 'score.weight' }]) : tokenHeads('lm_head', [{ w: c.tied ? 'embed_tokens.weight' : 'lm_head.weight' }]),
    ],
  };
}

/** HF's rotary inverse frequencies for a head of size d, with the checkpoint's scaling. */
export function ropeInverseFrequencies(c: Pick<LlamaShape, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const d = c.headDim;
  const inv = Float64Array.from({ length: d / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / d));
  const s = c.ropeScaling;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  if (s.type === 'llama3') {
    // transformers' _compute_llama3_parameters: long wavelengths slowed by `factor`, short ones
    // kept, the band between interpolated.
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) return f / s.factor;
      if (wavelen < highWavelen) return f;
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    });
  }
  return inv;
}

/** Large enough that e^(score + mask) is 0 in float32, small enough that two of them stay finite. */
const MASKED = -1e9;

/**
 * The pass inputs for token ids [B, T] and their attention mask, each sample repeated `copies` times:
 * ids; the additive mask [B, 1, T, T] (causal, padded keys, the sliding window); the one-hot row of
 * each sample's explained position [B, 1, T] (its last real token unless `explained` says otherwise);
 * and RoPE's cos and sin [B, 1, T, d] at each token's position, counted over real tokens so that
 * padding does not shift them.
 */
export function llamaInputs(c: LlamaShape, ids: ArrayLike<number>, attentionMask: ArrayLike<number>, shape: readonly [number, number], copies = 1, explained?: readonly number[]): Record<string, HostTensor> {
  const [B, T] = shape;
  const n = B * copies;
  const d = c.headDim;
  const inv = ropeInverseFrequencies(c);
  const out = { ids: new Float32Array(n * T), mask: new Float32Array(n * T * T), select: new Float32Array(n * T), cos: new Float32Array(n * T * d), sin: new Float32Array(n * T * d) };
  for (let b = 0; b < B; b++) {
    const positions: number[] = [];
    let count = 0;
    let last = -1;
    for (let t = 0; t < T; t++) {
      if (attentionMask[b * T + t]) {
        last = t;
        count++;
      }
      positions.push(Math.max(0, count - 1));
    }
    const row = explained?.[b] ?? last;
    for (let k = 0; k < copies; k++) {
      const s = b * copies + k;
      for (let t = 0; t < T; t++) {
        out.ids[s * T + t] = ids[b * T + t]!;
        for (let i = 0; i < d / 2; i++) {
          // HF computes cat(freqs, freqs): the same angle for feature i and i + d/2.
          const angle = positions[t]! * inv[i]!;
          const at = (s * T + t) * d;
          out.cos[at + i] = out.cos[at + i + d / 2] = Math.cos(angle);
          out.sin[at + i] = out.sin[at + i + d / 2] = Math.sin(angle);
        }
        for (let j = 0; j < T; j++) {
          const hidden = j > t || !attentionMask[b * T + j] || (c.slidingWindow !== null && t - j >= c.slidingWindow);
          out.mask[(s * T + t) * T + j] = hidden ? MASKED : 0;
        }
      }
      out.select[s * T + row] = 1;
    }
  }
  return {
    ids: { data: out.ids, shape: [n, T] },
    mask: { data: out.mask, shape: [n, 1, T, T] },
    select: { data: out.select, shape: [n, 1, T] },
    cos: { data: out.cos, shape: [n, 1, T, d] },
    sin: { data: out.sin, shape: [n, 1, T, d] },
  };
}

type Json = Record<string, unknown>;

/**
 * The table's values from a HuggingFace config.json (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM), in the layouts of transformers 4.x (`rope_theta`, `rope_scaling`) and 5.x
 * (`rope_parameters`). `file` names the config in errors.
 */
export function llamaShapeFromConfig(json: Json, file: string): LlamaShape {
  const num = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`'${key}' must be a number, got ${JSON.stringify(json[key])}`, file);
    return v;
  };
  const type = String(json['model_type'] ?? 'llama');
  const dim = num('hidden_size');
  const heads = num('num_attention_heads');
  const kvHeads = num('num_key_value_heads', heads);
  const headDim = num('head_dim', dim / heads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new CheckpointError(`the head size ${headDim} (hidden_size / num_attention_heads, or head_dim) must be an even integer for rotary embeddings`, file);
  if (heads % kvHeads !== 0) throw new CheckpointError(`num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`, file);
  const act = json['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new CheckpointError(`hidden_act '${String(act)}' is not supported for ${type} (silu is)`, file);
  const params = (json['rope_parameters'] as Json | undefined) ?? (json['rope_scaling'] as Json | undefined) ?? null;
  const ropeTheta = typeof json['rope_theta'] === 'number' ? json['rope_theta'] : typeof params?.['rope_theta'] === 'number' ? params['rope_theta'] : 10000;
  const ropeType = String(params?.['rope_type'] ?? params?.['type'] ?? 'default');
  const factor = (key: string): number => {
    const v = params?.[key];
    if (typeof v !== 'number' || !(v > 0)) throw new CheckpointError(`rope scaling '${ropeType}' needs a positive '${key}', got ${JSON.stringify(v)}`, file);
    return v;
  };
  let ropeScaling: RopeScaling;
  if (ropeType === 'default') ropeScaling = { type: 'default' };
  else if (ropeType === 'linear') ropeScaling = { type: 'linear', factor: factor('factor') };
  else if (ropeType === 'llama3') ropeScaling = { type: 'llama3', factor: factor('factor'), lowFreqFactor: factor('low_freq_factor'), highFreqFactor: factor('high_freq_factor'), originalMaxPositions: factor('original_max_position_embeddings') };
  else throw new CheckpointError(`rope scaling '${ropeType}' is not supported (default, linear and llama3 are)`, file);
  const window = json['sliding_window'];
  const useWindow = type === 'mistral' ? window !== null && window !== undefined : json['use_sliding_window'] === true;
  return {
    depth: num('num_hidden_layers'),
    dim,
    heads,
    kvHeads,
    headDim,
    eps: num('rms_norm_eps', 1e-6),
    qkvBias: type === 'qwen2' || json['attention_bias'] === true,
    tied: json['tie_word_embeddings'] === true,
    head: Array.isArray(json['architectures']) && json['architectures'].some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification')) ? 'score' : 'lm',
    ropeTheta,
    ropeScaling,
    slidingWindow: useWindow ? num('sliding_window') : null,
  };
}
