/**
 * Llama-style decoders (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) as explainable
 * next-token classifiers. The model is its family table (families/llama) and its weights: every pass
 * is a generic loop over that table, run by the eager interpreter (tfjs) or traced into one ONNX
 * Runtime graph; this file only turns tokens into pass inputs and results into what methods read.
 * No hand-written forward or backward: ∂/∂x and ∂/∂A come from the layers' own backward forms.
 *
 * The explained prediction is the next token after each sample's last real token, as for GPT-2.
 * The relevance methods (LRP, transformer attribution, AttnLRP, CP-LRP) need this family's relevance
 * rules, which do not exist yet: they refuse it (relevance/passes.ts) rather than guess.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import { tidy } from '../ops.js';
import { CheckpointError, InputError, UsageError } from '../errors.js';
import type { ModelSource } from '../provenance.js';
import type { HostTensor, Params } from '../engine/ops.js';
import { releaseEager, runEager, withEager } from '../engine/eager.js';
import { releaseTraced } from '../engine/trace.js';
import { predictOnOrt } from '../onnx/run.js';
import { backward as backwardPass, predictPass, type Recorded } from '../passes/passes.js';
import type { Network } from '../nn/network.js';
import { llamaInputs, llamaNetwork, llamaShapeFromConfig, type LlamaShape } from '../families/llama/llama.js';
import { decoderTokenMap, removalOcclusions, tokenAttributionMaps, tokenSampleOf } from './layers.js';
import type { WeightReader } from './weights.js';
import type { HfTokenizer } from '../text/hf-tokenizer.js';
import { explainedPositions, type ClassifierModel, type ForwardOptions, type ForwardResult, type MethodConventions, type ModelInput, type NativeForm, type OcclusionMode, type Occlusions, type TokenInput } from './types.js';

/** What backward reads: each layer's record and input (inputs[i] for layer i; the logits last), the pass inputs, and each block's output. */
export interface LlamaRecord {
  readonly pass: Recorded<Tensor>;
  readonly inputs: readonly Tensor[];
  readonly feeds: Record<string, Tensor>;
  readonly hidden: readonly Tensor2D[];
}

const EAGER_WEIGHT_LIMIT = 2 * 2 ** 30;

/** The decoder blocks among the table's layers (layers.N). */
export const isBlock = (l: { readonly name: string }): boolean => /^layers\.\d+$/.test(l.name);

export class LlamaModel implements ClassifierModel {
  source?: ModelSource;
  inferred?: readonly string[];
  readonly family = 'llama';
  readonly numClasses: number;
  readonly depth: number;
  readonly heads: number;
  readonly prefixTokens = 0;
  /** As GPT-2's: the prediction is read from the last real token's row; Ā + I row-normalised. */
  readonly conventions: MethodConventions = { attributionRolloutRowNormalise: true, gradcam: 'cls-row', explainedToken: 'last' };
  readonly network: Network;
  /** What text inputs need (text-inputs.ts): the vocabulary and the longest input. */
  readonly config: { readonly vocabSize: number; readonly maxPositions: number };
  /** The folder's tokenizer.json (BOS added as its template says); token ids (--ids) without one. */
  tokenizer: HfTokenizer | null = null;
  private native?: NativeForm;

  constructor(
    readonly name: string,
    /** config.json's model_type: llama, mistral or qwen2. */
    readonly modelType: string,
    readonly shape: LlamaShape,
    /** Weights under HF's names without the `model.` prefix; linear weights [out, in]. */
    readonly params: Params,
    readonly labels: readonly string[],
    /** Filler of removed tokens in occlusion (eos_token_id). */
    readonly eosTokenId: number | null,
    maxPositions: number,
  ) {
    this.network = llamaNetwork(shape);
    this.numClasses = params.get(shape.head === 'score' ? 'score.weight' : 'embed_tokens.weight')!.shape[0]!;
    this.config = { vocabSize: params.get('embed_tokens.weight')!.shape[0]!, maxPositions };
    this.depth = shape.depth;
    this.heads = shape.heads;
  }

  private tokenInput(input: ModelInput): TokenInput {
    if (input.kind !== 'tokens') throw new InputError(`model '${this.name}' takes text, not ${input.kind}`);
    return input;
  }

