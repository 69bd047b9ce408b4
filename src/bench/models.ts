/**
 * The bench's models and the one input each is explained on: the golden tiny ViT and BERT (their
 * first golden input), the six shipped models (a held-out sample of their generated task), and
 * randomly initialised ViT-B/16 and BERT-base shapes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tf, type Tensor2D, type Tensor4D } from '../core/tf.js';
import { loadModel } from '../core/models/load.js';
import { buildBertWeights, normals, randomViT, rng, VIT_B16 } from '../core/models/random.js';
import { BertModel, type BertConfig } from '../core/models/bert.js';
import { ViTModel } from '../core/models/vit.js';
import type { ClassifierModel, ModelInput } from '../core/models/types.js';
import { readJsonTensor } from '../core/io/tensor-json.js';
import { imageToInput } from '../core/inputs.js';
import { encodeText } from '../core/text-inputs.js';
import { imageTask, textTask } from '../core/tasks/index.js';
import { HELD_OUT_SEED } from '../core/train/data.js';

export type ModelGroup = 'tiny' | 'shipped' | 'big';

export interface BenchModelSpec {
  readonly id: string;
  readonly group: ModelGroup;
  /** What the model is, in a few words (shape, tokens). */
  readonly describe: string;
  /** The PyTorch reference model of the same shape (bench/torch_reference.py), that `× torch forward` divides by. */
  readonly torchModel?: string;
  load(root: string): Promise<{ model: ClassifierModel; input: ModelInput; note: string }>;
}

export const SHIPPED = ['image-softmax', 'image-sparsemax', 'image-entmax15', 'text-softmax', 'text-sparsemax', 'text-entmax15'] as const;

/** BERT-base (bert-base-uncased's shape) with a 2-class head. */
export const BERT_BASE: BertConfig = {
  flavour: 'bert',
  vocabSize: 30522,
  dim: 768,
  depth: 12,
  heads: 12,
  mlpDim: 3072,
  maxPositions: 512,
  typeVocabSize: 2,
  lnEps: 1e-12,
  numClasses: 2,
  padTokenId: 0,
  poolerActivation: 'tanh',
};

/** A BERT-style classifier with random weights, as randomViT does for ViTs (N(0, std) linears, small biases). */
export function randomBert(cfg: BertConfig, seed = 0, std = 0.02): BertModel {
  const next = rng(seed);
  const weights = buildBertWeights(cfg, {
    linear: (out, inDim) => normals(out * inDim, std, next),
    bias: (n) => normals(n, 0.02, next),
    gamma: (n) => normals(n, 0.02, next).map((g) => 1 + g),
    beta: (n) => normals(n, 0.02, next),
    embedding: (n) => normals(n, std, next),
  });
  return new BertModel('random-bert', cfg, weights, Array.from({ length: cfg.numClasses }, (_, i) => `class ${i}`));
}

/** [CLS], T − 2 random word-piece ids (seeded, away from the special ids), [SEP]; no padding. */
export function randomTokens(T: number, vocab: number, seed = 2): ModelInput {
  const next = rng(seed);
  const ids = Array.from({ length: T }, (_, i) => (i === 0 ? 101 : i === T - 1 ? 102 : 1000 + Math.floor(next() * (vocab - 1000))));
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, [1, T], 'int32'),
    attentionMask: tf.tensor2d(new Int32Array(T).fill(1), [1, T], 'int32'),
    typeIds: tf.zeros([1, T], 'int32') as Tensor2D,
  };
}

