import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { readSafetensors, encodeSafetensors, writeSafetensors, type TensorToWrite } from '../src/core/io/safetensors.js';
import type { ViTModel } from '../src/core/models/vit.js';
import { GOLDEN_DIR, loadGolden, tensor } from './helpers/golden.js';
import { relprop } from './helpers/cli.js';
import { checkFinite } from '../src/core/models/weights.js';
import { BERT_DIR } from './helpers/bert.js';
import { tinyGpt2, writeGpt2Folder } from './helpers/gpt2-reference.js';

const GOLDEN_VIT = path.join(GOLDEN_DIR, 'vit-tiny-a');
const golden = loadGolden('vit-tiny-a');
let tmp: string;
let timm: Record<string, TensorToWrite>;
let timmConfig: Record<string, unknown>;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-ckpt-'));
  const st = await readSafetensors(path.join(GOLDEN_VIT, 'weights.safetensors'));
  timm = Object.fromEntries([...st.tensors.values()].map((t) => [t.name, { shape: t.shape, data: st.getFloat32(t.name) }]));
  timmConfig = JSON.parse(await fs.readFile(path.join(GOLDEN_VIT, 'config.json'), 'utf8'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function writeFolder(name: string, config: unknown, tensors: Record<string, TensorToWrite>, file = 'model.safetensors'): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  await writeSafetensors(path.join(dir, file), tensors);
  return dir;
}

/** The golden timm weights renamed into HuggingFace's ViTForImageClassification layout (qkv split). */
function toHF(src: Record<string, TensorToWrite>, prefix = 'vit'): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  const D = 32;
  const put = (name: string, t: TensorToWrite) => (out[name] = t);
  put(`${prefix}.embeddings.cls_token`, src['cls_token']!);
  put(`${prefix}.embeddings.position_embeddings`, src['pos_embed']!);
  put(`${prefix}.embeddings.patch_embeddings.projection.weight`, src['patch_embed.proj.weight']!);
  put(`${prefix}.embeddings.patch_embeddings.projection.bias`, src['patch_embed.proj.bias']!);
  for (let l = 0; l < 3; l++) {
    const hf = `${prefix}.encoder.layer.${l}`;
    const b = `blocks.${l}`;
    const rename: Record<string, string> = {
      norm1: 'layernorm_before',
      norm2: 'layernorm_after',
      'attn.proj': 'attention.output.dense',
      'mlp.fc1': 'intermediate.dense',
      'mlp.fc2': 'output.dense',
    };
    for (const [from, to] of Object.entries(rename)) {
      put(`${hf}.${to}.weight`, src[`${b}.${from}.weight`]!);
      put(`${hf}.${to}.bias`, src[`${b}.${from}.bias`]!);
    }
    const w = src[`${b}.attn.qkv.weight`]!.data;
    const bias = src[`${b}.attn.qkv.bias`]!.data;
    ['query', 'key', 'value'].forEach((k, i) => {
      put(`${hf}.attention.attention.${k}.weight`, { shape: [D, D], data: w.slice(i * D * D, (i + 1) * D * D) });
      put(`${hf}.attention.attention.${k}.bias`, { shape: [D], data: bias.slice(i * D, (i + 1) * D) });
    });
  }
  put(`${prefix}.layernorm.weight`, src['norm.weight']!);
  put(`${prefix}.layernorm.bias`, src['norm.bias']!);
  put('classifier.weight', src['head.weight']!);
  put('classifier.bias', src['head.bias']!);
  return out;
}

const hfConfig = (eps: number) => ({
  model_type: 'vit',
  architectures: ['ViTForImageClassification'],
  hidden_size: 32,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  intermediate_size: 64,
  hidden_act: 'gelu',
  image_size: 32,
  patch_size: 8,
  num_channels: 3,
  qkv_bias: true,
  layer_norm_eps: eps,
  id2label: { 0: 'zero', 1: 'one', 2: 'two', 3: 'three', 4: 'four' },
});

