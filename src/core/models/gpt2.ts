/**
 * GPT-2-style decoders (Radford et al. 2019) as next-token classifiers: token + position
 * embeddings, pre-LN blocks with causal self-attention (x + Attn(LN₁(x)), then · + MLP(LN₂(·))), a
 * final LayerNorm, and the LM head tied to the token embeddings (logits = h·wteᵀ). The "classes" are
 * the vocabulary; the prediction explained is the next token after the text: the logits at each
 * sample's LAST real token. Attention methods read that token's row (conventions.explainedToken).
 *
 * Padding may sit on either side: positions count real tokens only (HF's convention for batched
 * generation), padded keys are masked, and the explained row is the last real token.
 *
 * The forward pass is first, top to bottom; checkpoint loading (HF GPT2Model / GPT2LMHeadModel
 * folders) follows. The relevance pass is relevance/gpt2.ts; the forward record keeps everything it
 * needs (see GPT2Record).
 */
import { layerNormEps } from './config-values.js';
import { tf, type Tensor, type Tensor1D, type Tensor2D } from '../tf.js';
import type { ModelSource } from '../provenance.js';
import { embeddingLookup, layerNorm, matmul, tidy, type LayerNorm, type Linear } from '../ops.js';
import { attention, CAUSAL_MASK_VALUE, mlp, decoderTokenMap, removalOcclusions, tokenAttributionMaps, tokenSampleOf, type Attention, type AttentionOptions, type AttentionRecord, type Mlp, type MlpRecord, type PreLnBlockRecord } from './layers.js';
import { explainedPositions, type ClassifierModel, type ForwardOptions, type ForwardResult, type MethodConventions, type ModelInput, type NativeForm, type OcclusionMode, type Occlusions, type TokenInput } from './types.js';
import type { Params } from '../engine/ops.js';
import { releaseTraced } from '../engine/trace.js';
import { predictOnOrt } from '../onnx/run.js';
import { gpt2Inputs, gpt2Network } from '../families/gpt2/gpt2.js';
import { HostParams } from '../families/host-params.js';
import type { Network } from '../nn/network.js';
import { CheckpointError, InputError } from '../errors.js';
import type { NormaliserName } from '../normalisers.js';
import { parseNormaliser } from './vit.js';
import { WeightReader, filledTensor, makeLayerNorm, transposeInto } from './weights.js';
import type { BpeTokenizer } from '../text/bpe.js';

export interface GPT2Config {
  readonly vocabSize: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  /** n_inner (default 4·n_embd). */
  readonly mlpDim: number;
  /** n_positions: the longest input. */
  readonly maxPositions: number;
  readonly lnEps: number;
  /** 'gelu-tanh' for HF's gelu_new (GPT-2's own), 'gelu' for the exact erf form. */
  readonly activation: 'gelu' | 'gelu-tanh';
  /** Scores scaled by 1/√d (scale_attn_weights, default true) … */
  readonly scaleAttnWeights: boolean;
  /** … and by 1/(layer + 1) (scale_attn_by_inverse_layer_idx, default false). */
  readonly scaleByInverseLayer: boolean;
  /** The attention normaliser (config.json `attention_normaliser`, a relprop extension; default softmax). */
  readonly attention?: NormaliserName;
  /** '<|endoftext|>' in GPT-2; used as the filler of removed tokens in occlusion. */
  readonly eosTokenId: number | null;
}

export interface GPT2Layer {
  /** HF's module name, e.g. 'transformer.h.0'. */
  readonly name: string;
  /** ln_1, before attention. */
  readonly norm1: LayerNorm;
  /** c_attn (q|k|v fused, Conv1D) and c_proj. */
  readonly attn: Attention;
  /** ln_2, before the MLP. */
  readonly norm2: LayerNorm;
  /** c_fc and c_proj, with GELU between. */
  readonly mlp: Mlp;
}

