/**
 * The CLI's promises about its process and files: no death by signal on valid input, nothing written
 * outside the outputs asked for, no stack traces, no overwritten inputs, no half-written outputs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createRequire } from 'node:module';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, GOLDEN_DIR } from './helpers/golden.js';
import { BERT_DIR } from './helpers/bert.js';
import { expectCliError, relprop, relpropWith } from './helpers/cli.js';
import { ensureBackend } from '../src/core/backend.js';
import { explain } from '../src/core/explain.js';
import { NonFiniteError } from '../src/core/errors.js';
import { loadModel } from '../src/core/models/load.js';

const VIT = path.join(GOLDEN_DIR, 'vit-tiny-a');
const hasOrt = (() => {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
})();

/** The environment without what would switch ONNX Runtime's telemetry off anyway (CI markers, our own opt-out). */
function telemetryEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of ['XDG_CACHE_HOME', 'ORT_DISABLE_TELEMETRY', 'RELPROP_ORT', 'RELPROP_ORT_TELEMETRY', 'CI', 'GITHUB_ACTIONS', 'TF_BUILD', 'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'BUILDKITE', 'TEAMCITY_VERSION', 'APPVEYOR', 'CODEBUILD_BUILD_ID', 'BITBUCKET_BUILD_NUMBER', 'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI']) delete env[k];
  return env;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await listTree(p)));
  }
  return out;
}

let tmp: string;
let textModel: string;
/** The golden BERT with layer_norm_eps = −1000: every LayerNorm takes the square root of a negative number. */
let negativeEps: string;
/** The golden ViT with its head weights scaled by 3e38: finite weights, logits that overflow float32. */
let overflowing: string;

