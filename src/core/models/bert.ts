/**
 * BERT-style text classifiers (Devlin et al.): word + position + segment embeddings and a LayerNorm,
 * post-LN encoder layers, a pooler on the first token, a classifier. RoBERTa and DistilBERT
 * classifiers are the same computation with other names, position offsets and pooler activation.
 *
 * The forward pass is first, top to bottom; checkpoint loading follows.
 */
import { layerNormEps } from './config-values.js';
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import type { ModelSource } from '../provenance.js';
import { embeddingLookup, layerNorm, layerNormBackward, linear, matmulBT, tidy, type LayerNorm, type Linear } from '../ops.js';
import { attention, attentionBackward, mlp, mlpBackward, tokenAttributionMaps, tokenRow, tokenSampleOf, type Attention, type AttentionRecord, type Mlp, type MlpRecord } from './layers.js';
import type { ClassifierModel, NativeForm, ClsEntry, ForwardOptions, ForwardResult, MethodConventions, ModelInput, OcclusionMode, Occlusions, TokenInput } from './types.js';
import { CheckpointError, InputError } from '../errors.js';
import { ortActive } from '../ort-products.js';
import { releaseTraced } from '../engine/trace.js';
import { predictOnOrt } from '../onnx/run.js';
import { bertInputs, bertNetwork, type BertShape } from '../families/bert/bert.js';
import { HostParams } from '../families/host-params.js';
import type { HostTensor, Params } from '../engine/ops.js';
import type { Network } from '../nn/network.js';
import type { NormaliserName } from '../normalisers.js';
import { OCCLUSION_BATCH, parseNormaliser } from './vit.js';
import { WeightReader, makeLayerNorm } from './weights.js';
import type { Tokenizer } from '../text/tokenizer.js';

export type BertFlavour = 'bert' | 'roberta' | 'distilbert';

export interface BertConfig {
  readonly flavour: BertFlavour;
  readonly vocabSize: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpDim: number;
  readonly maxPositions: number;
  /** 0 when the model has no segment embeddings (DistilBERT). */
  readonly typeVocabSize: number;
  readonly lnEps: number;
  readonly numClasses: number;
  readonly padTokenId: number;
  /** The pooler's activation: tanh (BERT's pooler, RoBERTa's classifier.dense) or ReLU (DistilBERT's pre_classifier). */
  readonly poolerActivation: 'tanh' | 'relu';
  /** The attention normaliser (config.json `attention_normaliser`, a relprop extension; default softmax). */
  readonly attention?: NormaliserName;
}

export interface BertLayer {
  readonly name: string;
  /** q|k|v fused; `proj` is attention.output.dense. */
  readonly attn: Attention;
  /** attention.output.LayerNorm. */
  readonly norm1: LayerNorm;
  /** intermediate.dense (fc1) and output.dense (fc2). */
  readonly mlp: Mlp;
  /** output.LayerNorm. */
  readonly norm2: LayerNorm;
}

export interface BertWeights {
  readonly wordEmbeddings: Tensor2D;
  readonly positionEmbeddings: Tensor2D;
  readonly typeEmbeddings: Tensor2D | null;
  readonly embeddingNorm: LayerNorm;
  readonly layers: readonly BertLayer[];
  readonly pooler: Linear;
  readonly classifier: Linear;
}

export interface BertLayerRecord {
  readonly input: Tensor2D;
  readonly attn: AttentionRecord;
  /** attention.output.LayerNorm input: attention output + residual. */
  readonly norm1In: Tensor2D;
  /** attention.output.LayerNorm output (= the FFN input and its residual). */
  readonly norm1Out: Tensor2D;
  readonly mlp: MlpRecord;
  /** output.LayerNorm input: FFN output + residual. */
  readonly norm2In: Tensor2D;
  readonly output: Tensor2D;
}