export interface GPT2Weights {
  /**
   * The tied LM head: wte transposed, [D, V]. The token embeddings are read from its columns, so the
   * largest matrix of the model is held once (GPT-2 small: 154 MB), in the layout the head's 2-D
   * product wants.
   */
  readonly head: Linear;
  /** wpe, [maxPositions, D]. */
  readonly positionEmbeddings: Tensor2D;
  readonly layers: readonly GPT2Layer[];
  /** ln_f. */
  readonly finalNorm: LayerNorm;
}

/** One block's activations: every Linear's and LayerNorm's input, for the relevance pass to come (GPT2Block is pre-LN). */
export type GPT2LayerRecord = PreLnBlockRecord;

export interface GPT2Record {
  /** Token embeddings (wte rows), [B·T, D]: what gradient methods differentiate. */
  readonly words: Tensor2D;
  /** Position embeddings (wpe rows), [B·T, D]. */
  readonly positions: Tensor2D;
  /** words + positions: the first block's input (the embedding Add). */
  readonly embeddings: Tensor2D;
  readonly layers: readonly GPT2LayerRecord[];
  /** The additive key mask for padding, [B, T]; the causal mask is added inside attention. */
  readonly mask: Tensor2D;
  /** [B, B·T] of 0/1: row b picks sample b's explained token out of the flattened batch. */
  readonly selector: Tensor2D;
  /** The last block's output at each explained token, [B, D]: ln_f's input. */
  readonly lastHidden: Tensor2D;
  /** ln_f's output there, [B, D]: the LM head's input. */
  readonly finalOut: Tensor2D;
  /** Per sample, the explained (last real) position. */
  readonly explained: readonly number[];
}

/** Where each sample's tokens are, read once from the attention mask (plain numbers, no tensors). */
interface Layout {
  /** Per sample, the last real position. */
  readonly explained: number[];
  /** Position ids, [B·T] row-major: real tokens count 0, 1, …; padding repeats its neighbour's. */
  readonly positionIds: Int32Array;
}

export class GPT2Model implements ClassifierModel {
  source?: ModelSource;
  readonly family = 'gpt2';
  readonly numClasses: number;
  readonly depth: number;
  readonly heads: number;
  /** No CLS: every position is a token of the text. */
  readonly prefixTokens = 0;
  /**
   * The prediction lives at the last token, so attention maps are read from its row. GradCAM weights
   * come from that row (as ViT's from the CLS row). Transformer attribution row-normalises Ā + I, as
   * the authors' BERT code does: every layer's matrix is then row-stochastic (lower-triangular under
   * the causal mask), so the explained row of the rollout is a distribution over the tokens, summing
   * to 1 whatever the rule set's relevance scale (one-hot or logit start).
   */
  readonly conventions: MethodConventions = { attributionRolloutRowNormalise: true, gradcam: 'cls-row', explainedToken: 'last' };
  /** The folder's byte-level BPE tokenizer, when it has one. */
  tokenizer: BpeTokenizer | null = null;

  constructor(
    readonly name: string,
    readonly config: GPT2Config,
    readonly weights: GPT2Weights,
    /** Per vocabulary id, the text of its token (e.g. ' Paris'). */
    readonly labels: readonly string[],
  ) {
    this.numClasses = config.vocabSize;
    this.depth = config.depth;
    this.heads = config.heads;
  }