  /** The pass inputs, each sample repeated `copies` times; rejects empty samples and foreign ids. */
  private hostFeeds(tokens: TokenInput, copies = 1): Record<string, HostTensor> {
    const [B, T] = tokens.ids.shape;
    const ids = tokens.ids.dataSync();
    const mask = tokens.attentionMask.dataSync();
    for (let b = 0; b < B; b++) {
      let real = 0;
      for (let t = 0; t < T; t++) {
        if (!mask[b * T + t]) continue;
        real++;
        const id = ids[b * T + t]!;
        const V = this.config.vocabSize;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new InputError(`token id ${id} is not in model '${this.name}''s vocabulary (0..${V - 1})`);
      }
      if (real === 0) throw new InputError(`input ${b} has no tokens (its attention mask is all 0)`);
    }
    return llamaInputs(this.shape, ids, mask, [B, T], copies, tokens.explainAt ? explainedPositions(tokens, mask) : undefined);
  }

  /**
   * The eager passes (every method but predict) hold the weights as tfjs tensors, in a WebAssembly
   * heap of at most 4 GiB: a model much over 2 GiB of float32 weights would abort it, so it is
   * refused first, with the reason.
   */
  private checkEager(): void {
    let bytes = 0;
    for (const p of this.params.values()) bytes += p.data.byteLength;
    if (bytes > EAGER_WEIGHT_LIMIT) {
      throw new UsageError(
        `model '${this.name}' holds ${(bytes / 2 ** 30).toFixed(1)} GiB of float32 weights; its explanations run on tfjs, whose WebAssembly heap holds at most 4 GiB, ` +
          `so only its next-token prediction runs (on ONNX Runtime). Models up to ${EAGER_WEIGHT_LIMIT / 2 ** 30} GiB of weights (about 500M parameters) explain`,
      );
    }
  }