export interface BertRecord {
  /** Embedding LayerNorm input: words + positions (+ segments). */
  readonly embeddingSum: Tensor2D;
  /** Embedding LayerNorm output: the encoder input, where the authors' relevance pass stops. */
  readonly embeddings: Tensor2D;
  readonly layers: readonly BertLayerRecord[];
  /** The first token's row of the last layer, [B, D]: the pooler's input. */
  readonly poolInput: Tensor2D;
  /** After the pooler's dense layer and activation, [B, D]: the classifier's input. */
  readonly pooled: Tensor2D;
  /** The additive mask on attention scores, (1 − mask)·(−10000), [B, T]. */
  readonly mask: Tensor2D;
}

export class BertModel implements ClassifierModel {
  source?: ModelSource;
  readonly family = 'bert';
  readonly numClasses: number;
  readonly depth: number;
  readonly heads: number;
  readonly prefixTokens = 1;
  /** The authors' BERT ExplanationGenerator: row-normalised rollout; GradCAM weights from the whole map. */
  readonly conventions: MethodConventions = { attributionRolloutRowNormalise: true, gradcam: 'whole-map' };
  /** [MASK] and [UNK] ids, when the folder has a tokenizer (occlusion needs them). */
  special: { mask: number | null; unk: number | null } = { mask: null, unk: null };
  /** The folder's tokenizer, when it has one. */
  tokenizer: Tokenizer | null = null;

  constructor(
    readonly name: string,
    readonly config: BertConfig,
    readonly weights: BertWeights,
    readonly labels: readonly string[],
  ) {
    this.numClasses = config.numClasses;
    this.depth = config.depth;
    this.heads = config.heads;
  }

  forward(input: ModelInput, options: ForwardOptions = {}): ForwardResult<BertRecord> {
    const { config: cfg, weights: W } = this;
    return tidy(() => {
      const { embeddingSum, embeddings, mask, B, T } = this.embed(this.tokenInput(input), options.inputValue as Tensor2D | undefined);

      // Post-LN layers: LN(x + Attn(x)), then LN(· + MLP(·)). The LayerNorms' inputs are kept for
      // the relevance rules that need them (no extra op: the sums are computed anyway).
      let x = embeddings;
      const layers: BertLayerRecord[] = W.layers.map((layer, l) => {
        const inputX = x;
        const attn = attention(layer.attn, inputX, B, T, {
          mask,
          probes: options.probes?.[l],
          batched: options.batchedAttention,
          edit: options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined,
        });
        const norm1In = tf.add(attn.output, inputX) as Tensor2D;
        const norm1Out = layerNorm(layer.norm1, norm1In);
        const m = mlp(layer.mlp, norm1Out);
        const norm2In = tf.add(m.output, norm1Out) as Tensor2D;
        x = layerNorm(layer.norm2, norm2In);
        return { input: inputX, attn, norm1In, norm1Out, mlp: m, norm2In, output: x };
      });

      // Pooler on the first token, then the classifier.
      const poolInput = tf.reshape(tf.slice(tf.reshape(x, [B, T, cfg.dim]), [0, 0, 0], [B, 1, cfg.dim]), [B, cfg.dim]) as Tensor2D;
      const pooled = this.poolerActivation(linear(W.pooler, poolInput));
      const logits = linear(W.classifier, pooled);
      const record: BertRecord = { embeddingSum, embeddings, layers, poolInput, pooled, mask };
      return { logits, attention: layers.map((r) => r.attn), record, batch: B };
    });
  }