  forward(input: ModelInput, options: ForwardOptions = {}): ForwardResult<GPT2Record> {
    const tokens = this.tokenInput(input);
    const layout = this.layout(tokens);
    return tidy(() => {
      const { words, positions, embeddings, mask, B, T, explained } = this.embed(tokens, layout, options.inputValue as Tensor2D | undefined);

      // Pre-LN blocks, causal attention.
      let x = embeddings;
      const layers = this.weights.layers.map((layer, l) => {
        const r = this.block(layer, x, B, T, {
          mask,
          probes: options.probes?.[l],
          batched: options.batchedAttention,
          edit: options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined,
        });
        x = r.output;
        return r;
      });

      // The next-token prediction: the explained token's row, ln_f, the tied head.
      const selector = selectorMatrix(explained, T);
      const lastHidden = matmul(selector, x);
      const finalOut = layerNorm(this.weights.finalNorm, lastHidden);
      const logits = lmHead(this.weights.head, finalOut);
      const record: GPT2Record = { words, positions, embeddings, layers, mask, selector, lastHidden, finalOut, explained };
      return { logits, attention: layers.map((r) => r.attn), record, batch: B };
    });
  }

  /** One pre-LN block: x + Attn(LN₁(x)), then · + MLP(LN₂(·)). */
  private block(layer: GPT2Layer, x: Tensor2D, B: number, T: number, attnOptions: AttentionOptions): GPT2LayerRecord {
    const norm1Out = layerNorm(layer.norm1, x);
    const attn = attention(layer.attn, norm1Out, B, T, { ...attnOptions, causal: true });
    const mid = tf.add(x, attn.output) as Tensor2D;
    const norm2Out = layerNorm(layer.norm2, mid);
    const m = mlp(layer.mlp, norm2Out);
    return { input: x, norm1Out, attn, mid, norm2Out, mlp: m, output: tf.add(mid, m.output) as Tensor2D };
  }

  /** The last block's output [B·T, D], freeing each block's activations as it goes. */
  private hidden(tokens: TokenInput, options: Pick<ForwardOptions, 'attentionEdit'>) {
    const { embeddings, mask, B, T, explained } = this.embed(tokens, this.layout(tokens));
    let x = embeddings;
    for (const [l, layer] of this.weights.layers.entries()) {
      const prev = x;
      const edit = options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined;
      x = tf.tidy(() => this.block(layer, prev, B, T, { mask, edit }).output);
      prev.dispose();
    }
    return { x, T, explained };
  }

  predict(input: ModelInput, options: Pick<ForwardOptions, 'attentionEdit'> = {}): Tensor2D {
    const tokens = this.tokenInput(input);
    const native = options.attentionEdit ? null : predictOnOrt(this, tokens);
    if (native) return native;
    return tf.tidy(() => {
      const { x, T, explained } = this.hidden(tokens, options);
      return lmHead(this.weights.head, layerNorm(this.weights.finalNorm, matmul(selectorMatrix(explained, T), x)));
    });
  }

  /** Next-token logits after every position, [B·T, V] (a language model's full output). */
  positionLogits(input: ModelInput): Tensor2D {
    const tokens = this.tokenInput(input);
    return tf.tidy(() => lmHead(this.weights.head, layerNorm(this.weights.finalNorm, this.hidden(tokens, {}).x)));
  }

  /**
   * Token embeddings + position embeddings, and the padding mask. With integrated gradients the
   * token embeddings arrive as n interpolated copies of one sample.
   */
  private embed(tokens: TokenInput, layout: Layout, wordsIn?: Tensor2D) {
    const T = tokens.ids.shape[1];
    const B0 = tokens.ids.shape[0];
    const words = wordsIn ?? this.wordEmbeddings(tokens);
    const B = words.shape[0] / T;
    if (!Number.isInteger(B / B0)) throw new InputError(`${words.shape[0]} embedding rows do not fit ${B0} samples of ${T} tokens`);
    const copies = B / B0;
    const repeat = <X extends Tensor>(t: X) => (copies === 1 ? t : (tf.tile(t, [copies, 1]) as X));
    const positionIds = repeat(tf.tensor2d(layout.positionIds, [B0, T], 'int32'));
    const positions = embeddingLookup(this.weights.positionEmbeddings, positionIds);
    const embeddings = tf.add(words, positions) as Tensor2D;
    const mask = repeat(tf.mul(tf.sub(1, tf.cast(tokens.attentionMask, 'float32')), CAUSAL_MASK_VALUE) as Tensor2D);
    const explained = Array.from({ length: copies }, () => layout.explained).flat();
    return { words, positions, embeddings, mask, B, T, explained };
  }

