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
import { scaleLayer, softcapLayer } from '../../nn/scale.js';
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
  /** A sliding layer's token attends to the last `slidingWindow` positions only (itself included). */
  readonly slidingWindow: number | null;
  /** Per layer: full causal attention or the sliding window (Mistral: all; Gemma: alternating). */
  readonly layerTypes: readonly ('full' | 'sliding')[];
  /** Gemma 3: the sliding layers' own RoPE base (rope_local_base_freq), unscaled; null: the same RoPE everywhere. */
  readonly localRopeTheta: number | null;
  /** The gated MLP's f: SiLU (SwiGLU) or the tanh GELU (Gemma's GeGLU). */
  readonly activation: 'silu' | 'gelu-tanh';
  /** Gemma's RMSNorm x̂·(1 + w), embeddings times √d, sandwich norms. */
  readonly gemma: boolean;
  /** Per-head q/k RMSNorm (Gemma 3, Qwen3). */
  readonly qkNorm: boolean;
  /** Scores' factor (query_pre_attn_scalar^−½; default head_dim^−½). */
  readonly queryScale: number;
  readonly attnSoftcap: number | null;
  readonly finalSoftcap: number | null;
}

export function llamaNetwork(c: LlamaShape): Network {
  const norm = (name: string) => ({ name, eps: c.eps, rms: true as const, ...(c.gemma ? { unitOffset: true } : {}) });
  const blocks = Array.from({ length: c.depth }, (_, l) => {
    const at = `layers.${l}`;
    const sliding = c.layerTypes[l] === 'sliding';
    const local = sliding && c.localRopeTheta !== null;
    return preLnBlock({
      name: at,
      norm1: norm(`${at}.input_layernorm`),
      attn: {
        qkv: { q: linearSpec(`${at}.self_attn.q_proj`, c.qkvBias), k: linearSpec(`${at}.self_attn.k_proj`, c.qkvBias), v: linearSpec(`${at}.self_attn.v_proj`, c.qkvBias) },
        proj: linearSpec(`${at}.self_attn.o_proj`, false),
        heads: c.heads,
        kvHeads: c.kvHeads,
        headDim: c.headDim,
        scale: c.queryScale,
        rope: local ? { cos: 'cos_local', sin: 'sin_local' } : { cos: 'cos', sin: 'sin' },
        ...(c.qkNorm ? { qkNorm: { q: norm(`${at}.self_attn.q_norm`), k: norm(`${at}.self_attn.k_norm`) } } : {}),
        ...(c.attnSoftcap !== null ? { softcap: c.attnSoftcap } : {}),
      },
      // Gemma names its sandwich: input_layernorm | post_attention_layernorm around the attention,
      // pre_ | post_feedforward_layernorm around the MLP; Llama's post_attention_layernorm is the MLP's pre-norm.
      ...(c.gemma
        ? { postNorm1: norm(`${at}.post_attention_layernorm`), norm2: norm(`${at}.pre_feedforward_layernorm`), postNorm2: norm(`${at}.post_feedforward_layernorm`) }
        : { norm2: norm(`${at}.post_attention_layernorm`) }),
      mlp: { gate: linearSpec(`${at}.mlp.gate_proj`, false), up: linearSpec(`${at}.mlp.up_proj`, false), down: linearSpec(`${at}.mlp.down_proj`, false), activation: c.activation },
      mask: sliding ? 'mask_local' : 'mask',
    });
  });
  const head = c.head === 'score' ? tokenHeads('score', [{ w: 'score.weight' }]) : tokenHeads('lm_head', [{ w: c.tied ? 'embed_tokens.weight' : 'lm_head.weight' }]);
  return {
    differentiableFrom: 1,
    layers: [
      wordLookup('embed_tokens', 'embed_tokens.weight'),
      // HF multiplies inputs_embeds by √d in the model's dtype; the explained input is inputs_embeds.
      ...(c.gemma ? [scaleLayer('embed_scale', Math.fround(Math.sqrt(c.dim)))] : []),
      ...blocks,
      selectedRow('explained', 'select'),
      rmsNorm(norm('norm')),
      head,
      ...(c.finalSoftcap !== null ? [softcapLayer('softcap', c.finalSoftcap)] : []),
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
  const invLocal = c.localRopeTheta === null ? null : ropeInverseFrequencies({ ...c, ropeTheta: c.localRopeTheta, ropeScaling: { type: 'default' } });
  const anySliding = c.layerTypes.includes('sliding');
  const out = {
    ids: new Float32Array(n * T),
    mask: new Float32Array(n * T * T),
    maskLocal: anySliding ? new Float32Array(n * T * T) : null,
    select: new Float32Array(n * T),
    cos: new Float32Array(n * T * d),
    sin: new Float32Array(n * T * d),
    cosLocal: invLocal ? new Float32Array(n * T * d) : null,
    sinLocal: invLocal ? new Float32Array(n * T * d) : null,
  };
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
        const at = (s * T + t) * d;
        for (let i = 0; i < d / 2; i++) {
          // HF computes cat(freqs, freqs): the same angle for feature i and i + d/2.
          const angle = positions[t]! * inv[i]!;
          out.cos[at + i] = out.cos[at + i + d / 2] = Math.cos(angle);
          out.sin[at + i] = out.sin[at + i + d / 2] = Math.sin(angle);
          if (invLocal) {
            const local = positions[t]! * invLocal[i]!;
            out.cosLocal![at + i] = out.cosLocal![at + i + d / 2] = Math.cos(local);
            out.sinLocal![at + i] = out.sinLocal![at + i + d / 2] = Math.sin(local);
          }
        }
        for (let j = 0; j < T; j++) {
          const hidden = j > t || !attentionMask[b * T + j];
          out.mask[(s * T + t) * T + j] = hidden ? MASKED : 0;
          if (out.maskLocal) out.maskLocal[(s * T + t) * T + j] = hidden || t - j >= c.slidingWindow! ? MASKED : 0;
        }
      }
      out.select[s * T + row] = 1;
    }
  }
  return {
    ids: { data: out.ids, shape: [n, T] },
    mask: { data: out.mask, shape: [n, 1, T, T] },
    ...(out.maskLocal ? { mask_local: { data: out.maskLocal, shape: [n, 1, T, T] } } : {}),
    select: { data: out.select, shape: [n, 1, T] },
    cos: { data: out.cos, shape: [n, 1, T, d] },
    sin: { data: out.sin, shape: [n, 1, T, d] },
    ...(out.cosLocal ? { cos_local: { data: out.cosLocal, shape: [n, 1, T, d] }, sin_local: { data: out.sinLocal!, shape: [n, 1, T, d] } } : {}),
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
  const gemma = type === 'gemma2' || type === 'gemma3_text';
  const dim = num('hidden_size');
  const depth = num('num_hidden_layers');
  const heads = num('num_attention_heads');
  const kvHeads = num('num_key_value_heads', heads);
  const headDim = num('head_dim', dim / heads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new CheckpointError(`the head size ${headDim} (hidden_size / num_attention_heads, or head_dim) must be an even integer for rotary embeddings`, file);
  if (heads % kvHeads !== 0) throw new CheckpointError(`num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`, file);
  const act = json['hidden_activation'] ?? json['hidden_act'] ?? (gemma ? 'gelu_pytorch_tanh' : 'silu');
  const activation = act === 'silu' ? 'silu' : act === 'gelu_pytorch_tanh' || act === 'gelu_new' ? 'gelu-tanh' : null;
  if (!activation) throw new CheckpointError(`hidden_act '${String(act)}' is not supported for ${type} (silu and gelu_pytorch_tanh are)`, file);
  // transformers 5 may nest rope parameters per layer type (Gemma 3: full_attention / sliding_attention).
  const rawParams = (json['rope_parameters'] as Json | undefined) ?? (json['rope_scaling'] as Json | undefined) ?? null;
  const nested = rawParams && typeof rawParams['full_attention'] === 'object' ? rawParams : null;
  const params = nested ? (nested['full_attention'] as Json) : rawParams;
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
  const localTheta = nested && typeof (nested['sliding_attention'] as Json | undefined)?.['rope_theta'] === 'number' ? ((nested['sliding_attention'] as Json)['rope_theta'] as number) : typeof json['rope_local_base_freq'] === 'number' ? json['rope_local_base_freq'] : null;
  // Which layers slide: HF's layer_types where given (transformers ≥ 4.5x), else each family's rule.
  const window = json['sliding_window'];
  const hasWindow = typeof window === 'number';
  let layerTypes: ('full' | 'sliding')[];
  const listed = json['layer_types'];
  if (Array.isArray(listed)) {
    if (listed.length !== depth) throw new CheckpointError(`layer_types has ${listed.length} entries for ${depth} layers`, file);
    layerTypes = listed.map((t, i) => {
      if (t === 'sliding_attention') return 'sliding';
      if (t === 'full_attention') return 'full';
      throw new CheckpointError(`layer_types[${i}] '${String(t)}' is not supported (sliding_attention, full_attention are)`, file);
    });
  } else {
    const pattern = num('sliding_window_pattern', 6);
    layerTypes = Array.from({ length: depth }, (_, i) => {
      if (!hasWindow) return 'full';
      if (type === 'mistral') return 'sliding';
      if (type === 'gemma2') return i % 2 === 0 ? 'sliding' : 'full';
      if (type === 'gemma3_text') return (i + 1) % pattern !== 0 ? 'sliding' : 'full';
      // Qwen2: the layers from max_window_layers on, where use_sliding_window is set.
      return json['use_sliding_window'] === true && i >= num('max_window_layers', 28) ? 'sliding' : 'full';
    });
  }
  if (layerTypes.includes('sliding') && !hasWindow) throw new CheckpointError(`layer_types has sliding layers but 'sliding_window' is not a number`, file);
  const cap = (key: string): number | null => {
    const v = json[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !(v > 0)) throw new CheckpointError(`'${key}' must be a positive number or null, got ${JSON.stringify(v)}`, file);
    return v;
  };
  return {
    depth,
    dim,
    heads,
    kvHeads,
    headDim,
    eps: num('rms_norm_eps', 1e-6),
    qkvBias: type === 'qwen2' || json['attention_bias'] === true,
    // Gemma ties its head to the embeddings whatever the flag says (no lm_head in its checkpoints).
    tied: gemma || json['tie_word_embeddings'] === true,
    head: Array.isArray(json['architectures']) && json['architectures'].some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification')) ? 'score' : 'lm',
    ropeTheta,
    ropeScaling,
    slidingWindow: hasWindow ? (window as number) : null,
    layerTypes,
    localRopeTheta: type === 'gemma3_text' ? (localTheta ?? 10000) : null,
    activation,
    gemma,
    qkNorm: type === 'gemma3_text' || type === 'qwen3',
    queryScale: (gemma ? num('query_pre_attn_scalar', headDim) : headDim) ** -0.5,
    attnSoftcap: gemma ? cap('attn_logit_softcapping') : null,
    finalSoftcap: gemma ? cap('final_logit_softcapping') : null,
  };
}