  predict(input: ModelInput, options: Pick<ForwardOptions, 'attentionEdit'> = {}): Tensor2D {
    const { config: cfg, weights: W } = this;
    const tokens = this.tokenInput(input);
    // The whole pass as one ONNX Runtime session where that is installed (onnx/predict.ts).
    const native = options.attentionEdit ? null : predictOnOrt(this, tokens);
    if (native) return native;
    return tf.tidy(() => {
      const { embeddings, mask, B, T } = this.embed(tokens);
      let x = embeddings;
      // Many inputs at once (occlusion's variants): every sample and head in one 3-D product, as in ViT.
      const batched = B > 1 && ortActive();
      for (const [l, layer] of W.layers.entries()) {
        const prev = x;
        const edit = options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined;
        // One tidy per layer: only the hidden states outlive it.
        x = tf.tidy(() => {
          const h = layerNorm(layer.norm1, tf.add(attention(layer.attn, prev, B, T, { mask, edit, batched: batched && !edit }).output, prev) as Tensor2D);
          return layerNorm(layer.norm2, tf.add(mlp(layer.mlp, h).output, h) as Tensor2D);
        });
        prev.dispose();
      }
      const poolInput = tf.reshape(tf.slice(tf.reshape(x, [B, T, cfg.dim]), [0, 0, 0], [B, 1, cfg.dim]), [B, cfg.dim]) as Tensor2D;
      return linear(W.classifier, this.poolerActivation(linear(W.pooler, poolInput)));
    });
  }

  private poolerActivation(x: Tensor2D): Tensor2D {
    return (this.config.poolerActivation === 'tanh' ? tf.tanh(x) : tf.relu(x)) as Tensor2D;
  }

  /**
   * Embeddings: words + positions (+ segments), then LayerNorm; and the additive attention mask.
   * With integrated gradients the word embeddings arrive as n interpolated copies of one sample.
   */
  private embed(tokens: TokenInput, wordsIn?: Tensor2D) {
    const { weights: W } = this;
    const T = tokens.ids.shape[1];
    const words = wordsIn ?? this.wordEmbeddings(tokens);
    const B = words.shape[0] / T;
    const repeat = <X extends Tensor>(t: X) => (B === tokens.ids.shape[0] ? t : (tf.tile(t, [B, 1]) as X));
    const ids = repeat(tokens.ids);
    let sum = tf.add(words, embeddingLookup(W.positionEmbeddings, this.positionIds(ids)));
    if (W.typeEmbeddings) {
      const types = tokens.typeIds ? repeat(tokens.typeIds) : tf.zerosLike(ids);
      sum = tf.add(sum, embeddingLookup(W.typeEmbeddings, types));
    }
    const embeddingSum = sum as Tensor2D;
    const embeddings = layerNorm(W.embeddingNorm, embeddingSum);
    const mask = tf.mul(tf.sub(1, repeat(tf.cast(tokens.attentionMask, 'float32') as Tensor2D)), -10000) as Tensor2D;
    return { embeddingSum, embeddings, mask, B, T };
  }

  /** BERT counts positions from 0; RoBERTa from padding_idx + 1 over non-padding tokens only. */
  private positionIds(ids: Tensor2D): Tensor2D {
    const T = ids.shape[1];
    if (this.config.flavour !== 'roberta') return tf.tile(tf.range(0, T, 1, 'int32').reshape([1, T]), [ids.shape[0], 1]) as Tensor2D;
    const notPad = tf.cast(tf.notEqual(ids, this.config.padTokenId), 'int32');
    return tf.add(tf.mul(tf.cumsum(notPad, 1), notPad), tf.scalar(this.config.padTokenId, 'int32')) as Tensor2D;
  }

  private wordEmbeddings(tokens: TokenInput): Tensor2D {
    return tf.tidy(() => embeddingLookup(this.weights.wordEmbeddings, tokens.ids));
  }

  private tokenInput(input: ModelInput): TokenInput {
    if (input.kind !== 'tokens') throw new InputError(`model '${this.name}' takes text, not ${input.kind}`);
    const [, T] = input.ids.shape;
    const offset = this.config.flavour === 'roberta' ? this.config.padTokenId + 1 : 0;
    if (T + offset > this.config.maxPositions) {
      throw new InputError(`${T} tokens exceed model '${this.name}''s maximum of ${this.config.maxPositions - offset}`);
    }
    return input;
  }