  /** wte rows for the ids, read as columns of the stored wteᵀ (one gather, one linear-cost transpose). */
  private wordEmbeddings(tokens: TokenInput): Tensor2D {
    return tf.tidy(() => tf.transpose(tf.gather(this.weights.head.wT, tf.reshape(tokens.ids, [-1]), 1)) as Tensor2D);
  }

  /** The explained position and the position ids of every sample; rejects empty samples and foreign ids. */
  layout(tokens: TokenInput): Layout {
    const [B, T] = tokens.ids.shape;
    const mask = tokens.attentionMask.dataSync();
    const ids = tokens.ids.dataSync();
    const explained: number[] = [];
    const positionIds = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      let count = 0;
      let last = -1;
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (mask[i]) {
          last = t;
          count++;
          const id = ids[i]!;
          if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
            throw new InputError(`token id ${id} is not in model '${this.name}''s vocabulary (0..${this.config.vocabSize - 1})`);
          }
        }
        positionIds[i] = Math.max(0, count - 1);
      }
      if (last < 0) throw new InputError(`input ${b} has no tokens (its attention mask is all 0)`);
      explained.push(last);
    }
    return { explained: tokens.explainAt ? explainedPositions(tokens, mask) : explained, positionIds };
  }

  private tokenInput(input: ModelInput): TokenInput {
    if (input.kind !== 'tokens') throw new InputError(`model '${this.name}' takes text, not ${input.kind}`);
    const T = input.ids.shape[1];
    if (T > this.config.maxPositions) throw new InputError(`${T} tokens exceed model '${this.name}''s maximum of ${this.config.maxPositions}`);
    return input;
  }

  /**
   * Leave-one-out by removal: each real token in turn is cut out and the rest moves up (positions
   * stay contiguous), padding filling the end. GPT-2 has no [MASK] or [UNK] to put in its place.
   * The last token counts too: it is a word of the text, not a CLS.
   */
  occlusions(input: ModelInput, b: number, mode: OcclusionMode): Occlusions {
    if (mode !== 'auto' && mode !== 'remove') {
      throw new InputError(`occlusion '${mode}' does not apply to '${this.name}': GPT-2 has no [MASK] or [UNK] token; use 'remove'`);
    }
    return removalOcclusions(this.tokenInput(input), b, this.config.eosTokenId ?? 0);
  }

  hiddenStates(fwd: ForwardResult): readonly Tensor2D[] {
    return (fwd as ForwardResult<GPT2Record>).record.layers.map((l) => l.output);
  }

  tokensOf(input: ModelInput): number {
    return this.tokenInput(input).ids.shape[1];
  }

  /** Every position, the explained (last) one included: it is a word of the text, unlike a CLS. */
  tokenRowToMap(row: ArrayLike<number>) {
    return decoderTokenMap(row);
  }

  gradientInput(input: ModelInput): Tensor {
    return this.wordEmbeddings(this.tokenInput(input));
  }

  /** Zero token embeddings (Captum's default baseline); positions stay as they are. */
  gradientBaseline(input: ModelInput): Tensor {
    return tf.zeros([this.tokensOf(input), this.config.dim]);
  }

  /** Over the hidden axis: Σ|·| for saliency, Σ for signed attributions; one value per token. */
  attributionMaps(attribution: Tensor, batch: number, mode: 'abs' | 'abs-sum' | 'signed') {
    return tokenAttributionMaps(attribution, batch, mode);
  }

  sampleOf(input: ModelInput, b: number): ModelInput {
    return tokenSampleOf(this.tokenInput(input), b);
  }

  private native?: NativeForm;

  /** The one definition (families/gpt2) with this model's weights, for the native passes. */
  nativeForm(): NativeForm {
    if (!this.native) {
      const { network, params } = gpt2FromModel(this);
      const feeds = (tokens: TokenInput, copies = 1) => {
        const [B, T] = tokens.ids.shape;
        return gpt2Inputs(tokens.ids.dataSync(), tokens.attentionMask.dataSync(), [B, T], this.layout(tokens), CAUSAL_MASK_VALUE, copies);
      };
      this.native = {
        network,
        params,
        predictFeeds: (input) => {
          const f = feeds(this.tokenInput(input));
          return { ...f, x: f['ids']! };
        },
        // One sample's word embeddings [n·T, D] at n points (integrated gradients' path, SmoothGrad's copies).
        gradientFeeds: (input, x) => {
          if (input.kind !== 'tokens' || input.ids.shape[0] !== 1) return null;
          const T = input.ids.shape[1];
          const n = x.size / (T * this.config.dim);
          return { feeds: { ...feeds(this.tokenInput(input), n), x: { data: x.dataSync() as Float32Array, shape: [n, T, this.config.dim] } }, copies: n };
        },
      };
    }
    return this.native;
  }

  dispose(): void {
    this.native = undefined;
    releaseTraced(this);
    const W = this.weights;
    const linears = W.layers.flatMap((l) => [l.attn.qkv, l.attn.proj, l.mlp.fc1, l.mlp.fc2]);
    const norms = [W.finalNorm, ...W.layers.flatMap((l) => [l.norm1, l.norm2])];
    tf.dispose([
      W.head.wT,
      W.positionEmbeddings,
      ...linears.flatMap((l) => (l.b ? [l.wT, l.b] : [l.wT])),
      ...norms.flatMap((n) => [n.gamma, n.beta]),
    ]);
  }
}

