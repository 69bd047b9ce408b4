/**
 * Vision Transformer (Dosovitskiy et al.) and DeiT (Touvron et al.): pre-LN blocks, exact-erf GELU,
 * a CLS token (plus DeiT's distillation token), learned position embeddings.
 *
 * The forward pass is first, top to bottom; checkpoint loading (timm and HuggingFace layouts) follows.
 */
import { tf, type Tensor, type Tensor2D, type Tensor4D } from '../tf.js';
import type { ModelSource } from '../provenance.js';
import { layerNorm, layerNormBackward, linear, matmulBT, tidy, type LayerNorm, type Linear } from '../ops.js';
import { attention, attentionBackward, mlp, mlpBackward, type Attention, type AttentionRecord, type Mlp, type MlpRecord, type PreLnBlockRecord } from './layers.js';
import type { ClassifierModel, ForwardOptions, ForwardResult, MethodConventions, ModelInput, OcclusionMode, Occlusions } from './types.js';

/** Occluded variants per forward pass: the lean forward keeps one layer's activations alive at a time. */
export const OCCLUSION_BATCH = 16;
import type { Preprocessing } from '../image/preprocess.js';
import { CheckpointError, InputError, UsageError } from '../errors.js';
import { ortActive } from '../ort-products.js';
import { releaseTraced } from '../engine/trace.js';
import { vitPredictOnOrt } from '../onnx/run.js';
import { NORMALISERS, type NormaliserName } from '../normalisers.js';
import { WeightReader, makeLayerNorm } from './weights.js';
import type { RuleSet } from '../relevance/rulesets.js';
import { vitRelevance } from '../relevance/vit.js';
import type { RelevanceOptions, RelevanceResult } from '../relevance/result.js';

export interface ViTConfig {
  readonly imageSize: [number, number];
  readonly patchSize: number;
  readonly channels: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpDim: number;
  readonly numClasses: number;
  readonly qkvBias: boolean;
  /** LayerNorm eps inside the blocks, and of the final norm (the authors' ViT_LRP uses 1e-6 and 1e-5). */
  readonly lnEps: number;
  readonly lnEpsFinal: number;
  /** 1: CLS. 2: CLS + distillation token (DeiT). */
  readonly prefixTokens: 1 | 2;
  /** 'cls': head on the CLS token. 'cls+dist': mean of the CLS head and the distillation head (DeiT with teacher). */
  readonly pooling: 'cls' | 'cls+dist';
  /** The attention normaliser (config.json `attention_normaliser`, a relprop extension; default softmax). */
  readonly attention?: NormaliserName;
}

export interface ViTBlock {
  readonly name: string;
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
}

export interface ViTWeights {
  /** The patch-embedding convolution as a Linear on flattened (c, kh, kw) patches. */
  readonly patchEmbed: Linear;
  /** CLS (and distillation) token rows, [prefixTokens, D]. */
  readonly prefix: Tensor2D;
  readonly posEmbed: Tensor2D;
  readonly blocks: readonly ViTBlock[];
  readonly norm: LayerNorm;
  /** One head, or [CLS head, distillation head] for 'cls+dist'. */
  readonly heads: readonly Linear[];
}

/** One ViT block's activations (timm's Block is pre-LN). */
export type ViTBlockRecord = PreLnBlockRecord;

/** Everything a relevance pass through a ViT needs; all [B·T, D] unless stated. */
export interface ViTRecord {
  /** Flattened patches, [B·N, C·p·p]: the input of the patch embedding. */
  readonly patches: Tensor2D;
  /** Token embeddings before the position embedding is added (prefix tokens + patch embeddings). */
  readonly tokenEmbeds: Tensor2D;
  /** The position embedding tiled over the batch. */
  readonly posEmbeds: Tensor2D;
  readonly blocks: readonly ViTBlockRecord[];
  /** Final LayerNorm output. */
  readonly normOut: Tensor2D;
  /** The rows the heads read: [B, D] per head. */
  readonly pooled: readonly Tensor2D[];
}

/** [B, C, H, W] → [B·N, C·p·p], patches in row-major grid order, each flattened as (c, kh, kw) like the conv weight. */
function patchify(pixels: Tensor4D, p: number): Tensor2D {
  const [b, c, h, w] = pixels.shape;
  const gh = h / p;
  const gw = w / p;
  return tf.tidy(() => {
    // Rank ≤ 5 at every step: [B·C·gh, p, gw, p] → [B·C·gh, gw, p, p] → [B, C, gh·gw, p·p] → [B, gh·gw, C, p·p].
    const rows = tf.transpose(tf.reshape(pixels, [b * c * gh, p, gw, p]), [0, 2, 1, 3]);
    const grouped = tf.transpose(tf.reshape(rows, [b, c, gh * gw, p * p]), [0, 2, 1, 3]);
    return tf.reshape(grouped, [b * gh * gw, c * p * p]) as Tensor2D;
  });
}