  forward(input: ModelInput, options: ForwardOptions = {}): ForwardResult<LlamaRecord> {
    this.checkEager();
    if (options.attentionEdit || options.probes) throw new UsageError(`model '${this.name}' (${this.modelType}) takes no attention edits or probes: its ∂/∂A comes from backward()`);
    const tokens = this.tokenInput(input);
    const [B0, T] = tokens.ids.shape;
    const D = this.shape.dim;
    const copies = options.inputValue ? options.inputValue.shape[0]! / (B0 * T) : 1;
    if (!Number.isInteger(copies) || copies < 1) throw new InputError(`${options.inputValue!.shape[0]} embedding rows do not fit ${B0} samples of ${T} tokens`);
    const host = this.hostFeeds(tokens, copies);
    return tidy(() => {
      const feeds = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, tf.tensor(v.data, [...v.shape], 'float32')]));
      return withEager(this.params, feeds, (o) => {
        const layers = this.network.layers;
        const words = options.inputValue ? tf.reshape(options.inputValue, [B0 * copies, T, D]) : layers[0]!.forward(o, feeds['ids']!).y;
        const recs: unknown[] = [];
        const hidden: Tensor2D[] = [];
        const inputs: Tensor[] = [];
        let h = words;
        for (let i = 1; i < layers.length; i++) {
          inputs[i] = h;
          const f = layers[i]!.forward(o, h);
          recs[i] = f.rec;
          h = f.y;
          if (isBlock(layers[i]!)) hidden.push(tf.reshape(h, [-1, D]) as Tensor2D);
        }
        const probs = layers.flatMap((l, i) => (isBlock(l) ? [{ probs: (recs[i] as { attn: { probs: Tensor4D } }).attn.probs }] : []));
        const record: LlamaRecord = { pass: { y: h, recs }, inputs, feeds, hidden };
        return { logits: h as Tensor2D, attention: probs, record, batch: B0 * copies };
      });
    });
  }

  /** ∂(Σ seed ⊙ logits)/∂(word embeddings) [B·T, D] and, if asked, ∂/∂A of every block [B, H, T, T]. */
  backward(fwd: ForwardResult, seed: Tensor2D, options: { attention: boolean }): { input: Tensor; attention: Tensor4D[] } {
    const r = (fwd as ForwardResult<LlamaRecord>).record;
    return tidy(() =>
      withEager(this.params, r.feeds, (o) => {
        const dProbs: Tensor[] = [];
        const dx = backwardPass(o, this.network, r.pass, seed, 1, options.attention ? { sink: (_layer, d) => dProbs.unshift(d) } : undefined);
        return { input: tf.reshape(dx, [-1, this.shape.dim]), attention: dProbs as Tensor4D[] };
      }),
    );
  }

  predict(input: ModelInput, options: Pick<ForwardOptions, 'attentionEdit'> = {}): Tensor2D {
    if (options.attentionEdit) throw new UsageError(`model '${this.name}' (${this.modelType}) takes no attention edits`);
    const tokens = this.tokenInput(input);
    const native = predictOnOrt(this, tokens);
    if (native) return native;
    const feeds = this.hostFeeds(tokens);
    const y = runEager(this.params, { ...feeds, x: feeds['ids']! }, predictPass(this.network))['logits']!;
    return tf.tensor2d(y.data, y.shape as [number, number]);
  }

  nativeForm(): NativeForm {
    this.native ??= {
      network: this.network,
      params: this.params,
      predictFeeds: (input) => {
        const f = this.hostFeeds(this.tokenInput(input));
        return { ...f, x: f['ids']! };
      },
      gradientFeeds: (input, x) => {
        if (input.kind !== 'tokens' || input.ids.shape[0] !== 1) return null;
        const T = input.ids.shape[1];
        const n = x.size / (T * this.shape.dim);
        return { feeds: { ...this.hostFeeds(input, n), x: { data: x.dataSync() as Float32Array, shape: [n, T, this.shape.dim] } }, copies: n };
      },
    };
    return this.native;
  }

  /** Leave-one-out by removal, as for GPT-2: these decoders have no [MASK] to put in a token's place. */
  occlusions(input: ModelInput, b: number, mode: OcclusionMode): Occlusions {
    if (mode !== 'auto' && mode !== 'remove') throw new InputError(`occlusion '${mode}' does not apply to '${this.name}': a ${this.modelType} decoder has no [MASK] or [UNK] token; use 'remove'`);
    return removalOcclusions(this.tokenInput(input), b, this.eosTokenId ?? 0);
  }

  hiddenStates(fwd: ForwardResult): readonly Tensor2D[] {
    return (fwd as ForwardResult<LlamaRecord>).record.hidden;
  }

  tokensOf(input: ModelInput): number {
    return this.tokenInput(input).ids.shape[1];
  }

  tokenRowToMap(row: ArrayLike<number>) {
    return decoderTokenMap(row);
  }

  /** The token embeddings [B·T, D], read from the host table (a big vocabulary's table never enters tfjs). */
  gradientInput(input: ModelInput): Tensor {
    const ids = this.tokenInput(input).ids.dataSync();
    const table = this.params.get('embed_tokens.weight')!;
    const D = this.shape.dim;
    const out = new Float32Array(ids.length * D);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= table.shape[0]!) throw new InputError(`token id ${id} is not in model '${this.name}''s vocabulary (0..${table.shape[0]! - 1})`);
      out.set(table.data.subarray(id * D, (id + 1) * D), i * D);
    });
    return tf.tensor2d(out, [ids.length, D]);
  }

  /** Zero token embeddings (Captum's default baseline). */
  gradientBaseline(input: ModelInput): Tensor {
    return tf.zeros([this.tokensOf(input), this.shape.dim]);
  }

  attributionMaps(attribution: Tensor, batch: number, mode: 'abs' | 'abs-sum' | 'signed') {
    return tokenAttributionMaps(attribution, batch, mode);
  }

  sampleOf(input: ModelInput, b: number): ModelInput {
    return tokenSampleOf(this.tokenInput(input), b);
  }

  dispose(): void {
    this.native = undefined;
    releaseTraced(this);
    releaseEager(this.params);
  }
}

export const LLAMA_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'gemma2', 'gemma3_text'] as const;

/**
 * The weights of a Llama-family checkpoint under the table's names, each checked against the shape
 * the config implies (CheckpointError naming the tensor, both shapes and the file). BF16 and F16 are
 * widened to float32 as they are read.
 */