/** [B, B·T] with a 1 at (b, b·T + explained[b]): a 2-D product picks the rows (gather's gradient needs a kernel wasm lacks). */
function selectorMatrix(explained: readonly number[], T: number): Tensor2D {
  const B = explained.length;
  const data = new Float32Array(B * B * T);
  explained.forEach((t, b) => {
    data[b * B * T + b * T + t] = 1;
  });
  return tf.tensor2d(data, [B, B * T]);
}

/**
 * x·wteᵀ (head.wT is wteᵀ, [D, V]). The backward, dy·wte, is computed as (wteᵀ·dyᵀ)ᵀ: two small
 * transposes instead of the generic Linear's transpose of the whole [D, V] table on every gradient
 * (for GPT-2's 768 × 50257 on wasm: 40 ms instead of 1.3 s).
 */
function lmHead(head: Linear, x: Tensor2D): Tensor2D {
  const f = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as Tensor2D;
    return {
      value: tf.matMul(input, head.wT),
      gradFunc: (dy: Tensor) => [tf.tidy(() => tf.transpose(tf.matMul(head.wT, tf.transpose(dy as Tensor2D))))],
    };
  }) as (x: Tensor2D) => Tensor2D;
  return f(x);
}

// ---------------------------------------------------------------------------------------------------
// Token labels: the text of each vocabulary entry.