/** Inverse of patchify: [B·N, C·p·p] → [B, C, H, W]. */
export function unpatchify(x: Tensor2D, batch: number, channels: number, grid: readonly [number, number], p: number): Tensor4D {
  const [gh, gw] = grid;
  return tf.tidy(() => {
    const byPatch = tf.transpose(tf.reshape(x, [batch, gh * gw, channels, p * p]), [0, 2, 1, 3]);
    const rows = tf.transpose(tf.reshape(byPatch, [batch * channels * gh, gw, p, p]), [0, 2, 1, 3]);
    return tf.reshape(rows, [batch, channels, gh * p, gw * p]) as Tensor4D;
  });
}

export class ViTModel implements ClassifierModel {
  source?: ModelSource;
  readonly family = 'vit';
  readonly numClasses: number;
  readonly depth: number;
  readonly heads: number;
  readonly tokens: number;
  readonly prefixTokens: number;
  readonly grid: [number, number];
  /** ViT_LRP's conventions: rollout of Ā + I without row normalisation; GradCAM weights from the CLS row. */
  readonly conventions: MethodConventions = { attributionRolloutRowNormalise: false, gradcam: 'cls-row' };

  constructor(
    readonly name: string,
    readonly config: ViTConfig,
    readonly weights: ViTWeights,
    readonly labels: readonly string[],
    readonly preprocessing: Preprocessing,
  ) {
    this.numClasses = config.numClasses;
    this.depth = config.depth;
    this.heads = config.heads;
    this.prefixTokens = config.prefixTokens;
    this.grid = [config.imageSize[0] / config.patchSize, config.imageSize[1] / config.patchSize];
    this.tokens = config.prefixTokens + this.grid[0] * this.grid[1];
  }

  forward(input: ModelInput, options: ForwardOptions = {}): ForwardResult<ViTRecord> {
    const { config: cfg, weights: W } = this;
    const pixels = (options.inputValue as Tensor4D | undefined) ?? this.pixelsOf(input);
    this.checkPixels(pixels);
    const B = pixels.shape[0];
    const T = this.tokens;
    const D = cfg.dim;
    return tidy(() => {
      // Embedding: patch projection, prefix tokens in front, position embedding added.
      const patches = patchify(pixels, cfg.patchSize);
      const patchEmbeds = tf.reshape(linear(W.patchEmbed, patches), [B, T - cfg.prefixTokens, D]);
      const prefix = tf.broadcastTo(tf.reshape(W.prefix, [1, cfg.prefixTokens, D]), [B, cfg.prefixTokens, D]);
      const tokenEmbeds = tf.reshape(tf.concat([prefix, patchEmbeds], 1), [B * T, D]) as Tensor2D;
      // A copy even for B = 1: records are disposed as a whole, and must never own a weight. Concat,
      // not Tile: tfjs-wasm's Tile costs ~70 ns an element, its Concat copies blocks.
      const posEmbeds = tf.concat(Array.from({ length: B }, () => W.posEmbed), 0) as Tensor2D;
      let x = tf.add(tokenEmbeds, posEmbeds) as Tensor2D;

      // Pre-LN blocks: x + Attn(LN(x)), then + MLP(LN(·)).
      // One tidy per block: only what the record keeps outlives it (per-head pieces and copies go).
      const blocks: ViTBlockRecord[] = W.blocks.map((block, l) => {
        const input = x;
        const r = tidy((): ViTBlockRecord => {
          const norm1Out = layerNorm(block.norm1, input);
          const attn = attention(block.attn, norm1Out, B, T, { probes: options.probes?.[l], batched: options.batchedAttention, edit: options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined });
          const mid = tf.add(input, attn.output) as Tensor2D;
          const norm2Out = layerNorm(block.norm2, mid);
          const m = mlp(block.mlp, norm2Out);
          return { input, norm1Out, attn, mid, norm2Out, mlp: m, output: tf.add(mid, m.output) as Tensor2D };
        });
        x = r.output;
        return r;
      });

      // Head(s) on the prefix token(s) after the final norm.
      const normOut = layerNorm(W.norm, x);
      const byToken = tf.reshape(normOut, [B, T, D]);
      const pooled = W.heads.map((_, i) => tf.reshape(tf.slice(byToken, [0, i, 0], [B, 1, D]), [B, D]) as Tensor2D);
      const headLogits = W.heads.map((head, i) => linear(head, pooled[i]!));
      const logits = (headLogits.length === 1 ? headLogits[0]! : tf.div(tf.addN(headLogits), headLogits.length)) as Tensor2D;

      const record: ViTRecord = { patches, tokenEmbeds, posEmbeds, blocks, normOut, pooled };
      return { logits, attention: blocks.map((b) => b.attn), record, batch: B };
    });
  }