  /**
   * Each token in turn replaced by [MASK] or [UNK] (ids from the model's tokenizer), or removed. The
   * first token ([CLS]/<s>, read by the pooler) and the last real token ([SEP]) stay; padding stays.
   */
  occlusions(input: ModelInput, b: number, mode: OcclusionMode): Occlusions {
    const t = this.tokenInput(input);
    const T = t.ids.shape[1];
    const ids = tokenRow(t.ids, b);
    const mask = tokenRow(t.attentionMask, b);
    const types = t.typeIds ? tokenRow(t.typeIds, b) : ids.map(() => 0);
    const real = mask.reduce((n, m) => n + (m ? 1 : 0), 0);
    if (mode === 'baseline') throw new InputError(`occlusion 'baseline' is for images; text takes 'mask', 'unk' or 'remove'`);
    let used = mode;
    if (used === 'auto') used = this.special.mask !== null ? 'mask' : this.special.unk !== null ? 'unk' : 'remove';
    if ((used === 'mask' && this.special.mask === null) || (used === 'unk' && this.special.unk === null)) {
      throw new InputError(`occlusion '${mode}' needs the model's tokenizer (tokenizer.json or vocab.txt in '${this.name}'); use 'remove'`);
    }
    const positions = Array.from({ length: Math.max(0, real - 2) }, (_, i) => i + 1);
    const variants = positions.map((pos) => {
      if (used === 'remove') {
        const cut = <X>(xs: X[], pad: X) => [...xs.slice(0, pos), ...xs.slice(pos + 1), pad];
        return { ids: cut(ids, this.config.padTokenId), mask: cut(mask, 0), types: cut(types, 0) };
      }
      const replaced = [...ids];
      replaced[pos] = used === 'mask' ? this.special.mask! : this.special.unk!;
      return { ids: replaced, mask, types };
    });
    const batches: ModelInput[] = [];
    for (let s = 0; s < variants.length; s += OCCLUSION_BATCH) {
      const group = variants.slice(s, s + OCCLUSION_BATCH);
      batches.push({
        kind: 'tokens',
        ids: tf.tensor2d(group.flatMap((v) => v.ids), [group.length, T], 'int32'),
        attentionMask: tf.tensor2d(group.flatMap((v) => v.mask), [group.length, T], 'int32'),
        typeIds: tf.tensor2d(group.flatMap((v) => v.types), [group.length, T], 'int32'),
      });
    }
    return { batches, positions, shape: [T], space: 'token', mode: used };
  }

  hiddenStates(fwd: ForwardResult): readonly Tensor2D[] {
    return (fwd as ForwardResult<BertRecord>).record.layers.map((l) => l.output);
  }

  /**
   * ∂(Σ seed ⊙ logits)/∂(word embeddings) and ∂/∂A of every layer, by hand from a recorded forward
   * pass (see ViTModel.backward): classifier, pooler and its activation, then each post-LN layer in
   * reverse, then the embedding LayerNorm (positions and segments are constants of the input).
   */
  backward(fwd: ForwardResult, seed: Tensor2D, options: { attention: boolean }): { input: Tensor; attention: Tensor4D[] } {
    const { config: cfg, weights: W } = this;
    const rec = (fwd as ForwardResult<BertRecord>).record;
    const B = fwd.batch;
    const D = cfg.dim;
    const T = rec.embeddings.shape[0] / B;
    const attentionGrads: Tensor4D[] = new Array(this.depth);
    let dx = tf.tidy(() => {
      const dPooled = matmulBT(seed, W.classifier.wT);
      // tanh' = 1 − tanh², ReLU' = [out > 0], both from the recorded activation.
      const dDense =
        cfg.poolerActivation === 'tanh'
          ? tf.mul(dPooled, tf.sub(1, tf.square(rec.pooled)))
          : tf.mul(dPooled, tf.cast(tf.greater(rec.pooled, 0), 'float32'));
      const first = tf.reshape(matmulBT(dDense as Tensor2D, W.pooler.wT), [B, 1, D]);
      return tf.reshape(tf.concat([first, tf.zeros([B, T - 1, D])], 1), [B * T, D]) as Tensor2D;
    });
    for (let l = this.depth - 1; l >= 0; l--) {
      const layer = W.layers[l]!;
      const r = rec.layers[l]!;
      const dOut = dx;
      const step = tidy(() => {
        // output = LN2(MLP(norm1Out) + norm1Out); norm1Out = LN1(Attn(input) + input).
        const dNorm2In = layerNormBackward(layer.norm2, r.norm2In, dOut);
        const dNorm1Out = tf.add(dNorm2In, mlpBackward(layer.mlp, r.mlp, dNorm2In)) as Tensor2D;
        const dNorm1In = layerNormBackward(layer.norm1, r.norm1In, dNorm1Out);
        const att = attentionBackward(layer.attn, r.attn, matmulBT(dNorm1In, layer.attn.proj.wT), B, T);
        return { dx: tf.add(dNorm1In, att.input) as Tensor2D, dA: att.probs };
      });
      dOut.dispose();
      dx = step.dx;
      if (options.attention) attentionGrads[l] = step.dA;
      else step.dA.dispose();
    }
    const input = layerNormBackward(W.embeddingNorm, rec.embeddingSum, dx);
    dx.dispose();
    return { input, attention: options.attention ? attentionGrads : [] };
  }