async function logitsOf(dir: string, pixels: tf.Tensor4D): Promise<Float32Array> {
  const model = await loadModel(dir);
  const fwd = model.forward({ kind: 'image', pixels });
  const out = fwd.logits.dataSync() as Float32Array;
  tf.dispose(fwd as unknown as tf.TensorContainer);
  model.dispose();
  return out;
}

describe('checkpoint layouts', () => {
  it('HuggingFace ViTForImageClassification layout gives the same logits as the timm layout', async () => {
    const t = tensor(golden.inputs[1].pixel_values);
    const pixels = tf.tensor4d(t.data, t.shape as [number, number, number, number]);
    // HF has one LayerNorm eps; give the timm copy the same eps everywhere so the two must agree bit for bit.
    const timmDir = await writeFolder('timm-eps', { ...timmConfig, ln_eps_final: 1e-6 }, timm);
    const hfDir = await writeFolder('hf', hfConfig(1e-6), toHF(timm));
    const a = await logitsOf(timmDir, pixels);
    const b = await logitsOf(hfDir, pixels);
    expect(Array.from(b)).toEqual(Array.from(a));
    const model = await loadModel(hfDir);
    expect(model.labels).toEqual(['zero', 'one', 'two', 'three', 'four']);
    model.dispose();
    pixels.dispose();
  });

  it('DeiT with a distillation token: HF (WithTeacher) and timm layouts agree, logits are the mean of both heads', async () => {
    const D = 32;
    const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i) * 0.3);
    const pos = new Float32Array(18 * D);
    pos.set(timm['pos_embed']!.data.slice(0, D), 0);
    pos.set(rnd(D, 1), D);
    pos.set(timm['pos_embed']!.data.slice(D), 2 * D);
    const deitTimm: Record<string, TensorToWrite> = {
      ...timm,
      dist_token: { shape: [1, 1, D], data: rnd(D, 2) },
      pos_embed: { shape: [1, 18, D], data: pos },
      'head_dist.weight': { shape: [5, D], data: rnd(5 * D, 3) },
      'head_dist.bias': { shape: [5], data: rnd(5, 4) },
    };
    const hf = toHF(deitTimm, 'deit');
    hf['deit.embeddings.distillation_token'] = deitTimm['dist_token']!;
    hf['deit.embeddings.position_embeddings'] = deitTimm['pos_embed']!;
    hf['cls_classifier.weight'] = hf['classifier.weight']!;
    hf['cls_classifier.bias'] = hf['classifier.bias']!;
    delete hf['classifier.weight'];
    delete hf['classifier.bias'];
    hf['distillation_classifier.weight'] = deitTimm['head_dist.weight']!;
    hf['distillation_classifier.bias'] = deitTimm['head_dist.bias']!;
    const timmDir = await writeFolder('deit-timm', { ...timmConfig, ln_eps_final: 1e-6 }, deitTimm);
    const hfDir = await writeFolder('deit-hf', { ...hfConfig(1e-6), model_type: 'deit' }, hf);
    const t = tensor(golden.inputs[0].pixel_values);
    const pixels = tf.tensor4d(t.data, t.shape as [number, number, number, number]);
    const a = await logitsOf(timmDir, pixels);
    const b = await logitsOf(hfDir, pixels);
    expect(Array.from(b)).toEqual(Array.from(a));
    const model = (await loadModel(hfDir)) as ViTModel;
    expect(model.tokens).toBe(18);
    expect(model.prefixTokens).toBe(2);
    // The mean of the two heads, recomputed from the pooled CLS and distillation rows.
    const fwd = model.forward({ kind: 'image', pixels });
    const rec = fwd.record as { pooled: readonly tf.Tensor2D[] };
    const [cls, dist] = rec.pooled.map((p) => p.dataSync());
    const w1 = deitTimm['head.weight']!.data, b1 = deitTimm['head.bias']!.data;
    const w2 = deitTimm['head_dist.weight']!.data, b2 = deitTimm['head_dist.bias']!.data;
    for (let c = 0; c < 5; c++) {
      let z1 = b1[c]!, z2 = b2[c]!;
      for (let j = 0; j < D; j++) { z1 += w1[c * D + j]! * cls![j]!; z2 += w2[c * D + j]! * dist![j]!; }
      expect(b[c]!).toBeCloseTo((z1 + z2) / 2, 5);
    }
    tf.dispose(fwd as unknown as tf.TensorContainer);
    model.dispose();
    pixels.dispose();
  });
});