function shipped(id: (typeof SHIPPED)[number]): BenchModelSpec {
  const image = id.startsWith('image');
  return {
    id,
    group: 'shipped',
    describe: image ? `shipped: 64², patch 8, 4 × 64, ${id.slice(6)} (65 tokens)` : `shipped: BERT 4 × 64, ${id.slice(5)}`,
    // bench/torch_reference.py's model of the same shape and attention normaliser.
    torchModel: `${image ? 'vit' : 'bert'}-small${id.endsWith('softmax') ? '' : id.slice(id.lastIndexOf('-'))}`,
    async load(root) {
      const model = await loadModel(path.join(root, 'models', id));
      if (image) {
        const m = model as ViTModel;
        const s = imageTask(HELD_OUT_SEED, { variant: 'single', patchSize: m.config.patchSize }).sample(5_000_000);
        return { model, input: imageToInput(m, { width: s.width, height: s.height, data: s.rgb }).input, note: `held-out task sample (${s.labelName})` };
      }
      const s = textTask(HELD_OUT_SEED, { variant: 'single' }).sample(5_000_000);
      const { input } = encodeText(model as BertModel, s.text);
      return { model, input, note: `held-out task sample "${s.text}" (${input.kind === 'tokens' ? input.ids.shape[1] : '?'} tokens)` };
    },
  };
}

export const BENCH_MODELS: readonly BenchModelSpec[] = [
  {
    id: 'golden-vit',
    group: 'tiny',
    describe: 'golden vit-tiny-a: 32², patch 8, 3 × 32 (17 tokens)',
    async load(root) {
      const dir = path.join(root, 'test', 'fixtures', 'golden', 'vit-tiny-a');
      const model = await loadModel(dir);
      const t = await readJsonTensor(path.join(dir, 'img0.json'));
      return { model, input: { kind: 'image', pixels: tf.tensor4d(t.data, t.shape as [number, number, number, number]) as Tensor4D }, note: 'golden input img0' };
    },
  },
  {
    id: 'golden-bert',
    group: 'tiny',
    describe: 'golden bert-tiny-a: 3 × 32, 12 tokens',
    async load(root) {
      const dir = path.join(root, 'test', 'fixtures', 'golden', 'bert-tiny-a');
      const model = await loadModel(dir);
      const golden = JSON.parse(await fs.readFile(path.join(dir, 'golden.json'), 'utf8')) as {
        inputs: Array<{ id: string; input_ids: { data: number[] }; attention_mask: { data: number[] } }>;
      };
      const g = golden.inputs[0]!;
      const T = g.input_ids.data.length;
      const input: ModelInput = {
        kind: 'tokens',
        ids: tf.tensor2d(g.input_ids.data, [1, T], 'int32'),
        attentionMask: tf.tensor2d(g.attention_mask.data, [1, T], 'int32'),
        typeIds: tf.zeros([1, T], 'int32') as Tensor2D,
      };
      return { model, input, note: `golden input ${g.id}` };
    },
  },
  ...SHIPPED.map(shipped),
  {
    id: 'vit-b16',
    group: 'big',
    describe: 'ViT-B/16, random weights: 224², 12 × 768, 12 heads (197 tokens)',
    torchModel: 'vit-b16',
    async load() {
      const model = randomViT(VIT_B16, { seed: 1 });
      return { model, input: { kind: 'image', pixels: tf.randomNormal([1, 3, 224, 224], 0, 1, 'float32', 1) as Tensor4D }, note: 'N(0, 1) pixels' };
    },
  },
  {
    id: 'bert-base',
    group: 'big',
    describe: 'BERT-base, random weights: 128 tokens, 12 × 768, 12 heads, vocab 30522',
    torchModel: 'bert-base',
    async load() {
      return { model: randomBert(BERT_BASE, 2), input: randomTokens(128, BERT_BASE.vocabSize), note: '128 random word-piece ids' };
    },
  },
];

/** Model ids from a list that may name groups (tiny, shipped, big, all). */
export function resolveModels(list: string): BenchModelSpec[] {
  const out: BenchModelSpec[] = [];
  for (const name of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const alias: Record<string, string> = { golden: 'golden-vit', vitb: 'vit-b16', 'vit-b': 'vit-b16', bert: 'bert-base' };
    const id = alias[name] ?? name;
    const picked = id === 'all' ? BENCH_MODELS : BENCH_MODELS.filter((m) => m.id === id || m.group === id);
    if (picked.length === 0) throw new Error(`unknown bench model '${name}' (${BENCH_MODELS.map((m) => m.id).join(', ')}, or tiny, shipped, big, all)`);
    for (const m of picked) if (!out.includes(m)) out.push(m);
  }
  return out;
}