  /**
   * ∂(Σ seed ⊙ logits)/∂pixels and ∂/∂A of every layer, by hand from a recorded forward pass: no
   * tape, so no second forward pass, no copies of every saved activation, and no probes. The same
   * products as the forward's, transposed (ops.matmulBT), and the LayerNorm, GELU and normaliser
   * Jacobians in closed form. `seed` is [B, C] (one-hot targets, or e_t − e_c for a contrast).
   */
  backward(fwd: ForwardResult, seed: Tensor2D, options: { attention: boolean }): { input: Tensor; attention: Tensor4D[] } {
    const { config: cfg, weights: W } = this;
    const rec = (fwd as ForwardResult<ViTRecord>).record;
    const B = fwd.batch;
    const T = this.tokens;
    const D = cfg.dim;
    const P = cfg.prefixTokens;
    const attentionGrads: Tensor4D[] = new Array(this.depth);
    let dx = tf.tidy(() => {
      // The head(s) read the prefix rows of the final norm's output; the logits are their mean.
      const s = W.heads.length === 1 ? seed : (tf.div(seed, W.heads.length) as Tensor2D);
      const rows = W.heads.map((h) => tf.reshape(matmulBT(s, h.wT), [B, 1, D]));
      const dNormOut = tf.reshape(tf.concat([...rows, tf.zeros([B, T - rows.length, D])], 1), [B * T, D]) as Tensor2D;
      return layerNormBackward(W.norm, rec.blocks[this.depth - 1]!.output, dNormOut);
    });
    for (let l = this.depth - 1; l >= 0; l--) {
      const blk = W.blocks[l]!;
      const r = rec.blocks[l]!;
      const dOut = dx;
      // One tidy per block: only the gradient at its input (and ∂A) outlives it.
      const step = tidy(() => {
        // output = mid + MLP(norm2(mid)); mid = input + Attn(norm1(input)).
        const dMid = tf.add(dOut, layerNormBackward(blk.norm2, r.mid, mlpBackward(blk.mlp, r.mlp, dOut))) as Tensor2D;
        const att = attentionBackward(blk.attn, r.attn, matmulBT(dMid, blk.attn.proj.wT), B, T);
        return { dx: tf.add(dMid, layerNormBackward(blk.norm1, r.input, att.input)) as Tensor2D, dA: att.probs };
      });
      dOut.dispose();
      dx = step.dx;
      if (options.attention) attentionGrads[l] = step.dA;
      else step.dA.dispose();
    }
    const input = tf.tidy(() => {
      // Embedding: prefix tokens and position embedding are constants; the patch rows go back
      // through the patch projection to the pixels.
      const patchRows = tf.reshape(tf.slice(tf.reshape(dx, [B, T, D]), [0, P, 0], [B, T - P, D]), [B * (T - P), D]) as Tensor2D;
      const dPatches = matmulBT(patchRows, W.patchEmbed.wT);
      return unpatchify(dPatches, B, cfg.channels, this.grid, cfg.patchSize);
    });
    dx.dispose();
    return { input, attention: options.attention ? attentionGrads : [] };
  }

  hiddenStates(fwd: ForwardResult): readonly Tensor2D[] {
    return (fwd as ForwardResult<ViTRecord>).record.blocks.map((b) => b.output);
  }

  relevance(fwd: ForwardResult, targets: readonly number[], rules: RuleSet, options?: RelevanceOptions): RelevanceResult {
    return vitRelevance(this, fwd as ForwardResult<ViTRecord>, targets, rules, options);
  }

  predict(input: ModelInput, options: Pick<ForwardOptions, 'attentionEdit'> = {}): Tensor2D {
    const { config: cfg, weights: W } = this;
    const pixels = this.pixelsOf(input);
    this.checkPixels(pixels);
    // The whole pass as one ONNX Runtime session where that is installed (onnx/predict.ts).
    const native = options.attentionEdit ? null : vitPredictOnOrt(this, pixels);
    if (native) return native;
    const B = pixels.shape[0];
    const T = this.tokens;
    const D = cfg.dim;
    return tf.tidy(() => {
      const patchEmbeds = tf.reshape(linear(W.patchEmbed, patchify(pixels, cfg.patchSize)), [B, T - cfg.prefixTokens, D]);
      const prefix = tf.broadcastTo(tf.reshape(W.prefix, [1, cfg.prefixTokens, D]), [B, cfg.prefixTokens, D]);
      // Broadcast, not tiled: tfjs-wasm's Tile costs ~70 ns an element (19 ms for 64 occluded copies).
      let x = tf.reshape(tf.add(tf.concat([prefix, patchEmbeds], 1), tf.reshape(W.posEmbed, [1, T, D])), [B * T, D]) as Tensor2D;
      // Many inputs at once (occlusion's variants): every sample and head in one 3-D product where
      // ONNX Runtime takes the products (see gradients.batchedGradients).
      const batched = B > 1 && ortActive();
      for (const [l, block] of W.blocks.entries()) {
        const prev = x;
        const edit = options.attentionEdit?.layer === l ? options.attentionEdit.edit : undefined;
        // One tidy per block: only the residual stream outlives it.
        x = tf.tidy(() => {
          const mid = tf.add(prev, attention(block.attn, layerNorm(block.norm1, prev), B, T, { edit, batched: batched && !edit }).output) as Tensor2D;
          return tf.add(mid, mlp(block.mlp, layerNorm(block.norm2, mid)).output) as Tensor2D;
        });
        prev.dispose();
      }
      const byToken = tf.reshape(layerNorm(W.norm, x), [B, T, D]);
      const heads = W.heads.map((head, i) => linear(head, tf.reshape(tf.slice(byToken, [0, i, 0], [B, 1, D]), [B, D]) as Tensor2D));
      return (heads.length === 1 ? heads[0]! : tf.div(tf.addN(heads), heads.length)) as Tensor2D;
    });
  }