  tokensOf(input: ModelInput): number {
    return this.tokenInput(input).ids.shape[1];
  }

  tokenRowToMap(row: ArrayLike<number>, cls: ClsEntry = 'keep') {
    const data = Float32Array.from(row);
    if (cls === 'zero') data[0] = 0;
    else if (cls === 'row-min') data[0] = Math.min(...data);
    return { data, shape: [data.length], space: 'token' as const };
  }

  gradientInput(input: ModelInput): Tensor {
    return this.wordEmbeddings(this.tokenInput(input));
  }

  /** Zero word embeddings (Captum's default baseline); positions and segments stay as they are. */
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

  nativeForm(): NativeForm {
    if (!this.native) {
      const { network, shape, params } = bertFromModel(this);
      this.native = {
        network,
        params,
        predictFeeds: (input) => {
          const feeds = bertInputs(shape, this.tokenInput(input));
          return { ...feeds, x: feeds['ids']! };
        },
        // One sample's word embeddings [n·T, D] at n points (integrated gradients' path, SmoothGrad's copies).
        gradientFeeds: (input, x) => {
          if (input.kind !== 'tokens' || input.ids.shape[0] !== 1) return null;
          const T = input.ids.shape[1];
          const D = this.config.dim;
          const n = x.size / (T * D);
          const feeds: Record<string, HostTensor> = { ...bertInputs(shape, input, n), x: { data: x.dataSync() as Float32Array, shape: [n, T, D] } };
          return { feeds, copies: n };
        },
      };
    }
    return this.native;
  }

