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

  it('a config that does not fit the weights (depth 4 for 3 blocks)', async () => {
    const dir = await writeFolder('depth', { ...timmConfig, depth: 4 }, timm);
    const before = tf.memory().numTensors;
    await expect(loadModel(dir)).rejects.toThrow(/'blocks\.3\.[a-z0-9.]+' is missing/);
    // A failed load must not leave the tensors it had already made behind.
    expect(tf.memory().numTensors).toBe(before);
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