/** A safetensors file with one float32 tensor's values multiplied by `k`. */
async function scaledSafetensors(src: string, dst: string, name: string, k: number): Promise<void> {
  const bytes = await fs.readFile(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header[name]!;
  expect(t.dtype).toBe('F32');
  const out = Buffer.from(bytes);
  for (let o = 8 + n + t.data_offsets[0]; o < 8 + n + t.data_offsets[1]; o += 4) out.writeFloatLE(out.readFloatLE(o) * k, o);
  await fs.writeFile(dst, out);
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-cli-safety-'));
  textModel = path.join(tmp, 'bert-with-vocab');
  await fs.mkdir(textModel);
  for (const f of ['config.json', 'weights.safetensors']) await fs.copyFile(path.join(BERT_DIR, f), path.join(textModel, f));
  await fs.copyFile(path.join(FIXTURES, 'text-vocab', 'vocab.txt'), path.join(textModel, 'vocab.txt'));
  negativeEps = path.join(tmp, 'bert-negative-eps');
  await fs.mkdir(negativeEps);
  await fs.copyFile(path.join(BERT_DIR, 'weights.safetensors'), path.join(negativeEps, 'weights.safetensors'));
  const config = JSON.parse(await fs.readFile(path.join(BERT_DIR, 'config.json'), 'utf8'));
  await fs.writeFile(path.join(negativeEps, 'config.json'), JSON.stringify({ ...config, layer_norm_eps: -1000 }));
  overflowing = path.join(tmp, 'vit-overflowing-head');
  await fs.mkdir(overflowing);
  await fs.copyFile(path.join(VIT, 'config.json'), path.join(overflowing, 'config.json'));
  await scaledSafetensors(path.join(VIT, 'weights.safetensors'), path.join(overflowing, 'weights.safetensors'), 'head.weight', 3e38);
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('ONNX Runtime in the CLI process', () => {
  it('a --text of 40 KB on the command line is explained, not killed by SIGSEGV (1DS telemetry regex on /proc/self/cmdline)', async () => {
    const text = 'good food '.repeat(4000);
    const r = await relpropWith({ env: telemetryEnv(tmp) }, 'explain', '--model', textModel, '--text', text, '--method', 'lrp', '--json');
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the text has 8002 tokens/);
    expect(JSON.parse(r.stdout).map.shape).toEqual([32]);
  });

  it.skipIf(!hasOrt)('writes nothing under HOME: no device id, no telemetry database in ~/.cache/Microsoft/DeveloperTools', async () => {
    const home = await fs.mkdtemp(path.join(tmp, 'home-'));
    const r = await relpropWith({ env: telemetryEnv(home) }, 'explain', '--model', VIT, '--tensor', path.join(VIT, 'img0.json'), '--method', 'transformer-attribution', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(await listTree(home)).toEqual([]);
  });
});

describe('non-finite numbers are errors, never results', () => {
  it('a --tensor holding null (NaN) or 1e39 (Infinity in float32) exits 1 naming the file and the element', async () => {
    const data = Array.from({ length: 3 }, () => Array.from({ length: 32 }, () => Array(32).fill(0.1)));
    data[0]![0]![5] = null;
    const nan = path.join(tmp, 'nan.json');
    await fs.writeFile(nan, JSON.stringify({ dtype: 'float32', shape: [1, 3, 32, 32], data: [data] }));
    expectCliError(await relprop('explain', '--model', VIT, '--tensor', nan, '--json'), 1, /nan\.json: tensor holds NaN at element 5 \(1 of 3072 values are not finite/);
    data[0]![0]![5] = 1e39;
    const inf = path.join(tmp, 'inf.json');
    await fs.writeFile(inf, JSON.stringify({ dtype: 'float32', shape: [1, 3, 32, 32], data: [data] }));
    expectCliError(await relprop('explain', '--model', VIT, '--tensor', inf, '--out', path.join(tmp, 'inf.png')), 1, /inf\.json: tensor holds Infinity at element 5/);
    await expect(fs.stat(path.join(tmp, 'inf.png'))).rejects.toThrow();
  });

  it.each([
    ['predicted target', []],
    ['explicit target, relevance method', ['--target', '1', '--method', 'lrp', '--json']],
    ['explicit target, gradient method', ['--target', '0', '--method', 'saliency']],
  ])('NaN logits (negative layer_norm_eps): exit 1 with the cause, never "target -1 (undefined)" (%s)', async (_, extra) => {
    const r = await relprop('explain', '--model', negativeEps, '--ids', '1,5,6,7,2', ...extra);
    expectCliError(r, 1, /layer_norm_eps/);
    expect(r.stderr).not.toMatch(/undefined|-1/);
  });

  it('logits that overflow to Infinity (head weights × 3e38): exit 1, no PNG written', async () => {
    const png = path.join(tmp, 'overflow.png');
    const r = await relprop('explain', '--model', overflowing, '--tensor', path.join(VIT, 'img0.json'), '--method', 'transformer-attribution', '--out', png);
    expectCliError(r, 1, /vit-overflowing-head: model 'vit-overflowing-head' gives non-finite logits \((-?Infinity|NaN) at class \d; \d of 5 values\) on a finite input/);
    await expect(fs.stat(png)).rejects.toThrow();
  });

  it('a map that comes out non-finite from finite logits (SmoothGrad with noise σ = 1e38) is an error naming the method', async () => {
    const r = await relprop('explain', '--model', VIT, '--tensor', path.join(VIT, 'img0.json'), '--method', 'smoothgrad', '--noise', '1e38', '--json');
    expectCliError(r, 1, /smoothgrad|noise/);
  });

  it('the library gets the same check: explain() rejects with NonFiniteError', async () => {
    await ensureBackend();
    const model = await loadModel(negativeEps);
    const { tf } = await import('../src/core/tf.js');
    const ids = tf.tensor2d([[1, 5, 6, 7, 2]], [1, 5], 'int32');
    const mask = tf.ones([1, 5], 'int32') as import('@tensorflow/tfjs').Tensor2D;
    try {
      await expect(explain(model, { kind: 'tokens', ids, attentionMask: mask }, { method: 'lrp', target: 1 })).rejects.toThrow(NonFiniteError);
    } finally {
      tf.dispose([ids, mask]);
      model.dispose();
    }
  });
});

describe('options that cannot apply are refused, not ignored', () => {
  const tensorArgs = () => ['explain', '--model', VIT, '--tensor', path.join(VIT, 'img0.json')];
  it.each([
    [['--method', 'rollout', '--contrast', '1'], /--contrast does not apply to 'rollout': its map does not depend on the target class/],
    [['--method', 'raw-attention', '--contrast', '1'], /--contrast does not apply to 'raw-attention'/],
    [['--method', 'attention-flow', '--contrast', '1'], /--contrast does not apply to 'attention-flow'/],
    [['--method', 'random', '--contrast', '1'], /--contrast does not apply to 'random'/],
    [['--method', 'saliency,rollout', '--contrast', '1', '--report', 'TMP/r.html'], /--contrast does not apply to 'rollout'/],
    [['--method', 'occlusion', '--occlusion', 'mask'], /occlusion 'mask' is for text; images take 'baseline'/],
    [['--method', 'occlusion', '--occlusion', 'remove'], /occlusion 'remove' is for text/],
    [['--alpha', '0.3'], /--alpha draws an overlay, and this command writes none/],
    [['--colormap', 'jet', '--out', 'TMP/x.json'], /--colormap draws an overlay, and this command writes none/],
  ])('%j exits 1 with the reason', async (extra, message) => {
    expectCliError(await relprop(...tensorArgs(), ...extra.map((a) => a.replace('TMP', tmp))), 1, message);
  });

  it('--alpha on a text model, and a contrast on a target-independent method in the library', async () => {
    expectCliError(await relprop('explain', '--model', BERT_DIR, '--ids', '1,5,2', '--alpha', '0.2', '--out', path.join(tmp, 't.json')), 1, /--alpha draws an overlay|--alpha draws an image overlay/);
    await ensureBackend();
    const model = await loadModel(VIT);
    const { loadTensorFile } = await import('../src/core/inputs.js');
    const loaded = await loadTensorFile(model as never, path.join(VIT, 'img0.json'));
    try {
      await expect(explain(model, loaded.input, { method: 'rollout', contrast: 1 })).rejects.toThrow(/does not apply to method 'rollout'/);
    } finally {
      loaded.input.pixels.dispose();
      model.dispose();
    }
  });
});

describe('files: inputs are never overwritten, outputs appear whole, errors are one line', () => {
  const image = path.join(FIXTURES, 'images', 'halves-32x16.jpg');

  it('--out or --report naming an input (directly or through a symlink), or two outputs naming one file, is refused and the input is untouched', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'inputs-'));
    const png = path.join(dir, 'cat.png');
    await fs.writeFile(png, await (await import('sharp')).default(image).png().toBuffer());
    const before = await fs.readFile(png);
    expectCliError(await relprop('explain', '--model', VIT, '--image', png, '--out', png), 1, /cat\.png: --out names the input --image .*cat\.png: refusing to overwrite an input/);
    await fs.symlink(png, path.join(dir, 'link.png'));
    expectCliError(await relprop('explain', '--model', VIT, '--image', png, '--out', path.join(dir, 'sub', '..', 'link.png')), 1, /--out names the input --image/);
    expect(await fs.readFile(png)).toEqual(before);
    const tensor = path.join(dir, 'x.html');
    await fs.copyFile(path.join(VIT, 'img0.json'), tensor);
    expectCliError(await relprop('explain', '--model', VIT, '--tensor', tensor, '--report', tensor), 1, /--report names the input --tensor/);
    const out = path.join(dir, 'same.html');
    expectCliError(await relprop('explain', '--model', textModel, '--text', 'good food', '--out', out, '--report', out), 1, /--report and --out name the same file/);
  });

  it('an output under a file (not a folder) is a one-line error naming it; a failed run leaves no temporary file', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'outputs-'));
    const file = path.join(dir, 'plain.txt');
    await fs.writeFile(file, 'x');
    expectCliError(await relprop('explain', '--model', VIT, '--image', image, '--out', path.join(file, 'o.png')), 1, /plain\.txt\/o\.png: cannot create its folder .*plain\.txt: a part of the path is a file, not a folder/);
    // A run that fails after the model is loaded (target out of range) leaves an earlier output as it was.
    const out = path.join(dir, 'overlay.png');
    expect((await relprop('explain', '--model', VIT, '--image', image, '--out', out)).code).toBe(0);
    const first = await fs.readFile(out);
    expectCliError(await relprop('explain', '--model', VIT, '--image', image, '--out', out, '--target', '9'), 1, /target 9 is out of range/);
    expect(await fs.readFile(out)).toEqual(first);
    expect((await fs.readdir(dir)).sort()).toEqual(['overlay.png', 'plain.txt']);
  });

  it('writeFileAtomic: a write that fails midway leaves the target as it was and no temporary file', async () => {
    const { withAtomicFile } = await import('../src/core/io/atomic-write.js');
    const dir = await fs.mkdtemp(path.join(tmp, 'atomic-'));
    const target = path.join(dir, 'report.html');
    await fs.writeFile(target, 'old');
    await expect(
      withAtomicFile(target, async (temp) => {
        await fs.writeFile(temp, 'half of the new');
        throw new Error('disk gone');
      }),
    ).rejects.toThrow('disk gone');
    expect(await fs.readFile(target, 'utf8')).toBe('old');
    expect(await fs.readdir(dir)).toEqual(['report.html']);
    await withAtomicFile(target, (temp) => fs.writeFile(temp, 'new'));
    expect(await fs.readFile(target, 'utf8')).toBe('new');
    expect(await fs.readdir(dir)).toEqual(['report.html']);
  });

  it('a system error (merge of a missing shard folder) is one line without a stack; RELPROP_DEBUG=1 adds the stack; a bad command line exits 2', async () => {
    const missing = path.join(tmp, 'no-such-shard');
    const r = await relprop('merge', missing, '--out', path.join(tmp, 'merged'));
    expectCliError(r, 1, /no-such-shard/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const debug = await relpropWith({ env: { ...process.env, RELPROP_DEBUG: '1' } }, 'explain', '--model', VIT, '--tensor', path.join(VIT, 'img0.json'), '--target', '9');
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^relprop: target 9 is out of range/);
    expect(debug.stderr).toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    const bad = await relprop('explain', '--no-such-option');
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toMatch(/unknown option '--no-such-option'/);
  });
});