  /** Each patch in turn set to the baseline (0 in normalised space, the mean colour). */
  occlusions(input: ModelInput, b: number, mode: OcclusionMode = 'auto'): Occlusions {
    if (mode !== 'auto' && mode !== 'baseline') throw new UsageError(`occlusion '${mode}' is for text; images take 'baseline' (each patch set to 0 in normalised space, the mean colour) or 'auto'`);
    const pixels = this.pixelsOf(input);
    const [, c, h, w] = pixels.shape;
    const p = this.config.patchSize;
    const [gh, gw] = this.grid;
    // Built on the host in one pass: tfjs-wasm's Tile (~40 ns an element) alone cost more than the
    // forward passes of the occluded copies.
    const size = c * h * w;
    const sample = pixels.dataSync().subarray(b * size, (b + 1) * size);
    const positions = Array.from({ length: gh * gw }, (_, i) => i);
    const batches: ModelInput[] = [];
    for (let s = 0; s < positions.length; s += OCCLUSION_BATCH) {
      const group = positions.slice(s, s + OCCLUSION_BATCH);
      const copies = new Float32Array(group.length * size);
      group.forEach((pos, k) => {
        copies.set(sample, k * size);
        const [r, q] = [Math.floor(pos / gw), pos % gw];
        for (let ch = 0; ch < c; ch++) {
          for (let y = r * p; y < (r + 1) * p; y++) {
            const row = k * size + ch * h * w + y * w;
            copies.fill(0, row + q * p, row + (q + 1) * p);
          }
        }
      });
      batches.push({ kind: 'image', pixels: tf.tensor4d(copies, [group.length, c, h, w]) });
    }
    return { batches, positions, shape: [gh, gw], space: 'patch', mode: 'baseline' };
  }

  tokensOf(): number {
    return this.tokens;
  }

  gradientInput(input: ModelInput): Tensor {
    return this.pixelsOf(input).clone();
  }

  /** All zeros in normalised space: the dataset-mean image for mean/std-normalised models (Captum's default). */
  gradientBaseline(input: ModelInput): Tensor {
    const [, c, h, w] = this.pixelsOf(input).shape;
    return tf.zeros([1, c, h, w]);
  }

  /** Over colour channels: max |·| for saliency (Simonyan et al.), sum for signed attributions. */
  attributionMaps(attribution: Tensor, batch: number, mode: 'abs' | 'abs-sum' | 'signed') {
    const [, , h, w] = attribution.shape as [number, number, number, number];
    const reduced = tf.tidy(() =>
      mode === 'abs' ? tf.max(tf.abs(attribution), 1) : mode === 'abs-sum' ? tf.sum(tf.abs(attribution), 1) : tf.sum(attribution, 1),
    );
    const flat = reduced.dataSync() as Float32Array;
    reduced.dispose();
    const n = h * w;
    return { maps: Array.from({ length: batch }, (_, b) => flat.slice(b * n, (b + 1) * n)), shape: [h, w], space: 'pixel' as const };
  }

  sampleOf(input: ModelInput, b: number): ModelInput {
    const p = this.pixelsOf(input);
    const [, c, h, w] = p.shape;
    return { kind: 'image', pixels: tf.slice(p, [b, 0, 0, 0], [1, c, h, w]) as Tensor4D };
  }

  private pixelsOf(input: ModelInput): Tensor4D {
    if (input.kind !== 'image') throw new InputError(`model '${this.name}' takes images, not ${input.kind}`);
    return input.pixels;
  }

  tokenRowToMap(row: ArrayLike<number>) {
    const n = this.grid[0] * this.grid[1];
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = row[this.prefixTokens + i]!;
    return { data, shape: [...this.grid], space: 'patch' as const };
  }

  private checkPixels(pixels: Tensor4D): void {
    const [, c, h, w] = pixels.shape;
    const [eh, ew] = this.config.imageSize;
    if (pixels.rank !== 4 || c !== this.config.channels || h !== eh || w !== ew) {
      throw new InputError(
        `image tensor has shape [${pixels.shape.join(', ')}] but model '${this.name}' expects [B, ${this.config.channels}, ${eh}, ${ew}]`,
      );
    }
  }

