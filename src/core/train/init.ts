/**
 * Fresh models for training, and turning loaded ones trainable. Weights become tf.Variables with
 * stable names; initialisation follows timm/HF: Linear and embedding weights N(0, 0.02) truncated at
 * 2σ, biases 0, LayerNorm γ = 1, β = 0.
 */
import { tf, type Tensor } from '../tf.js';
import { buildBertWeights, buildViTWeights, rng } from '../models/random.js';
import { ViTModel, type ViTConfig } from '../models/vit.js';
import { BertModel, type BertConfig } from '../models/bert.js';
import type { Preprocessing } from '../image/preprocess.js';
import type { NormaliserName } from '../normalisers.js';

/** N(0, std) truncated at ±2σ by resampling, as timm's trunc_normal_. */
export function truncNormal(n: number, std: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do {
      const u = Math.max(next(), 1e-12);
      z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    } while (Math.abs(z) > 2);
    out[i] = z * std;
  }
  return out;
}

let runCounter = 0;

/**
 * A copy of a nested weights structure with every tensor a trainable variable (the input tensors are
 * disposed). Names carry a per-process run id: tfjs's variable registry is global, and two models in
 * one process must not clash.
 */
export function toVariables<W>(weights: W, label = 'model'): W {
  const run = `${label}.${runCounter++}`;
  let k = 0;
  const walk = (v: unknown): unknown => {
    if (v instanceof tf.Tensor) {
      const variable = tf.variable(v, true, `${run}/${k++}`);
      v.dispose();
      return variable;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([key, x]) => [key, walk(x)]));
    return v;
  };
  return walk(weights) as W;
}

/** Every variable in a weights structure, in a fixed order (the optimiser's state follows it). */
export function variablesOf(weights: unknown): tf.Variable[] {
  const out: tf.Variable[] = [];
  const walk = (v: unknown) => {
    if (v instanceof tf.Variable) out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object' && !(v instanceof tf.Tensor)) Object.values(v).forEach(walk);
  };
  walk(weights);
  return out;
}

const ones = (n: number) => new Float32Array(n).fill(1);

export function initViT(cfg: ViTConfig, seed: number, labels: readonly string[], preprocessing: Preprocessing, name = 'vit'): ViTModel {
  const next = rng(seed);
  const weights = buildViTWeights(cfg, {
    linear: (out, inDim) => truncNormal(out * inDim, 0.02, next),
    bias: (n) => new Float32Array(n),
    gamma: ones,
    beta: (n) => new Float32Array(n),
    embedding: (n) => truncNormal(n, 0.02, next),
  });
  return new ViTModel(name, cfg, toVariables(weights, name), labels, preprocessing);
}

export function initBert(cfg: BertConfig, seed: number, labels: readonly string[], name = 'bert'): BertModel {
  const next = rng(seed);
  const weights = buildBertWeights(cfg, {
    linear: (out, inDim) => truncNormal(out * inDim, 0.02, next),
    bias: (n) => new Float32Array(n),
    gamma: ones,
    beta: (n) => new Float32Array(n),
    embedding: (n) => truncNormal(n, 0.02, next),
  });
  return new BertModel(name, cfg, toVariables(weights, name), labels);
}

/**
 * The same weights with another attention normaliser (fine-tuning a sparse-attention model from a
 * trained softmax one). The input model's tensors move to the result.
 */
export function withNormaliser<M extends ViTModel | BertModel>(model: M, normaliser: NormaliserName): M {
  if (model instanceof ViTModel) {
    const w = model.weights;
    const weights = { ...w, blocks: w.blocks.map((b) => ({ ...b, attn: { ...b.attn, normaliser } })) };
    return new ViTModel(model.name, { ...model.config, attention: normaliser }, weights, model.labels, model.preprocessing) as M;
  }
  const bert = model as BertModel;
  const w = bert.weights;
  const weights = { ...w, layers: w.layers.map((l) => ({ ...l, attn: { ...l.attn, normaliser } })) };
  const out = new BertModel(bert.name, { ...bert.config, attention: normaliser }, weights, bert.labels);
  out.tokenizer = bert.tokenizer;
  out.special = bert.special;
  return out as M;
}

/** Make a loaded model trainable (resuming from a checkpoint): same model, weights as variables. */
export function trainable<M extends ViTModel | BertModel>(model: M): M {
  if (model instanceof ViTModel) {
    return new ViTModel(model.name, model.config, toVariables(model.weights, model.name), model.labels, model.preprocessing) as M;
  }
  const bert = model as BertModel;
  const out = new BertModel(bert.name, bert.config, toVariables(bert.weights, bert.name), bert.labels);
  out.tokenizer = bert.tokenizer;
  out.special = bert.special;
  return out as M;
}

export type { Tensor };
