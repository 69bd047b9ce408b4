/**
 * Long explanations (issue 15, item 11): progress with an ETA on stderr when asked, a clean stop on
 * Ctrl-C (exit 130, one line, nothing written), and requests that cannot fit in memory refused up front.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GOLDEN_DIR } from './helpers/golden.js';
import { BIN, ROOT, STACK_FRAME, expectCliError, relpropWith } from './helpers/cli.js';
import { gaussLegendre, gaussLegendreNode } from '../src/core/methods/integrated-gradients.js';
import { writeSafetensors } from '../src/core/io/safetensors.js';

const VIT = path.join(GOLDEN_DIR, 'vit-tiny-a');
const TENSOR = path.join(VIT, 'img0.json');
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-long-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Starts the CLI, sends SIGINT once stderr shows a progress line, resolves with how it ended. */
function interruptMidRun(args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, RELPROP_PROGRESS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /steps|samples/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

describe('Ctrl-C', () => {
  for (const [method, flag] of [['integrated-gradients', '--steps'], ['smoothgrad', '--samples']] as const) {
    it(`stops ${method} mid-run: exit 130, one line, no output file, no stack frame`, async () => {
      const dir = path.join(tmp, method);
      await fs.mkdir(dir);
      const r = await interruptMidRun(['explain', '--model', VIT, '--tensor', TENSOR, '--method', method, flag, '1000000', '--out', path.join(dir, 'map.png')]);
      expect(r.signal).toBeNull();
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(/^relprop: interrupted; nothing was written$/m);
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(r.stdout).toBe('');
      // Neither the output nor a temporary file beside it.
      expect(await fs.readdir(dir)).toEqual([]);
    }, 60_000);
  }
});

describe('progress', () => {
  it('RELPROP_PROGRESS=1 prints progress lines with an ETA on stderr; --json stdout stays one object', async () => {
    const r = await relpropWith({ env: { ...process.env, RELPROP_PROGRESS: '1' } }, 'explain', '--model', VIT, '--tensor', TENSOR, '--method', 'integrated-gradients', '--steps', '3000', '--json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { options: { steps: number } };
    expect(json.options.steps).toBe(3000);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('relprop: integrated-gradients'));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const done = lines.map((l) => Number(/ (\d+)\/3000 steps \([\d.]+ %\), ETA /.exec(l)![1]));
    // Chunks of steps, rising, ending at all of them.
    for (let i = 1; i < done.length; i++) expect(done[i]!).toBeGreaterThan(done[i - 1]!);
    expect(done.at(-1)).toBe(3000);
  }, 60_000);

  it('no progress when stderr is not a terminal and none is asked for; --progress asks', async () => {
    const env = { ...process.env };
    delete env['RELPROP_PROGRESS'];
    const quiet = await relpropWith({ env }, 'explain', '--model', VIT, '--tensor', TENSOR, '--method', 'smoothgrad', '--samples', '200', '--json');
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toMatch(/samples \(/);
    const asked = await relpropWith({ env }, 'explain', '--model', VIT, '--tensor', TENSOR, '--method', 'smoothgrad', '--samples', '200', '--json', '--progress');
    expect(asked.code, asked.stderr).toBe(0);
    expect(asked.stderr).toMatch(/^relprop: smoothgrad 200\/200 samples \(100\.0 %\), ETA 0 s$/m);
    // The map does not depend on whether progress was shown (the passes only yield between them).
    expect(JSON.parse(asked.stdout).map).toEqual(JSON.parse(quiet.stdout).map);
  }, 60_000);
});

describe('memory', () => {
  it('a request whose attention scores cannot fit is refused up front, naming the bound and the limit', async () => {
    // A ViT with 1-pixel patches on 512×512 images: T = 262145 tokens, 2 layers × 2 heads × T² float32 scores ≈ 1 TiB.
    const dir = path.join(tmp, 'vit-huge-T');
    await fs.mkdir(dir);
    const D = 4;
    const T = 512 * 512 + 1;
    const config = { img_size: 512, patch_size: 1, in_chans: 3, embed_dim: D, depth: 2, num_heads: 2, mlp_ratio: 2.0, num_classes: 3, qkv_bias: true, model_type: 'vit' };
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    const t = (shape: number[]) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.1) });
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {
      cls_token: t([1, 1, D]),
      pos_embed: t([1, T, D]),
      'patch_embed.proj.weight': t([D, 3, 1, 1]),
      'patch_embed.proj.bias': t([D]),
      'norm.weight': t([D]),
      'norm.bias': t([D]),
      'head.weight': t([3, D]),
      'head.bias': t([3]),
    };
    for (let l = 0; l < 2; l++) {
      const b = `blocks.${l}.`;
      Object.assign(tensors, {
        [`${b}norm1.weight`]: t([D]), [`${b}norm1.bias`]: t([D]), [`${b}norm2.weight`]: t([D]), [`${b}norm2.bias`]: t([D]),
        [`${b}attn.qkv.weight`]: t([3 * D, D]), [`${b}attn.qkv.bias`]: t([3 * D]), [`${b}attn.proj.weight`]: t([D, D]), [`${b}attn.proj.bias`]: t([D]),
        [`${b}mlp.fc1.weight`]: t([2 * D, D]), [`${b}mlp.fc1.bias`]: t([2 * D]), [`${b}mlp.fc2.weight`]: t([D, 2 * D]), [`${b}mlp.fc2.bias`]: t([D]),
      });
    }
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    const image = path.join(ROOT, 'test', 'fixtures', 'images', 'gradient-6x4.png');
    const out = path.join(tmp, 'huge.png');
    const r = await relpropWith({}, 'explain', '--model', dir, '--image', image, '--method', 'integrated-gradients', '--out', out);
    expectCliError(r, 1, /integrated-gradients on this input needs at least 1\.00 TiB \(2 layers × 2 heads × 262145² tokens of float32 attention scores\), more than .*, [\d.]+ GiB/);
    expect(r.stderr).toContain(dir);
    await expect(fs.access(out)).rejects.toThrow();
  }, 60_000);
});

describe('Gauss–Legendre nodes one at a time', () => {
  it('are the very numbers of the whole rule', () => {
    for (const n of [1, 2, 3, 7, 8, 50, 51]) {
      const { alphas, weights } = gaussLegendre(n);
      for (let k = 0; k < n; k++) expect(gaussLegendreNode(n, k)).toEqual({ alpha: alphas[k], weight: weights[k] });
    }
  });
});
