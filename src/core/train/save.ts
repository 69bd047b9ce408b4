/**
 * Writing models in the HuggingFace layouts our loaders read (ViTForImageClassification,
 * BertForSequenceClassification), so a trained model is an ordinary model folder: any tool that reads
 * HF checkpoints reads ours, and our checkpoints resume through the normal loader.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Tensor } from '../tf.js';
import type { Linear, LayerNorm } from '../ops.js';
import { transposeMatrix } from '../models/weights.js';
import type { ViTModel } from '../models/vit.js';
import type { BertModel } from '../models/bert.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { hfPreprocessorConfig } from '../image/preprocessing-config.js';
import type { Tokenizer } from '../text/tokenizer.js';

type Named = Record<string, TensorToWrite>;

const values = (t: Tensor) => Float32Array.from(t.dataSync() as Float32Array);

/** A Linear back in PyTorch layout ([out, in] weight), optionally cut into column blocks (q, k, v). */
function linearParts(l: Linear, parts = 1): Array<{ weight: TensorToWrite; bias: TensorToWrite | null }> {
  const [inDim, outDim] = l.wT.shape;
  const w = transposeMatrix(values(l.wT), inDim, outDim); // [out, in]
  const b = l.b ? values(l.b) : null;
  const n = outDim / parts;
  return Array.from({ length: parts }, (_, i) => ({
    weight: { shape: [n, inDim], data: w.slice(i * n * inDim, (i + 1) * n * inDim) },
    bias: b ? { shape: [n], data: b.slice(i * n, (i + 1) * n) } : null,
  }));
}

function putLinear(out: Named, name: string, l: Linear): void {
  const [p] = linearParts(l);
  out[`${name}.weight`] = p!.weight;
  if (p!.bias) out[`${name}.bias`] = p!.bias;
}

/** Our fused q|k|v Linear as the three Linears HF checkpoints keep (`${prefix}.query`, …). */
function putQkv(out: Named, prefix: string, qkv: Linear): void {
  linearParts(qkv, 3).forEach((part, i) => {
    const k = ['query', 'key', 'value'][i];
    out[`${prefix}.${k}.weight`] = part.weight;
    if (part.bias) out[`${prefix}.${k}.bias`] = part.bias;
  });
}

function putNorm(out: Named, name: string, n: LayerNorm): void {
  out[`${name}.weight`] = { shape: [n.gamma.shape[0]], data: values(n.gamma) };
  out[`${name}.bias`] = { shape: [n.beta.shape[0]], data: values(n.beta) };
}

function labelMaps(labels: readonly string[]) {
  return {
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(file, JSON.stringify(value, null, 2) + '\n');
}

export async function saveViT(model: ViTModel, dir: string, extraConfig: Record<string, unknown> = {}): Promise<void> {
  const { config: c, weights: W } = model;
  if (c.pooling !== 'cls' || c.prefixTokens !== 1) throw new Error('saving distilled DeiT models is not supported');
  const D = c.dim;
  const out: Named = {};
  const T = model.tokens;
  out['vit.embeddings.cls_token'] = { shape: [1, 1, D], data: values(W.prefix) };
  out['vit.embeddings.position_embeddings'] = { shape: [1, T, D], data: values(W.posEmbed) };
  const [patch] = linearParts(W.patchEmbed);
  out['vit.embeddings.patch_embeddings.projection.weight'] = { shape: [D, c.channels, c.patchSize, c.patchSize], data: patch!.weight.data };
  out['vit.embeddings.patch_embeddings.projection.bias'] = patch!.bias!;
  W.blocks.forEach((b, l) => {
    const p = `vit.encoder.layer.${l}`;
    putQkv(out, `${p}.attention.attention`, b.attn.qkv);
    putLinear(out, `${p}.attention.output.dense`, b.attn.proj);
    putNorm(out, `${p}.layernorm_before`, b.norm1);
    putNorm(out, `${p}.layernorm_after`, b.norm2);
    putLinear(out, `${p}.intermediate.dense`, b.mlp.fc1);
    putLinear(out, `${p}.output.dense`, b.mlp.fc2);
  });
  putNorm(out, 'vit.layernorm', W.norm);
  putLinear(out, 'classifier', W.heads[0]!);
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), out, { format: 'pt' });
  await writeJson(path.join(dir, 'config.json'), {
    model_type: 'vit',
    architectures: ['ViTForImageClassification'],
    hidden_size: D,
    num_hidden_layers: c.depth,
    num_attention_heads: c.heads,
    intermediate_size: c.mlpDim,
    hidden_act: 'gelu',
    image_size: c.imageSize[0] === c.imageSize[1] ? c.imageSize[0] : c.imageSize,
    patch_size: c.patchSize,
    num_channels: c.channels,
    qkv_bias: c.qkvBias,
    layer_norm_eps: c.lnEps,
    attention_normaliser: c.attention ?? 'softmax',
    ...labelMaps(model.labels),
    ...extraConfig,
  });
  await writeJson(path.join(dir, 'preprocessor_config.json'), hfPreprocessorConfig(model.preprocessing));
}

