import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { BertModel } from '../src/core/models/bert.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/core/io/safetensors.js';
import { expectClose, tensor } from './helpers/golden.js';
import { BERT_DIR, bertGolden as golden, tokensOf, disposeTokens } from './helpers/bert.js';

let tmp: string;
let bert: Record<string, TensorToWrite>;
let config: Record<string, unknown>;
const D = 32;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-bert-'));
  const st = await readSafetensors(path.join(BERT_DIR, 'weights.safetensors'));
  bert = Object.fromEntries([...st.tensors.values()].map((t) => [t.name, { shape: t.shape, data: st.getFloat32(t.name) }]));
  config = JSON.parse(await fs.readFile(path.join(BERT_DIR, 'config.json'), 'utf8'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function folder(name: string, cfg: unknown, tensors: Record<string, TensorToWrite>) {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

const rename = (from: string, to: string) =>
  Object.fromEntries(Object.entries(bert).filter(([k]) => k.startsWith(from)).map(([k, v]) => [to + k.slice(from.length), v]));

async function logits(dir: string, i: number) {
  const model = await loadModel(dir);
  const input = tokensOf(i);
  const out = model.predict(input);
  const v = Array.from(out.dataSync());
  tf.dispose(out);
  disposeTokens(input);
  model.dispose();
  return v;
}

describe('RoBERTa and DistilBERT classifiers (same computation, other names)', () => {
  it('RoBERTa: positions from padding_idx + 1, classifier.dense + out_proj: same logits as the golden BERT', async () => {
    // RoBERTa numbers non-pad tokens from pad + 1 (= 1 here): shift the position table by one row.
    const pos = bert['bert.embeddings.position_embeddings.weight']!.data;
    const shifted = new Float32Array(33 * D);
    shifted.set(pos, D);
    const type0 = bert['bert.embeddings.token_type_embeddings.weight']!.data.slice(0, D);
    const tensors = {
      ...rename('bert.embeddings.', 'roberta.embeddings.'),
      ...rename('bert.encoder.', 'roberta.encoder.'),
      'roberta.embeddings.position_embeddings.weight': { shape: [33, D], data: shifted },
      'roberta.embeddings.token_type_embeddings.weight': { shape: [1, D], data: type0 },
      'classifier.dense.weight': bert['bert.pooler.dense.weight']!,
      'classifier.dense.bias': bert['bert.pooler.dense.bias']!,
      'classifier.out_proj.weight': bert['classifier.weight']!,
      'classifier.out_proj.bias': bert['classifier.bias']!,
    };
    const dir = await folder('roberta', { ...config, model_type: 'roberta', max_position_embeddings: 33, type_vocab_size: 1, pad_token_id: 0 }, tensors);
    for (const i of [0, 2]) expectClose(await logits(dir, i), tensor(golden.results[i].logits).data, 1e-5, `roberta logits ${i}`);
  });

  it('DistilBERT: q_lin/k_lin/…, no segments, ReLU pre_classifier: same logits as the golden BERT with a ReLU pooler', async () => {
    const layer = (l: number, a: string, b: string) => ({
      [`distilbert.transformer.layer.${l}.${b}.weight`]: bert[`bert.encoder.layer.${l}.${a}.weight`]!,
      [`distilbert.transformer.layer.${l}.${b}.bias`]: bert[`bert.encoder.layer.${l}.${a}.bias`]!,
    });
    const pos = bert['bert.embeddings.position_embeddings.weight']!.data;
    const type0 = bert['bert.embeddings.token_type_embeddings.weight']!.data;
    // DistilBERT has no segment embeddings: fold segment 0 into the positions so the sums agree.
    const folded = pos.map((v, k) => v + type0[k % D]!);
    let tensors: Record<string, TensorToWrite> = {
      'distilbert.embeddings.word_embeddings.weight': bert['bert.embeddings.word_embeddings.weight']!,
      'distilbert.embeddings.position_embeddings.weight': { shape: [32, D], data: folded },
      'distilbert.embeddings.LayerNorm.weight': bert['bert.embeddings.LayerNorm.weight']!,
      'distilbert.embeddings.LayerNorm.bias': bert['bert.embeddings.LayerNorm.bias']!,
      'pre_classifier.weight': bert['bert.pooler.dense.weight']!,
      'pre_classifier.bias': bert['bert.pooler.dense.bias']!,
      'classifier.weight': bert['classifier.weight']!,
      'classifier.bias': bert['classifier.bias']!,
    };
    for (let l = 0; l < 3; l++) {
      tensors = {
        ...tensors,
        ...layer(l, 'attention.self.query', 'attention.q_lin'),
        ...layer(l, 'attention.self.key', 'attention.k_lin'),
        ...layer(l, 'attention.self.value', 'attention.v_lin'),
        ...layer(l, 'attention.output.dense', 'attention.out_lin'),
        ...layer(l, 'attention.output.LayerNorm', 'sa_layer_norm'),
        ...layer(l, 'intermediate.dense', 'ffn.lin1'),
        ...layer(l, 'output.dense', 'ffn.lin2'),
        ...layer(l, 'output.LayerNorm', 'output_layer_norm'),
      };
    }
    const dir = await folder('distil', { model_type: 'distilbert', vocab_size: 50, dim: 32, n_layers: 3, n_heads: 4, hidden_dim: 64, max_position_embeddings: 32, activation: 'gelu', pad_token_id: 0, id2label: { 0: 'neg', 1: 'pos' } }, tensors);
    const golden = await loadModel(BERT_DIR);
    const reluBert = new BertModel('relu', { ...(golden as BertModel).config, poolerActivation: 'relu' }, (golden as BertModel).weights, ['neg', 'pos']);
    const input = tokensOf(1);
    const expected = Array.from(reluBert.predict(input).dataSync());
    disposeTokens(input);
    golden.dispose();
    expectClose(await logits(dir, 1), expected, 1e-5, 'distilbert logits');
    const m = await loadModel(dir);
    expect(m.labels).toEqual(['neg', 'pos']);
    m.dispose();
  });
});