export function loadLlamaWeights(shape: LlamaShape, reader: WeightReader, vocabSize: number, configFile: string): Map<string, HostTensor> {
  const { dim: D, heads: H, kvHeads: KV, headDim: hd } = shape;
  const prefix = reader.has('model.embed_tokens.weight') ? 'model.' : '';
  const params = new Map<string, HostTensor>();
  const take = (name: string, dims: number[]) => params.set(name, { data: reader.read(prefix + name, dims), shape: dims });
  take('embed_tokens.weight', [vocabSize, D]);
  reader.agreeDepth('num_hidden_layers', shape.depth, new RegExp(`^${prefix.replace('.', '\\.')}layers\\.(\\d+)\\.`), `${prefix}layers.0.self_attn.q_proj.weight`);
  const inter = reader.shapeOf(`${prefix}layers.0.mlp.gate_proj.weight`)?.[0];
  if (inter === undefined) throw new CheckpointError(`no tensor '${prefix}layers.0.mlp.gate_proj.weight' in ${reader.filesLabel()}`, configFile);
  reader.agree('intermediate_size', inter, `${prefix}layers.0.mlp.gate_proj.weight`, 0, 'the MLP width');
  for (let l = 0; l < shape.depth; l++) {
    const at = `layers.${l}`;
    take(`${at}.input_layernorm.weight`, [D]);
    if (shape.gemma) for (const n of ['pre_feedforward_layernorm', 'post_feedforward_layernorm']) take(`${at}.${n}.weight`, [D]);
    if (shape.qkNorm) for (const n of ['q_norm', 'k_norm']) take(`${at}.self_attn.${n}.weight`, [hd]);
    for (const [p, rows] of [['q', H * hd], ['k', KV * hd], ['v', KV * hd]] as const) {
      take(`${at}.self_attn.${p}_proj.weight`, [rows, D]);
      if (shape.qkvBias) take(`${at}.self_attn.${p}_proj.bias`, [rows]);
    }
    take(`${at}.self_attn.o_proj.weight`, [D, H * hd]);
    take(`${at}.post_attention_layernorm.weight`, [D]);
    take(`${at}.mlp.gate_proj.weight`, [inter, D]);
    take(`${at}.mlp.up_proj.weight`, [inter, D]);
    take(`${at}.mlp.down_proj.weight`, [D, inter]);
  }
  take('norm.weight', [D]);
  if (shape.head === 'score') {
    const classes = reader.shapeOf('score.weight')?.[0];
    if (classes === undefined) throw new CheckpointError(`the config names a …ForSequenceClassification model but ${reader.filesLabel()} has no 'score.weight'`, configFile);
    params.set('score.weight', { data: reader.read('score.weight', [classes, D]), shape: [classes, D] });
    reader.skip('lm_head.weight');
  } else if (!shape.tied) {
    if (!reader.has('lm_head.weight')) throw new CheckpointError(`tie_word_embeddings is false but ${reader.filesLabel()} has no 'lm_head.weight'`, configFile);
    params.set('lm_head.weight', { data: reader.read('lm_head.weight', [vocabSize, D]), shape: [vocabSize, D] });
  } else reader.skip('lm_head.weight');
  // HF's rotary buffers, stored by some exporters: the table computes its own.
  for (let l = 0; l < shape.depth; l++) reader.skip(`${prefix}layers.${l}.self_attn.rotary_emb.inv_freq`);
  return params;
}

/**
 * The model from config.json and its weights (the loader's dispatch, models/load.ts). `labels` names
 * the classes: the vocabulary's tokens for the LM head, id2label for a classification head.
 */
export function buildLlama(name: string, config: Record<string, unknown>, configFile: string, reader: WeightReader, labels: (classes: number, head: 'lm' | 'score') => string[]): LlamaModel {
  const shape = llamaShapeFromConfig(config, configFile);
  const vocab = typeof config['vocab_size'] === 'number' ? config['vocab_size'] : reader.shapeOf('model.embed_tokens.weight')?.[0];
  if (typeof vocab !== 'number') throw new CheckpointError(`'vocab_size' is missing and no embed_tokens weight gives it`, configFile);
  const params = loadLlamaWeights(shape, reader, vocab, configFile);
  const eos = config['eos_token_id'];
  const maxPositions = typeof config['max_position_embeddings'] === 'number' ? config['max_position_embeddings'] : 2048;
  const classes = params.get(shape.head === 'score' ? 'score.weight' : 'embed_tokens.weight')!.shape[0]!;
  return new LlamaModel(name, String(config['model_type']), shape, params, labels(classes, shape.head), typeof eos === 'number' ? eos : Array.isArray(eos) && typeof eos[0] === 'number' ? eos[0] : null, maxPositions);
}