  dispose(): void {
    releaseTraced(this);
    const W = this.weights;
    const linears = [W.patchEmbed, ...W.heads, ...W.blocks.flatMap((b) => [b.attn.qkv, b.attn.proj, b.mlp.fc1, b.mlp.fc2])];
    const norms = [W.norm, ...W.blocks.flatMap((b) => [b.norm1, b.norm2])];
    tf.dispose([W.prefix, W.posEmbed, ...linears.flatMap((l) => (l.b ? [l.wT, l.b] : [l.wT])), ...norms.flatMap((n) => [n.gamma, n.beta])]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Checkpoints. Three config styles are read:
//  - timm-style (the golden models): img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, …
//  - timm hub folders: `architecture` + `pretrained_cfg`; sizes are read off the weights
//  - HuggingFace ViTForImageClassification / DeiTForImageClassification(WithTeacher): hidden_size, …
// Internally every parameter has its timm name; `names` maps it to the checkpoint's own.

type Json = Record<string, unknown>;

interface Layout {
  readonly kind: 'timm' | 'hf';
  /** HF: 'vit.' or 'deit.'. */
  readonly prefix: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function pair(v: unknown): [number, number] | undefined {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  return undefined;
}

/** timm's architecture names carry the head count only implicitly, through the size word. */
const TIMM_HEADS: Record<string, number> = { tiny: 3, small: 6, base: 12, large: 16, huge: 16, giant: 16 };

function need(value: number | undefined, key: string, file: string): number {
  if (value === undefined || !Number.isInteger(value) || value <= 0) {
    throw new CheckpointError(`'${key}' must be a positive integer`, file);
  }
  return value;
}

/** What the config and the weights together give: the hyper-parameters, the layout, and what had to be guessed. */
export interface ParsedViTConfig {
  readonly config: ViTConfig;
  readonly layout: Layout;
  /** Values neither the config nor the weights state, each with how to set it (printed at load). */
  readonly inferred: readonly string[];
}

/**
 * Work out the ViT hyper-parameters and the parameter-name layout from config.json and the weights
 * present. Every size the weights also tell must agree with the config (CheckpointError naming the
 * key, both values and the files otherwise).
 */
export function parseViTConfig(json: Json, reader: WeightReader, file: string): ParsedViTConfig {
  const modelType = String(json['model_type'] ?? '');
  if (typeof json['hidden_size'] === 'number') {
    const prefix = modelType === 'deit' ? 'deit.' : 'vit.';
    const dim = need(num(json['hidden_size']), 'hidden_size', file);
    const act = String(json['hidden_act'] ?? 'gelu');
    if (act !== 'gelu') throw new CheckpointError(`hidden_act '${act}' is not supported (only exact 'gelu')`, file);
    const teacher = reader.has('cls_classifier.weight');
    const head = teacher ? 'cls_classifier.weight' : 'classifier.weight';
    const numClasses = reader.shapeOf(head)?.[0] ?? num(json['num_labels']) ?? labelCount(json);
    const imageSize = pair(json['image_size']) ?? [224, 224];
    const eps = num(json['layer_norm_eps']) ?? 1e-12;
    const config: ViTConfig = {
      imageSize,
      patchSize: need(num(json['patch_size']) ?? 16, 'patch_size', file),
      channels: need(num(json['num_channels']) ?? 3, 'num_channels', file),
      dim,
      depth: need(num(json['num_hidden_layers']), 'num_hidden_layers', file),
      heads: need(num(json['num_attention_heads']), 'num_attention_heads', file),
      mlpDim: need(num(json['intermediate_size']) ?? 4 * dim, 'intermediate_size', file),
      numClasses: need(numClasses, 'num_labels', file),
      qkvBias: json['qkv_bias'] !== false,
      lnEps: eps,
      lnEpsFinal: eps,
      prefixTokens: modelType === 'deit' ? 2 : 1,
      pooling: teacher ? 'cls+dist' : 'cls',
    };
    const keys: AgreeKeys = {
      dim: 'hidden_size',
      patch: 'patch_size',
      channels: 'num_channels',
      image: 'image_size',
      mlp: 'intermediate_size',
      depth: 'num_hidden_layers',
      classes: 'num_labels',
      qkvBias: 'qkv_bias',
    };
    const names: WeightNames = {
      patch: `${prefix}embeddings.patch_embeddings.projection.weight`,
      pos: `${prefix}embeddings.position_embeddings`,
      fc1: `${prefix}encoder.layer.0.intermediate.dense.weight`,
      qkvBias: `${prefix}encoder.layer.0.attention.attention.query.bias`,
      head,
      layers: [new RegExp(`^${prefix.replace('.', '\\.')}encoder\\.layer\\.(\\d+)\\.`), `${prefix}encoder.layer.N`],
    };
    if (num(json['num_labels']) !== undefined) reader.agree('num_labels', num(json['num_labels'])!, head, 0, 'classes');
    agreeWithWeights(config, keys, names, reader);
    return { config: check({ ...config, attention: parseNormaliser(json, file) }, file), layout: { kind: 'hf', prefix }, inferred: [] };
  }

  if (typeof json['embed_dim'] === 'number') {
    const dim = need(num(json['embed_dim']), 'embed_dim', file);
    const distilled = reader.has('dist_token');
    const config: ViTConfig = {
      imageSize: pair(json['img_size']) ?? [224, 224],
      patchSize: need(num(json['patch_size']) ?? 16, 'patch_size', file),
      channels: need(num(json['in_chans']) ?? 3, 'in_chans', file),
      dim,
      depth: need(num(json['depth']), 'depth', file),
      heads: need(num(json['num_heads']), 'num_heads', file),
      mlpDim: need(num(json['mlp_hidden']) ?? Math.round(dim * (num(json['mlp_ratio']) ?? 4)), 'mlp_ratio', file),
      numClasses: need(num(json['num_classes']), 'num_classes', file),
      qkvBias: json['qkv_bias'] !== false,
      lnEps: num(json['ln_eps_blocks']) ?? num(json['ln_eps']) ?? 1e-6,
      lnEpsFinal: num(json['ln_eps_final']) ?? num(json['ln_eps']) ?? 1e-6,
      prefixTokens: distilled ? 2 : 1,
      pooling: distilled ? 'cls+dist' : 'cls',
    };
    const keys: AgreeKeys = {
      dim: 'embed_dim',
      patch: 'patch_size',
      channels: 'in_chans',
      image: 'img_size',
      mlp: json['mlp_hidden'] !== undefined ? 'mlp_hidden' : 'mlp_ratio × embed_dim',
      depth: 'depth',
      classes: 'num_classes',
      qkvBias: 'qkv_bias',
    };
    agreeWithWeights(config, keys, TIMM_NAMES, reader);
    return { config: check({ ...config, attention: parseNormaliser(json, file) }, file), layout: { kind: 'timm', prefix: '' }, inferred: [] };
  }

  if (typeof json['architecture'] === 'string') {
    // A timm hub folder: the config names the architecture; sizes come from the weights themselves.
    const arch = json['architecture'] as string;
    const size = /_(tiny|small|base|large|huge|giant)_/.exec(`_${arch}_`)?.[1];
    const patchW = reader.shapeOf('patch_embed.proj.weight');
    const pos = reader.shapeOf('pos_embed');
    const fc1 = reader.shapeOf('blocks.0.mlp.fc1.weight');
    const head = reader.shapeOf('head.weight');
    if (!patchW || !pos || !fc1 || !head || patchW.length !== 4 || pos.length !== 3) {
      throw new CheckpointError(`timm architecture '${arch}' is not a ViT/DeiT this loader understands (needs patch_embed, pos_embed, blocks, head)`, file);
    }
    if (json['global_pool'] !== undefined && json['global_pool'] !== 'token') {
      throw new CheckpointError(`global_pool '${String(json['global_pool'])}' is not supported (only 'token')`, file);
    }
    const inferred: string[] = [];
    const distilled = reader.has('dist_token');
    const prefixTokens = distilled ? 2 : 1;
    const patch = patchW[2]!;
    let imageSize = pair(json['img_size']);
    if (!imageSize) {
      // The weights give the token count, not the grid's shape: a square grid is timm's default.
      const side = Math.round(Math.sqrt(pos[1]! - prefixTokens));
      if (side * side !== pos[1]! - prefixTokens) {
        throw new CheckpointError(
          `pos_embed has ${pos[1]! - prefixTokens} patch positions, not a square grid: set "img_size": [height, width] in config.json`,
          file,
        );
      }
      imageSize = [side * patch, side * patch];
      if (side * patch !== 224) inferred.push(`image size ${side * patch}×${side * patch} from pos_embed's ${pos[1]} positions (a square grid; set "img_size" in config.json to override)`);
    }
    // The weights cannot tell how the width splits into heads; timm's size words fix it.
    let heads = num(json['num_heads']);
    if (heads === undefined) {
      if (!size) {
        throw new CheckpointError(`cannot tell the head count of timm architecture '${arch}' (no tiny/small/base/large/huge/giant in its name): set "num_heads" in config.json`, file);
      }
      heads = TIMM_HEADS[size]!;
      inferred.push(`${heads} attention heads from the word '${size}' in the timm architecture name '${arch}' (the weights cannot tell; set "num_heads" in config.json to override)`);
    }
    const lnEps = num(json['ln_eps']);
    if (lnEps === undefined) inferred.push(`LayerNorm eps 1e-6, timm's ViT default (set "ln_eps" in config.json to override)`);
    let depth = 0;
    while (reader.has(`blocks.${depth}.norm1.weight`)) depth++;
    const config: ViTConfig = {
      imageSize,
      patchSize: patch,
      channels: patchW[1]!,
      dim: patchW[0]!,
      depth,
      heads: need(heads, 'num_heads', file),
      mlpDim: fc1[0]!,
      numClasses: head[0]!,
      qkvBias: reader.has('blocks.0.attn.qkv.bias'),
      lnEps: lnEps ?? 1e-6,
      lnEpsFinal: lnEps ?? 1e-6,
      prefixTokens,
      pooling: distilled ? 'cls+dist' : 'cls',
    };
    if (num(json['num_classes']) !== undefined) reader.agree('num_classes', num(json['num_classes'])!, 'head.weight', 0, 'classes');
    if (num(json['num_features']) !== undefined) reader.agree('num_features', num(json['num_features'])!, 'patch_embed.proj.weight', 0, 'channels of width');
    if (num(json['embed_dim']) !== undefined) reader.agree('embed_dim', num(json['embed_dim'])!, 'patch_embed.proj.weight', 0, 'channels of width');
    agreeWithWeights(config, { dim: 'width', patch: 'patch size', channels: 'in_chans', image: 'img_size', mlp: 'MLP width', depth: 'depth', classes: 'num_classes', qkvBias: 'qkv bias' }, TIMM_NAMES, reader);
    return { config: check({ ...config, attention: parseNormaliser(json, file) }, file), layout: { kind: 'timm', prefix: '' }, inferred };
  }

  throw new CheckpointError(
    `cannot tell the ViT layout: expected HuggingFace keys (hidden_size, …), timm-style keys (embed_dim, depth, num_heads, …) or a timm 'architecture'`,
    file,
  );
}

/** The entries of id2label (HF) or label_names (timm), when the config has them. */
export function labelCount(json: Json): number | undefined {
  const id2label = json['id2label'];
  if (id2label && typeof id2label === 'object' && !Array.isArray(id2label)) return Object.keys(id2label).length;
  const names = json['label_names'];
  return Array.isArray(names) ? names.length : undefined;
}

/** The config keys behind each size, for messages. */
interface AgreeKeys {
  readonly dim: string;
  readonly patch: string;
  readonly channels: string;
  readonly image: string;
  readonly mlp: string;
  readonly depth: string;
  readonly classes: string;
  readonly qkvBias: string;
}

/** The checkpoint tensors that tell each size. */
interface WeightNames {
  readonly patch: string;
  readonly pos: string;
  readonly fc1: string;
  readonly qkvBias: string;
  readonly head: string;
  /** Layer-index pattern and its name with N, for messages. */
  readonly layers: readonly [RegExp, string];
}

const TIMM_NAMES: WeightNames = {
  patch: 'patch_embed.proj.weight',
  pos: 'pos_embed',
  fc1: 'blocks.0.mlp.fc1.weight',
  qkvBias: 'blocks.0.attn.qkv.bias',
  head: 'head.weight',
  layers: [/^blocks\.(\d+)\./, 'blocks.N'],
};

function agreeWithWeights(c: ViTConfig, keys: AgreeKeys, names: WeightNames, reader: WeightReader): void {
  reader.agree(keys.dim, c.dim, names.patch, 0, 'channels of width');
  reader.agree(keys.channels, c.channels, names.patch, 1, 'input channels');
  reader.agree(keys.patch, c.patchSize, names.patch, 2, 'pixels of patch side');
  reader.agree(keys.patch, c.patchSize, names.patch, 3, 'pixels of patch side');
  const tokens = c.prefixTokens + (c.imageSize[0] / c.patchSize) * (c.imageSize[1] / c.patchSize);
  reader.agree(`${keys.image} ${c.imageSize.join('×')} with patch size ${c.patchSize} and ${c.prefixTokens} prefix token${c.prefixTokens > 1 ? 's' : ''}: the token count`, tokens, names.pos, 1, 'position embeddings');
  reader.agree(keys.mlp, c.mlpDim, names.fc1, 0, 'MLP units');
  reader.agreeDepth(keys.depth, c.depth, names.layers[0], names.layers[1]);
  reader.agree(keys.classes, c.numClasses, names.head, 0, 'classes');
  const hasBias = reader.has(names.qkvBias);
  if (reader.has(names.fc1) && hasBias !== c.qkvBias) {
    throw new CheckpointError(
      `${keys.qkvBias} is ${c.qkvBias} but the weights ${hasBias ? 'have' : 'have no'} query/key/value biases ('${names.qkvBias}' in ${reader.filesLabel()})`,
      reader.configLabel(),
    );
  }
}

/** relprop's own config key for sparse attention; absent in other tools' checkpoints (softmax). */
export function parseNormaliser(json: Json, file: string): NormaliserName {
  const v = json['attention_normaliser'] ?? 'softmax';
  if (!NORMALISERS.includes(v as NormaliserName)) {
    throw new CheckpointError(`attention_normaliser '${String(v)}' is not one of ${NORMALISERS.join(', ')}`, file);
  }
  return v as NormaliserName;
}

function check(c: ViTConfig, file: string): ViTConfig {
  if (c.dim % c.heads !== 0) throw new CheckpointError(`width ${c.dim} is not divisible by ${c.heads} heads`, file);
  if (c.imageSize[0] % c.patchSize !== 0 || c.imageSize[1] % c.patchSize !== 0) {
    throw new CheckpointError(`image size ${c.imageSize.join('×')} is not divisible by patch size ${c.patchSize}`, file);
  }
  return c;
}

/** Read every parameter the config implies, checking its shape, into our (timm-named) weight layout. */
export function loadViTWeights(cfg: ViTConfig, layout: Layout, reader: WeightReader): ViTWeights {
  const D = cfg.dim;
  const P = cfg.patchSize;
  const T = cfg.prefixTokens + (cfg.imageSize[0] / P) * (cfg.imageSize[1] / P);
  const hf = layout.kind === 'hf';
  const p = layout.prefix;
  const blockName = (l: number, part: string) =>
    hf
      ? `${p}encoder.layer.${l}.${
          {
            norm1: 'layernorm_before',
            norm2: 'layernorm_after',
            'attn.proj': 'attention.output.dense',
            'mlp.fc1': 'intermediate.dense',
            'mlp.fc2': 'output.dense',
          }[part]
        }`
      : `blocks.${l}.${part}`;
  const lin = (name: string, ckpt: string, out: number, inDim: number, bias = true): Linear =>
    reader.linear(name, [{ weight: `${ckpt}.weight`, bias: bias ? `${ckpt}.bias` : null, out }], inDim);
  const ln = (name: string, ckpt: string, eps: number): LayerNorm =>
    makeLayerNorm(name, reader.read(`${ckpt}.weight`, [D]), reader.read(`${ckpt}.bias`, [D]), eps);

  const patchCkpt = hf ? `${p}embeddings.patch_embeddings.projection` : 'patch_embed.proj';
  const patchEmbed = reader.linear(
    'patch_embed.proj',
    [{ weight: `${patchCkpt}.weight`, bias: `${patchCkpt}.bias`, out: D, shape: [D, cfg.channels, P, P] }],
    cfg.channels * P * P,
  );
  const prefixNames = hf
    ? [`${p}embeddings.cls_token`, `${p}embeddings.distillation_token`]
    : ['cls_token', 'dist_token'];
  const prefixRows = prefixNames.slice(0, cfg.prefixTokens).map((n) => reader.read(n, [1, 1, D]));
  const prefixData = new Float32Array(cfg.prefixTokens * D);
  prefixRows.forEach((row, i) => prefixData.set(row, i * D));
  const prefix = tf.tensor2d(prefixData, [cfg.prefixTokens, D]);
  const posEmbed = reader.tensor(hf ? `${p}embeddings.position_embeddings` : 'pos_embed', [1, T, D], [T, D]) as Tensor2D;

  const heads = cfg.heads;
  const blocks: ViTBlock[] = [];
  for (let l = 0; l < cfg.depth; l++) {
    const name = `blocks.${l}`;
    let qkv: Linear;
    if (hf) {
      const parts = ['query', 'key', 'value'].map((k) => `${p}encoder.layer.${l}.attention.attention.${k}`);
      qkv = reader.linear(
        `${name}.attn.qkv`,
        parts.map((n) => ({ weight: `${n}.weight`, bias: cfg.qkvBias ? `${n}.bias` : null, out: D })),
        D,
      );
    } else {
      qkv = lin(`${name}.attn.qkv`, `${name}.attn.qkv`, 3 * D, D, cfg.qkvBias);
    }
    blocks.push({
      name,
      norm1: ln(`${name}.norm1`, blockName(l, 'norm1'), cfg.lnEps),
      attn: {
        name: `${name}.attn`,
        qkv,
        proj: lin(`${name}.attn.proj`, blockName(l, 'attn.proj'), D, D),
        heads,
        headDim: D / heads,
        scale: 1 / Math.sqrt(D / heads),
        normaliser: cfg.attention ?? 'softmax',
      },
      norm2: ln(`${name}.norm2`, blockName(l, 'norm2'), cfg.lnEps),
      mlp: {
        name: `${name}.mlp`,
        fc1: lin(`${name}.mlp.fc1`, blockName(l, 'mlp.fc1'), cfg.mlpDim, D),
        fc2: lin(`${name}.mlp.fc2`, blockName(l, 'mlp.fc2'), D, cfg.mlpDim),
      },
    });
  }
  const norm = ln('norm', hf ? `${p}layernorm` : 'norm', cfg.lnEpsFinal);
  const headNames = hf
    ? cfg.pooling === 'cls+dist'
      ? ['cls_classifier', 'distillation_classifier']
      : ['classifier']
    : cfg.pooling === 'cls+dist'
      ? ['head', 'head_dist']
      : ['head'];
  const headLayers = headNames.map((n, i) => lin(i === 0 ? 'head' : 'head_dist', n, cfg.numClasses, D));
  return { patchEmbed, prefix, posEmbed, blocks, norm, heads: headLayers };
}