describe('bad checkpoints give their own clear error', () => {
  it('truncated safetensors file', async () => {
    const dir = await writeFolder('trunc', timmConfig, timm);
    const file = path.join(dir, 'model.safetensors');
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 100));
    await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors.*(truncated|past the end|needs)/i);
  });

  it('header length past the end of the file', async () => {
    const dir = await writeFolder('hdr', timmConfig, timm);
    const file = path.join(dir, 'model.safetensors');
    const bytes = new Uint8Array(await fs.readFile(file));
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, BigInt(bytes.length + 10), true);
    await fs.writeFile(file, bytes);
    await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors.*header/i);
  });

  it('overlapping tensor offsets', async () => {
    const bytes = encodeSafetensors({ a: { shape: [4], data: new Float32Array(4) }, b: { shape: [4], data: new Float32Array(4) } });
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    header.b.data_offsets = [8, 24];
    const text = JSON.stringify(header).padEnd(n, ' ');
    expect(text.length).toBe(n);
    const bad = new Uint8Array(bytes);
    bad.set(new TextEncoder().encode(text), 8);
    const dir = path.join(tmp, 'overlap');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(timmConfig));
    await fs.writeFile(path.join(dir, 'model.safetensors'), bad);
    await expect(loadModel(dir)).rejects.toThrow(/overlap/i);
  });

  it('a tensor of the wrong shape names the tensor and both shapes', async () => {
    const bad = { ...timm, 'blocks.1.mlp.fc1.weight': { shape: [48, 32], data: new Float32Array(48 * 32) } };
    const dir = await writeFolder('shape', timmConfig, bad);
    await expect(loadModel(dir)).rejects.toThrow(/'blocks\.1\.mlp\.fc1\.weight' has shape \[48, 32\] but .*config\.json implies \[64, 32\]/);
  });

  it('a missing tensor is named, with the shape expected', async () => {
    const bad = { ...timm };
    delete bad['blocks.2.attn.proj.bias'];
    const dir = await writeFolder('missing', timmConfig, bad);
    await expect(loadModel(dir)).rejects.toThrow(/'blocks\.2\.attn\.proj\.bias' is missing .*\[32\]/);
  });


  it('an integer or bool dtype on a float parameter (same bytes, reinterpreted) is an error naming the tensor and file', async () => {
    for (const dtype of ['I32', 'U32', 'I16']) {
      const dir = await writeFolder(`dtype-${dtype}`, timmConfig, dtype === 'I16' ? { ...timm, 'head.bias': { shape: [5], dtype: 'F16', data: timm['head.bias']!.data } } : timm);
      const file = path.join(dir, 'model.safetensors');
      const bytes = new Uint8Array(await fs.readFile(file));
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      const from = `"head.bias":{"dtype":"${dtype === 'I16' ? 'F16' : 'F32'}"`;
      expect(text).toContain(from);
      bytes.set(new TextEncoder().encode(text.replace(from, `"head.bias":{"dtype":"${dtype}"`)), 8);
      await fs.writeFile(file, bytes);
      await expect(loadModel(dir)).rejects.toThrow(
        new RegExp(`model\\.safetensors: tensor 'head\\.bias' has dtype ${dtype}, but a model parameter must be floating point`),
      );
    }
  });

  it('NaN or Inf in a weight is an error naming the tensor, where it sits, and the file', async () => {
    const w = timm['blocks.1.mlp.fc1.weight']!;
    const nan = new Float32Array(w.data);
    nan[3 * 32 + 7] = NaN;
    nan[40 * 32] = Infinity;
    let dir = await writeFolder('nan', timmConfig, { ...timm, 'blocks.1.mlp.fc1.weight': { shape: w.shape, data: nan } });
    const before = tf.memory().numTensors;
    await expect(loadModel(dir)).rejects.toThrow(
      /nan[/\\]model\.safetensors: tensor 'blocks\.1\.mlp\.fc1\.weight' \[64, 32\] has 2 non-finite values; the first is NaN at index \[3, 7\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
    // F16 overflow on the writer's side is stored as an infinity: the same error.
    const bias = new Float32Array(timm['head.bias']!.data);
    bias[2] = 1e6;
    dir = await writeFolder('inf-f16', timmConfig, { ...timm, 'head.bias': { shape: [5], dtype: 'F16', data: bias } });
    await expect(loadModel(dir)).rejects.toThrow(/tensor 'head\.bias' \[5\] has 1 non-finite value; the first is \+Inf at index \[2\]/);
    // A norm gain: every element matters, as in the weights above.
    const gamma = new Float32Array(timm['norm.weight']!.data);
    gamma[31] = -Infinity;
    dir = await writeFolder('inf-norm', timmConfig, { ...timm, 'norm.weight': { shape: [32], data: gamma } });
    await expect(loadModel(dir)).rejects.toThrow(/tensor 'norm\.weight' \[32\] has 1 non-finite value; the first is -Inf at index \[31\]/);
  });

  it('the CLI reports a NaN weight with exit code 1 and the cause, no stack trace', async () => {
    const w = new Float32Array(timm['pos_embed']!.data);
    w[5] = NaN;
    const dir = await writeFolder('nan-cli', timmConfig, { ...timm, pos_embed: { shape: [1, 17, 32], data: w } });
    const r = await relprop('explain', '--model', dir, '--tensor', path.join(GOLDEN_VIT, 'img0.json'), '--method', 'rollout');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.safetensors: tensor 'pos_embed' \[1, 17, 32\] has 1 non-finite value; the first is NaN at index \[0, 0, 5\]/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an F64 weight beyond float32 range is named as an overflow of the narrowing', () => {
    expect(() => checkFinite(new Float32Array([1, Infinity]), 'w', [2], 'F64', 'f.safetensors')).toThrow(
      /^f\.safetensors: tensor 'w' \[2\] has 1 non-finite value \(after narrowing F64 to float32: values beyond ±3\.4e38 overflow\); the first is \+Inf at index \[1\]/,
    );
    expect(() => checkFinite(new Float32Array([1, -0, 3e38]), 'w', [3], 'F32', 'f.safetensors')).not.toThrow();
  });

  it('the CLI prints each inferred value on stderr with its override', async () => {
    const dir = await writeFolder('hub-cli', { architecture: 'vit_large_patch8_32', num_classes: 5 }, timm);
    const r = await relprop('explain', '--model', dir, '--tensor', path.join(GOLDEN_VIT, 'img0.json'), '--method', 'rollout');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`inferred 16 attention heads from the word 'large' in the timm architecture name 'vit_large_patch8_32' (the weights cannot tell; set "num_heads" in config.json to override)`);
  });

  it('an unknown model type', async () => {
    const dir = await writeFolder('unknown', { ...timmConfig, model_type: 'resnet' }, timm);
    await expect(loadModel(dir)).rejects.toThrow(/unknown model_type 'resnet' \(supported: vit, deit/);
  });

  it('no config, bad JSON config, no weights, not a folder', async () => {
    const empty = path.join(tmp, 'empty');
    await fs.mkdir(empty, { recursive: true });
    await expect(loadModel(empty)).rejects.toThrow(/config\.json: cannot read \(ENOENT\)/);
    await fs.writeFile(path.join(empty, 'config.json'), '{ not json');
    await expect(loadModel(empty)).rejects.toThrow(/config\.json: not valid JSON/);
    await fs.writeFile(path.join(empty, 'config.json'), JSON.stringify(timmConfig));
    await expect(loadModel(empty)).rejects.toThrow(/no \*\.safetensors file/);
    await expect(loadModel(path.join(tmp, 'nowhere'))).rejects.toThrow(/model folder not found/);
  });
});