/** Per id, its token's text (' Paris'); a token that is only part of a character shows its bytes ('<0xF0><0x9F>'). */
export function tokenLabels(tokenizer: BpeTokenizer | null, vocabSize: number): string[] {
  const strict = new TextDecoder('utf-8', { fatal: true });
  return Array.from({ length: vocabSize }, (_, id) => {
    if (!tokenizer || id >= tokenizer.vocabSize) return `token ${id}`;
    let bytes: Uint8Array;
    try {
      bytes = tokenizer.tokenBytes(id);
    } catch {
      return `token ${id}`;
    }
    try {
      return strict.decode(bytes);
    } catch {
      return Array.from(bytes, (b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Checkpoints: HuggingFace GPT2Model / GPT2LMHeadModel folders.

type Json = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function need(value: number | undefined, key: string, file: string): number {
  if (value === undefined || !Number.isInteger(value) || value <= 0) throw new CheckpointError(`'${key}' must be a positive integer`, file);
  return value;
}

/** HF's names for GELU's tanh approximation (the same function, written three ways in transformers). */
const TANH_GELU = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

export function parseGPT2Config(json: Json, file: string): GPT2Config {
  const act = String(json['activation_function'] ?? 'gelu_new');
  if (!TANH_GELU.includes(act) && act !== 'gelu') {
    throw new CheckpointError(`activation_function '${act}' is not supported (${[...TANH_GELU, 'gelu'].join(', ')})`, file);
  }
  if (json['add_cross_attention'] === true) throw new CheckpointError('cross-attention (GPT-2 as a decoder of an encoder-decoder) is not supported', file);
  const dim = need(num(json['n_embd']), 'n_embd', file);
  const heads = need(num(json['n_head']), 'n_head', file);
  const positionsKey = json['n_positions'] !== undefined ? 'n_positions' : 'n_ctx';
  const config: GPT2Config = {
    vocabSize: need(num(json['vocab_size']), 'vocab_size', file),
    dim,
    depth: need(num(json['n_layer']), 'n_layer', file),
    heads,
    // n_inner is null in most configs, meaning 4·n_embd.
    mlpDim: need(num(json['n_inner']) ?? 4 * dim, 'n_inner', file),
    maxPositions: need(num(json[positionsKey]), positionsKey, file),
    lnEps: layerNormEps(json, 'layer_norm_epsilon', 1e-5, file),
    activation: act === 'gelu' ? 'gelu' : 'gelu-tanh',
    scaleAttnWeights: json['scale_attn_weights'] !== false,
    scaleByInverseLayer: json['scale_attn_by_inverse_layer_idx'] === true,
    attention: parseNormaliser(json, file),
    eosTokenId: num(json['eos_token_id']) ?? null,
  };
  if (dim % heads !== 0) throw new CheckpointError(`n_embd ${dim} is not divisible by ${heads} heads`, file);
  return config;
}

/**
 * Reads the weights. GPT-2 stores its projections as Conv1D: weight [in, out], already the x·W layout
 * of our Linear's wT (no transpose, unlike nn.Linear), c_attn's columns being q | k | v with heads
 * contiguous — our fused layout. Names may carry GPT2LMHeadModel's `transformer.` prefix; an
 * lm_head.weight must equal wte (tied embeddings).
 */
export function loadGPT2Weights(cfg: GPT2Config, reader: WeightReader, configFile: string): GPT2Weights {
  const p = reader.has('transformer.wte.weight') ? 'transformer.' : '';
  const D = cfg.dim;
  const V = cfg.vocabSize;
  const d = D / cfg.heads;
  // Every size the weights also tell must be the config's.
  reader.agree('vocab_size', V, `${p}wte.weight`, 0, 'token embeddings');
  reader.agree('n_embd', D, `${p}wte.weight`, 1, 'channels of width');
  reader.agree('n_positions', cfg.maxPositions, `${p}wpe.weight`, 0, 'position embeddings');
  reader.agree('n_inner', cfg.mlpDim, `${p}h.0.mlp.c_fc.weight`, 1, 'MLP units');
  reader.agreeDepth('n_layer', cfg.depth, new RegExp(`^${p.replace('.', '\\.')}h\\.(\\d+)\\.`), `${p}h.N`);
  const wte = reader.view(`${p}wte.weight`, [V, D], 0);
  if (reader.has('lm_head.weight')) {
    const head = reader.view('lm_head.weight', [V, D], 1);
    let worst = 0;
    for (let i = 0; i < head.length; i++) worst = Math.max(worst, Math.abs(head[i]! - wte[i]!));
    if (worst > 0) {
      throw new CheckpointError(`'lm_head.weight' differs from '${p}wte.weight' (by up to ${worst.toExponential(2)}): untied output embeddings are not supported`, configFile);
    }
  }
  // Made now, while wte is in the reader's buffer.
  const head: Linear = { name: 'lm_head', wT: filledTensor([D, V], (out) => transposeInto(wte, V, D, out, V, 0)) as Tensor2D, b: null };
  const conv = (name: string, ckpt: string, inDim: number, outDim: number): Linear => ({
    name,
    wT: reader.tensor(`${ckpt}.weight`, [inDim, outDim]) as Tensor2D,
    b: tf.tensor1d(reader.read(`${ckpt}.bias`, [outDim])) as Tensor1D,
  });
  const ln = (name: string, ckpt: string) => makeLayerNorm(name, reader.read(`${ckpt}.weight`, [D]), reader.read(`${ckpt}.bias`, [D]), cfg.lnEps);
  const layers: GPT2Layer[] = Array.from({ length: cfg.depth }, (_, l) => {
    const name = `transformer.h.${l}`;
    const h = `${p}h.${l}`;
    // Older checkpoints store the causal mask and its fill value as buffers; we build our own mask.
    reader.skip(`${h}.attn.bias`);
    reader.skip(`${h}.attn.masked_bias`);
    const scale = (cfg.scaleAttnWeights ? 1 / Math.sqrt(d) : 1) / (cfg.scaleByInverseLayer ? l + 1 : 1);
    return {
      name,
      norm1: ln(`${name}.ln_1`, `${h}.ln_1`),
      attn: {
        name: `${name}.attn`,
        qkv: conv(`${name}.attn.c_attn`, `${h}.attn.c_attn`, D, 3 * D),
        proj: conv(`${name}.attn.c_proj`, `${h}.attn.c_proj`, D, D),
        heads: cfg.heads,
        headDim: d,
        scale,
        normaliser: cfg.attention ?? 'softmax',
      },
      norm2: ln(`${name}.ln_2`, `${h}.ln_2`),
      mlp: {
        name: `${name}.mlp`,
        fc1: conv(`${name}.mlp.c_fc`, `${h}.mlp.c_fc`, D, cfg.mlpDim),
        fc2: conv(`${name}.mlp.c_proj`, `${h}.mlp.c_proj`, cfg.mlpDim, D),
        activation: cfg.activation,
      },
    };
  });
  return {
    head,
    positionEmbeddings: reader.tensor(`${p}wpe.weight`, [cfg.maxPositions, D]) as Tensor2D,
    layers,
    finalNorm: ln('transformer.ln_f', `${p}ln_f`),
  };
}

/** The family table with this model's weights as host tensors (linear weights in [out, in]). */
export function gpt2FromModel(model: GPT2Model): { network: Network; params: Params } {
  const { config: cfg, weights: W } = model;
  const params = new HostParams();
  // wte is the head's weight transposed: [V, D], the lookup table and the tied head at once.
  params.linear('wte', W.head);
  params.tensor('wpe.weight', W.positionEmbeddings);
  W.layers.forEach((l, i) => {
    const at = `h.${i}`;
    params.layerNorm(`${at}.ln_1`, l.norm1);
    params.linear(`${at}.attn.c_attn`, l.attn.qkv);
    params.linear(`${at}.attn.c_proj`, l.attn.proj);
    params.layerNorm(`${at}.ln_2`, l.norm2);
    params.linear(`${at}.mlp.c_fc`, l.mlp.fc1);
    params.linear(`${at}.mlp.c_proj`, l.mlp.fc2);
  });
  params.layerNorm('ln_f', W.finalNorm);
  const network = gpt2Network({
    depth: cfg.depth,
    dim: cfg.dim,
    heads: cfg.heads,
    lnEps: cfg.lnEps,
    activation: cfg.activation,
    normaliser: cfg.attention ?? 'softmax',
    scales: W.layers.map((l) => l.attn.scale),
  });
  return { network, params };
}