/** vocab.txt, tokenizer_config.json and an equivalent tokenizer.json (WordPiece, BERT normaliser). */
export async function saveTokenizer(tokenizer: Tokenizer, dir: string, maxLength: number): Promise<void> {
  const vocab = Array.from({ length: tokenizer.vocabSize }, (_, i) => tokenizer.idToToken(i));
  await fs.writeFile(path.join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  const s = tokenizer.special;
  await writeJson(path.join(dir, 'tokenizer_config.json'), {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: maxLength,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  });
  const special = [s.pad, s.unk, s.cls, s.sep, ...(s.mask !== null ? [s.mask] : [])];
  await writeJson(path.join(dir, 'tokenizer.json'), {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((id) => ({ id, content: tokenizer.idToToken(id), single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', s.sep], cls: ['[CLS]', s.cls] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  });
}

export async function saveBert(model: BertModel, dir: string, extraConfig: Record<string, unknown> = {}): Promise<void> {
  const { config: c, weights: W } = model;
  if (c.flavour !== 'bert') throw new Error('only BERT-flavoured models are saved');
  const D = c.dim;
  const out: Named = {};
  out['bert.embeddings.word_embeddings.weight'] = { shape: [c.vocabSize, D], data: values(W.wordEmbeddings) };
  out['bert.embeddings.position_embeddings.weight'] = { shape: [c.maxPositions, D], data: values(W.positionEmbeddings) };
  if (W.typeEmbeddings) out['bert.embeddings.token_type_embeddings.weight'] = { shape: [c.typeVocabSize, D], data: values(W.typeEmbeddings) };
  putNorm(out, 'bert.embeddings.LayerNorm', W.embeddingNorm);
  W.layers.forEach((layer, l) => {
    const p = `bert.encoder.layer.${l}`;
    putQkv(out, `${p}.attention.self`, layer.attn.qkv);
    putLinear(out, `${p}.attention.output.dense`, layer.attn.proj);
    putNorm(out, `${p}.attention.output.LayerNorm`, layer.norm1);
    putLinear(out, `${p}.intermediate.dense`, layer.mlp.fc1);
    putLinear(out, `${p}.output.dense`, layer.mlp.fc2);
    putNorm(out, `${p}.output.LayerNorm`, layer.norm2);
  });
  putLinear(out, 'bert.pooler.dense', W.pooler);
  putLinear(out, 'classifier', W.classifier);
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), out, { format: 'pt' });
  await writeJson(path.join(dir, 'config.json'), {
    model_type: 'bert',
    architectures: ['BertForSequenceClassification'],
    vocab_size: c.vocabSize,
    hidden_size: D,
    num_hidden_layers: c.depth,
    num_attention_heads: c.heads,
    intermediate_size: c.mlpDim,
    hidden_act: 'gelu',
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.lnEps,
    pad_token_id: c.padTokenId,
    attention_normaliser: c.attention ?? 'softmax',
    ...labelMaps(model.labels),
    ...extraConfig,
  });
  if (model.tokenizer) await saveTokenizer(model.tokenizer, dir, c.maxPositions);
}
