/**
 * Randomly initialised ViTs from a seed: for benchmarks at real sizes (ViT-B/16) and for tests that
 * need a model with a property (zero biases, so the paper's rules must conserve exactly).
 */
import { tf } from '../tf.js';
import { tidy } from '../ops.js';
import { makeLayerNorm, makeLinear } from './weights.js';
import { ViTModel, type ViTConfig, type ViTBlock, type ViTWeights } from './vit.js';
import type { BertConfig, BertWeights } from './bert.js';

/** Mulberry32: small, fast, seedable; good enough for initialisation. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normals(n: number, std: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box–Muller: two normals per pair of uniforms.
    const u = Math.max(next(), 1e-12);
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export interface RandomViTOptions {
  readonly seed?: number;
  /** Std of Linear weights (the goldens use 0.25 so rules differ visibly; timm uses 0.02). */
  readonly weightStd?: number;
  readonly zeroBias?: boolean;
}

export const VIT_B16: ViTConfig = {
  imageSize: [224, 224],
  patchSize: 16,
  channels: 3,
  dim: 768,
  depth: 12,
  heads: 12,
  mlpDim: 3072,
  numClasses: 1000,
  qkvBias: true,
  lnEps: 1e-6,
  lnEpsFinal: 1e-6,
  prefixTokens: 1,
  pooling: 'cls',
};

/** Where each kind of parameter's initial values come from; a builder takes them in a fixed order. */
export interface ViTInit {
  linear(out: number, inDim: number): Float32Array;
  bias(n: number): Float32Array;
  gamma(n: number): Float32Array;
  beta(n: number): Float32Array;
  /** CLS token and position embeddings. */
  embedding(n: number): Float32Array;
}

/** The ViT weight structure for a config, filled from `init` (shared by benchmarks' random models and training). */
export function buildViTWeights(config: ViTConfig, init: ViTInit): ViTWeights {
  const D = config.dim;
  const lin = (name: string, out: number, inDim: number, withBias = true) =>
    makeLinear(name, [init.linear(out, inDim)], [withBias ? init.bias(out) : null], inDim);
  const ln = (name: string, eps: number) => makeLayerNorm(name, init.gamma(D), init.beta(D), eps);
  const T = config.prefixTokens + (config.imageSize[0] / config.patchSize) * (config.imageSize[1] / config.patchSize);
  return tidy(() => {
    const blocks: ViTBlock[] = Array.from({ length: config.depth }, (_, l) => ({
      name: `blocks.${l}`,
      norm1: ln(`blocks.${l}.norm1`, config.lnEps),
      attn: {
        name: `blocks.${l}.attn`,
        qkv: lin(`blocks.${l}.attn.qkv`, 3 * D, D, config.qkvBias),
        proj: lin(`blocks.${l}.attn.proj`, D, D),
        heads: config.heads,
        headDim: D / config.heads,
        scale: 1 / Math.sqrt(D / config.heads),
        normaliser: config.attention ?? 'softmax',
      },
      norm2: ln(`blocks.${l}.norm2`, config.lnEps),
      mlp: { name: `blocks.${l}.mlp`, fc1: lin(`blocks.${l}.mlp.fc1`, config.mlpDim, D), fc2: lin(`blocks.${l}.mlp.fc2`, D, config.mlpDim) },
    }));
    return {
      patchEmbed: lin('patch_embed.proj', D, config.channels * config.patchSize ** 2),
      prefix: tf.tensor2d(init.embedding(config.prefixTokens * D), [config.prefixTokens, D]),
      posEmbed: tf.tensor2d(init.embedding(T * D), [T, D]),
      blocks,
      norm: ln('norm', config.lnEpsFinal),
      heads: (config.pooling === 'cls+dist' ? ['head', 'head_dist'] : ['head']).map((n) => lin(n, config.numClasses, D)),
    };
  });
}

export function randomViT(config: ViTConfig, options: RandomViTOptions = {}): ViTModel {
  const next = rng(options.seed ?? 0);
  const std = options.weightStd ?? 0.02;
  const zero = (n: number) => new Float32Array(n);
  const weights = buildViTWeights(config, {
    linear: (out, inDim) => normals(out * inDim, std, next),
    bias: (n) => (options.zeroBias ? zero(n) : normals(n, 0.1, next)),
    gamma: (n) => normals(n, 0.2, next).map((x) => 1 + x),
    beta: (n) => (options.zeroBias ? zero(n) : normals(n, 0.1, next)),
    embedding: (n) => normals(n, 0.3, next),
  });
  const labels = Array.from({ length: config.numClasses }, (_, i) => `class ${i}`);
  return new ViTModel('random-vit', config, weights, labels, {
    size: config.imageSize,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    rescaleFactor: 1 / 255,
    resample: 'bilinear',
  });
}

/** The BERT weight structure for a config, filled from `init` (`embedding` fills the word, position and type tables). */
export function buildBertWeights(cfg: BertConfig, init: ViTInit): BertWeights {
  const D = cfg.dim;
  const lin = (name: string, out: number, inDim: number) => makeLinear(name, [init.linear(out, inDim)], [init.bias(out)], inDim);
  const ln = (name: string) => makeLayerNorm(name, init.gamma(D), init.beta(D), cfg.lnEps);
  const table = (rows: number) => tf.tensor2d(init.embedding(rows * D), [rows, D]);
  return {
    wordEmbeddings: table(cfg.vocabSize),
    positionEmbeddings: table(cfg.maxPositions),
    typeEmbeddings: cfg.typeVocabSize > 0 ? table(cfg.typeVocabSize) : null,
    embeddingNorm: ln('bert.embeddings.LayerNorm'),
    layers: Array.from({ length: cfg.depth }, (_, l) => {
      const n = `bert.encoder.layer.${l}`;
      return {
        name: n,
        attn: {
          name: `${n}.attention.self`,
          qkv: lin(`${n}.attention.self.qkv`, 3 * D, D),
          proj: lin(`${n}.attention.output.dense`, D, D),
          heads: cfg.heads,
          headDim: D / cfg.heads,
          scale: 1 / Math.sqrt(D / cfg.heads),
          normaliser: cfg.attention ?? 'softmax',
        },
        norm1: ln(`${n}.attention.output.LayerNorm`),
        mlp: { name: `${n}.mlp`, fc1: lin(`${n}.intermediate.dense`, cfg.mlpDim, D), fc2: lin(`${n}.output.dense`, D, cfg.mlpDim) },
        norm2: ln(`${n}.output.LayerNorm`),
      };
    }),
    pooler: lin('bert.pooler.dense', D, D),
    classifier: lin('classifier', cfg.numClasses, D),
  };
}