describe('config.json and the weights must agree', () => {
  const err = async (dir: string, message: RegExp) => {
    const before = tf.memory().numTensors;
    await expect(loadModel(dir)).rejects.toThrow(message);
    // A failed load must not leave the tensors it had already made behind.
    expect(tf.memory().numTensors).toBe(before);
  };

  it('layer count: more in the config than in the weights, and fewer (which used to drop a block with a warning)', async () => {
    await err(await writeFolder('depth4', { ...timmConfig, depth: 4 }, timm), /depth4[/\\]config\.json: depth is 4 but the weights have 3 layers \('blocks\.N\.\*' for N = 0 … 2 in .*model\.safetensors\)/);
    await err(await writeFolder('depth2', { ...timmConfig, depth: 2 }, timm), /config\.json: depth is 2 but the weights have 3 layers/);
    await err(await writeFolder('hf-depth2', { ...hfConfig(1e-6), num_hidden_layers: 2 }, toHF(timm)), /config\.json: num_hidden_layers is 2 but the weights have 3 layers \('vit\.encoder\.layer\.N\.\*'/);
  });

  it('class count: num_labels, num_classes and id2label against the head', async () => {
    await err(await writeFolder('hf-labels', { ...hfConfig(1e-6), num_labels: 7 }, toHF(timm)), /config\.json: num_labels is 7 but the weights have 5 classes \('classifier\.weight' \[5, 32\] in .*model\.safetensors\)/);
    const { 3: _three, 4: _four, ...three } = hfConfig(1e-6).id2label;
    await err(await writeFolder('hf-id2label', { ...hfConfig(1e-6), id2label: three }, toHF(timm)), /config\.json: id2label has 3 labels but the classification head in .*model\.safetensors has 5 classes/);
    await err(await writeFolder('hf-id2label-key', { ...hfConfig(1e-6), id2label: { ...three, 3: 'x', 5: 'y' } }, toHF(timm)), /id2label key '5' is not a class id 0 … 4/);
    await err(await writeFolder('timm-classes', { ...timmConfig, num_classes: 6 }, timm), /config\.json: num_classes is 6 but the weights have 5 classes \('head\.weight' \[5, 32\]/);
    await err(await writeFolder('timm-label-names', { ...timmConfig, label_names: ['a', 'b'] }, timm), /label_names has 2 labels but the classification head .* has 5 classes/);
  });

  it('sizes the weights tell: width, MLP, patch, image size (via the position embeddings), qkv bias', async () => {
    await err(await writeFolder('hf-mlp', { ...hfConfig(1e-6), intermediate_size: 48 }, toHF(timm)), /config\.json: intermediate_size is 48 but the weights have 64 MLP units \('vit\.encoder\.layer\.0\.intermediate\.dense\.weight' \[64, 32\]/);
    await err(await writeFolder('hf-image', { ...hfConfig(1e-6), image_size: 48 }, toHF(timm)), /config\.json: image_size 48×48 with patch size 8 and 1 prefix token: the token count is 37 but the weights have 17 position embeddings/);
    await err(await writeFolder('timm-patch', { ...timmConfig, patch_size: 4 }, timm), /config\.json: patch_size is 4 but the weights have 8 pixels of patch side/);
    await err(await writeFolder('timm-dim', { ...timmConfig, embed_dim: 48 }, timm), /config\.json: embed_dim is 48 but the weights have 32 channels of width/);
    await err(await writeFolder('timm-qkv', { ...timmConfig, qkv_bias: false }, timm), /config\.json: qkv_bias is false but the weights have query\/key\/value biases \('blocks\.0\.attn\.qkv\.bias'/);
  });

  it('BERT and GPT-2: layers, vocabulary, positions', async () => {
    const st = await readSafetensors(path.join(BERT_DIR, 'weights.safetensors'));
    const bert = Object.fromEntries([...st.tensors.values()].map((t) => [t.name, { shape: t.shape, data: st.getFloat32(t.name) }]));
    st.close();
    const bertConfig = JSON.parse(await fs.readFile(path.join(BERT_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
    await err(await writeFolder('bert-depth', { ...bertConfig, num_hidden_layers: 2 }, bert), /config\.json: num_hidden_layers is 2 but the weights have 3 layers \('bert\.encoder\.layer\.N\.\*'/);
    await err(await writeFolder('bert-vocab', { ...bertConfig, vocab_size: 40 }, bert), /config\.json: vocab_size is 40 but the weights have 50 word embeddings/);
    await err(await writeFolder('bert-labels', { ...bertConfig, num_labels: 3 }, bert), /config\.json: num_labels is 3 but the weights have 2 classes \('classifier\.weight'/);
    const gpt = tinyGpt2();
    await err(await writeGpt2Folder(path.join(tmp, 'gpt2-depth'), gpt, gpt.tensors, { ...gpt.config, n_layer: (gpt.config.n_layer as number) - 1 }), /config\.json: n_layer is \d+ but the weights have \d+ layers \('h\.N\.\*'/);
    await err(await writeGpt2Folder(path.join(tmp, 'gpt2-pos'), gpt, gpt.tensors, { ...gpt.config, n_positions: 4096 }), /config\.json: n_positions is 4096 but the weights have \d+ position embeddings/);
  });

  it('a timm hub folder: sizes from the weights; the head count and LayerNorm eps are printed as inferred, with their overrides', async () => {
    const t = tensor(golden.inputs[1].pixel_values);
    const pixels = tf.tensor4d(t.data, t.shape as [number, number, number, number]);
    const timmDir = await writeFolder('timm-eps6', { ...timmConfig, ln_eps_final: 1e-6 }, timm);
    // No size word: the head count cannot be guessed.
    await err(await writeFolder('hub-noword', { architecture: 'vit_patch8_32' }, timm), /config\.json: cannot tell the head count of timm architecture 'vit_patch8_32' .*set "num_heads" in config\.json/);
    // 'tiny' means 3 heads in timm, which this width (32) cannot have.
    await err(await writeFolder('hub-tiny', { architecture: 'vit_tiny_patch8_32', num_classes: 5 }, timm), /width 32 is not divisible by 3 heads/);
    await err(await writeFolder('hub-classes', { architecture: 'vit_tiny_patch8_32', num_heads: 4, num_classes: 1000 }, timm), /config\.json: num_classes is 1000 but the weights have 5 classes/);
    const hub = await writeFolder('hub', { architecture: 'vit_large_patch8_32', num_classes: 5, label_names: ['a', 'b', 'c', 'd', 'e'] }, timm);
    const warnings: string[] = [];
    const model = await loadModel(hub, { warn: (w) => warnings.push(w) });
    model.dispose();
    expect(model.heads).toBe(16);
    expect(model.labels).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(model.inferred).toEqual([
      `image size 32×32 from pos_embed's 17 positions (a square grid; set "img_size" in config.json to override)`,
      `16 attention heads from the word 'large' in the timm architecture name 'vit_large_patch8_32' (the weights cannot tell; set "num_heads" in config.json to override)`,
      `LayerNorm eps 1e-6, timm's ViT default (set "ln_eps" in config.json to override)`,
    ]);
    expect(warnings.filter((w) => w.includes('inferred'))).toEqual(model.inferred!.map((n) => `${path.join(hub, 'config.json')}: inferred ${n}`));
    // With the head count, eps and image size given, nothing is inferred, and the logits are the timm folder's.
    const fixed = await writeFolder('hub-fixed', { architecture: 'vit_small_patch8_32', num_heads: 4, ln_eps: 1e-6, img_size: 32 }, timm);
    const m2 = await loadModel(fixed);
    expect(m2.inferred).toBeUndefined();
    m2.dispose();
    expect(Array.from(await logitsOf(fixed, pixels))).toEqual(Array.from(await logitsOf(timmDir, pixels)));
    pixels.dispose();
  });
});