  dispose(): void {
    this.native = undefined;
    releaseTraced(this);
    const W = this.weights;
    const linears = [W.pooler, W.classifier, ...W.layers.flatMap((l) => [l.attn.qkv, l.attn.proj, l.mlp.fc1, l.mlp.fc2])];
    const norms = [W.embeddingNorm, ...W.layers.flatMap((l) => [l.norm1, l.norm2])];
    tf.dispose([
      W.wordEmbeddings,
      W.positionEmbeddings,
      ...(W.typeEmbeddings ? [W.typeEmbeddings] : []),
      ...linears.flatMap((l) => (l.b ? [l.wT, l.b] : [l.wT])),
      ...norms.flatMap((n) => [n.gamma, n.beta]),
    ]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Checkpoints: HuggingFace BertForSequenceClassification, RobertaForSequenceClassification and
// DistilBertForSequenceClassification folders.

type Json = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function need(value: number | undefined, key: string, file: string): number {
  if (value === undefined || !Number.isInteger(value) || value < 0) throw new CheckpointError(`'${key}' must be a non-negative integer`, file);
  return value;
}

export function parseBertConfig(json: Json, reader: WeightReader, file: string): BertConfig {
  const flavour = String(json['model_type']) as BertFlavour;
  const distil = flavour === 'distilbert';
  const act = String(json[distil ? 'activation' : 'hidden_act'] ?? 'gelu');
  if (act !== 'gelu') throw new CheckpointError(`activation '${act}' is not supported (only exact 'gelu')`, file);
  if (distil && json['sinusoidal_pos_embds'] === true) {
    throw new CheckpointError(`sinusoidal position embeddings are not supported (only learned ones)`, file);
  }
  const dim = need(num(json[distil ? 'dim' : 'hidden_size']), distil ? 'dim' : 'hidden_size', file);
  const headName = flavour === 'roberta' ? 'classifier.out_proj.weight' : 'classifier.weight';
  const head = reader.shapeOf(headName);
  const labels = json['id2label'] && typeof json['id2label'] === 'object' ? Object.keys(json['id2label'] as Json).length : undefined;
  const config: BertConfig = {
    flavour,
    vocabSize: need(num(json['vocab_size']), 'vocab_size', file),
    dim,
    depth: need(num(json[distil ? 'n_layers' : 'num_hidden_layers']), distil ? 'n_layers' : 'num_hidden_layers', file),
    heads: need(num(json[distil ? 'n_heads' : 'num_attention_heads']), distil ? 'n_heads' : 'num_attention_heads', file),
    mlpDim: need(num(json[distil ? 'hidden_dim' : 'intermediate_size']) ?? 4 * dim, distil ? 'hidden_dim' : 'intermediate_size', file),
    maxPositions: need(num(json['max_position_embeddings']) ?? 512, 'max_position_embeddings', file),
    typeVocabSize: distil ? 0 : need(num(json['type_vocab_size']) ?? 2, 'type_vocab_size', file),
    lnEps: layerNormEps(json, 'layer_norm_eps', 1e-12, file),
    numClasses: need(head?.[0] ?? num(json['num_labels']) ?? labels, 'num_labels', file),
    padTokenId: need(num(json['pad_token_id']) ?? (flavour === 'roberta' ? 1 : 0), 'pad_token_id', file),
    poolerActivation: distil ? 'relu' : 'tanh',
    attention: parseNormaliser(json, file),
  };
  if (config.dim % config.heads !== 0) throw new CheckpointError(`width ${config.dim} is not divisible by ${config.heads} heads`, file);
  // Every size the weights also tell must be the config's.
  const n = names(flavour);
  const key = (bert: string, distilbert: string) => (distil ? distilbert : bert);
  reader.agree(key('vocab_size', 'vocab_size'), config.vocabSize, n.word, 0, 'word embeddings');
  reader.agree(key('hidden_size', 'dim'), config.dim, n.word, 1, 'channels of width');
  reader.agree('max_position_embeddings', config.maxPositions, n.position, 0, 'position embeddings');
  if (n.type) reader.agree('type_vocab_size', config.typeVocabSize, n.type, 0, 'token type embeddings');
  reader.agree(key('intermediate_size', 'hidden_dim'), config.mlpDim, `${n.fc1(0)}.weight`, 0, 'MLP units');
  const layer = distil ? 'distilbert.transformer.layer' : `${flavour === 'roberta' ? 'roberta' : 'bert'}.encoder.layer`;
  reader.agreeDepth(key('num_hidden_layers', 'n_layers'), config.depth, new RegExp(`^${layer.replace(/\./g, '\\.')}\\.(\\d+)\\.`), `${layer}.N`);
  if (num(json['num_labels']) !== undefined) reader.agree('num_labels', num(json['num_labels'])!, headName, 0, 'classes');
  return config;
}

/** Checkpoint names of each of our parameters, per flavour. */
function names(flavour: BertFlavour) {
  if (flavour === 'distilbert') {
    const layer = (l: number) => `distilbert.transformer.layer.${l}`;
    return {
      word: 'distilbert.embeddings.word_embeddings.weight',
      position: 'distilbert.embeddings.position_embeddings.weight',
      type: null,
      embNorm: 'distilbert.embeddings.LayerNorm',
      qkv: (l: number) => ['q_lin', 'k_lin', 'v_lin'].map((p) => `${layer(l)}.attention.${p}`),
      proj: (l: number) => `${layer(l)}.attention.out_lin`,
      norm1: (l: number) => `${layer(l)}.sa_layer_norm`,
      fc1: (l: number) => `${layer(l)}.ffn.lin1`,
      fc2: (l: number) => `${layer(l)}.ffn.lin2`,
      norm2: (l: number) => `${layer(l)}.output_layer_norm`,
      pooler: 'pre_classifier',
      classifier: 'classifier',
    };
  }
  const p = flavour === 'roberta' ? 'roberta' : 'bert';
  const layer = (l: number) => `${p}.encoder.layer.${l}`;
  return {
    word: `${p}.embeddings.word_embeddings.weight`,
    position: `${p}.embeddings.position_embeddings.weight`,
    type: `${p}.embeddings.token_type_embeddings.weight`,
    embNorm: `${p}.embeddings.LayerNorm`,
    qkv: (l: number) => ['query', 'key', 'value'].map((k) => `${layer(l)}.attention.self.${k}`),
    proj: (l: number) => `${layer(l)}.attention.output.dense`,
    norm1: (l: number) => `${layer(l)}.attention.output.LayerNorm`,
    fc1: (l: number) => `${layer(l)}.intermediate.dense`,
    fc2: (l: number) => `${layer(l)}.output.dense`,
    norm2: (l: number) => `${layer(l)}.output.LayerNorm`,
    // RoBERTa has no pooler: its classification head's dense + tanh is the same computation.
    pooler: flavour === 'roberta' ? 'classifier.dense' : 'bert.pooler.dense',
    classifier: flavour === 'roberta' ? 'classifier.out_proj' : 'classifier',
  };
}

export function loadBertWeights(cfg: BertConfig, reader: WeightReader): BertWeights {
  const n = names(cfg.flavour);
  const D = cfg.dim;
  const lin = (name: string, ckpt: string, out: number, inDim: number) =>
    reader.linear(name, [{ weight: `${ckpt}.weight`, bias: `${ckpt}.bias`, out }], inDim);
  const ln = (name: string, ckpt: string) => makeLayerNorm(name, reader.read(`${ckpt}.weight`, [D]), reader.read(`${ckpt}.bias`, [D]), cfg.lnEps);
  const layers: BertLayer[] = Array.from({ length: cfg.depth }, (_, l) => {
    const name = `bert.encoder.layer.${l}`;
    const qkv = n.qkv(l);
    return {
      name,
      attn: {
        name: `${name}.attention.self`,
        qkv: reader.linear(`${name}.attention.self.qkv`, qkv.map((q) => ({ weight: `${q}.weight`, bias: `${q}.bias`, out: D })), D),
        proj: lin(`${name}.attention.output.dense`, n.proj(l), D, D),
        heads: cfg.heads,
        headDim: D / cfg.heads,
        scale: 1 / Math.sqrt(D / cfg.heads),
        normaliser: cfg.attention ?? 'softmax',
      },
      norm1: ln(`${name}.attention.output.LayerNorm`, n.norm1(l)),
      mlp: { name: `${name}.mlp`, fc1: lin(`${name}.intermediate.dense`, n.fc1(l), cfg.mlpDim, D), fc2: lin(`${name}.output.dense`, n.fc2(l), D, cfg.mlpDim) },
      norm2: ln(`${name}.output.LayerNorm`, n.norm2(l)),
    };
  });
  return {
    wordEmbeddings: reader.tensor(n.word, [cfg.vocabSize, D]) as Tensor2D,
    positionEmbeddings: reader.tensor(n.position, [cfg.maxPositions, D]) as Tensor2D,
    typeEmbeddings: n.type ? (reader.tensor(n.type, [cfg.typeVocabSize, D]) as Tensor2D) : null,
    embeddingNorm: ln('bert.embeddings.LayerNorm', n.embNorm),
    layers,
    pooler: lin('bert.pooler.dense', n.pooler, D, D),
    classifier: lin('classifier', n.classifier, cfg.numClasses, D),
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
