/**
 * The Llama family table (families/llama) on nn/'s layer definitions — RMSNorm, rotary embeddings in
 * HF's rotate-half form, grouped-query attention, SwiGLU — run by both interpreters and checked
 * against karpathy/llama2.c's model.py run from its source (test/fixtures/llama/make_llama2c_reference.py):
 * its interleaved RoPE, with the q/k rows permuted into HF's layout as HF's conversion script does.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureBackend } from '../src/core/backend.js';
import { ortActive } from '../src/core/ort-products.js';
import { readSafetensors } from '../src/core/io/safetensors.js';
import { runEager, releaseEager } from '../src/core/engine/eager.js';
import { runTraced, releaseTraced } from '../src/core/engine/trace.js';
import type { HostTensor } from '../src/core/engine/ops.js';
import { inputGradientPass, predictPass } from '../src/core/passes/passes.js';
import { llamaInputs, llamaNetwork, llamaShapeFromConfig, ropeInverseFrequencies, type LlamaShape } from '../src/core/families/llama/llama.js';
import { CheckpointError } from '../src/core/errors.js';
import { ROOT } from './helpers/cli.js';
import { maxAbsDiff, maxAbs } from './helpers/tokens.js';

const DIR = path.join(ROOT, 'test', 'fixtures', 'llama');
interface Case {
  ids: number[];
  target: number;
  contrast: number;
  float64: { logits: number[]; gradient: number[] };
}
const reference = JSON.parse(readFileSync(path.join(DIR, 'reference.json'), 'utf8')) as { cases: Case[] };
const config = JSON.parse(readFileSync(path.join(DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
let shape: LlamaShape;
const params = new Map<string, HostTensor>();
const owner = {};

beforeAll(async () => {
  await ensureBackend();
  shape = llamaShapeFromConfig(config, 'config.json');
  const file = await readSafetensors(path.join(DIR, 'model.safetensors'));
  for (const [name, t] of file.tensors) params.set(name.replace(/^model\./, ''), { data: file.getFloat32(name), shape: t.shape });
  file.close();
});


function feedsOf(c: Case): Record<string, HostTensor> {
  const T = c.ids.length;
  return llamaInputs(shape, c.ids, c.ids.map(() => 1), [1, T]);
}

describe('one definition, two interpreters: a Llama decoder with grouped-query attention, against llama2.c', () => {
  it('reads the config: 4 query heads sharing 2 kv heads, head size 8, tied head', () => {
    expect(shape).toMatchObject({ depth: 2, dim: 32, heads: 4, kvHeads: 2, headDim: 8, tied: true, qkvBias: false, slidingWindow: null });
  });

  it('next-token logits on both interpreters equal llama2.c in float64 within 1e-5', () => {
    const network = llamaNetwork(shape);
    expect(ortActive()).toBe(true);
    for (const c of reference.cases) {
      const feeds = feedsOf(c);
      const eager = runEager(params, { ...feeds, x: feeds['ids']! }, predictPass(network))['logits']!;
      const traced = runTraced(owner, 'predict', params, { ...feeds, x: feeds['ids']! }, predictPass(network))['logits']!;
      expect(maxAbs(c.float64.logits)).toBeGreaterThan(1);
      expect(maxAbsDiff(eager.data, c.float64.logits)).toBeLessThan(1e-5);
      expect(maxAbsDiff(traced.data, c.float64.logits)).toBeLessThan(1e-5);
      releaseTraced(owner);
    }
    releaseEager(params);
  });

  it('∂(logit(target) − logit(contrast))/∂(token embeddings) on both interpreters equals llama2.c in float64 within 1e-5', () => {
    const network = llamaNetwork(shape);
    const table = params.get('embed_tokens.weight')!;
    const D = shape.dim;
    for (const c of reference.cases) {
      const T = c.ids.length;
      const words = new Float32Array(T * D);
      c.ids.forEach((id, t) => words.set(table.data.subarray(id * D, (id + 1) * D), t * D));
      const seed = new Float32Array(table.shape[0]!);
      seed[c.target] = 1;
      seed[c.contrast] = -1;
      const feeds = { ...feedsOf(c), x: { data: words, shape: [1, T, D] }, seed: { data: seed, shape: [1, seed.length] } };
      const eager = runEager(params, feeds, inputGradientPass(network))['gradient']!;
      const traced = runTraced(owner, 'gradient', params, feeds, inputGradientPass(network))['gradient']!;
      expect(maxAbs(c.float64.gradient)).toBeGreaterThan(0.5);
      expect(maxAbsDiff(eager.data, c.float64.gradient)).toBeLessThan(1e-5);
      expect(maxAbsDiff(traced.data, c.float64.gradient)).toBeLessThan(1e-5);
      releaseTraced(owner);
    }
    releaseEager(params);
  });

  it('rope scaling: linear divides every frequency; llama3 keeps the short wavelengths, divides the long ones and blends between (transformers\' numbers)', () => {
    const base = { headDim: 64, ropeTheta: 500000 };
    const plain = ropeInverseFrequencies({ ...base, ropeScaling: { type: 'default' } });
    expect(plain[0]).toBe(1);
    expect(plain[1]).toBeCloseTo(1 / 500000 ** (2 / 64), 15);
    const linear = ropeInverseFrequencies({ ...base, ropeScaling: { type: 'linear', factor: 4 } });
    linear.forEach((f, i) => expect(f).toBeCloseTo(plain[i]! / 4, 18));
    // Llama 3.1's values: factor 8, low 1, high 4, original 8192.
    const l3 = ropeInverseFrequencies({ ...base, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } });
    plain.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) expect(l3[i]).toBe(f);
      else if (wavelen > 8192) expect(l3[i]).toBe(f / 8);
      else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        expect(l3[i]).toBeCloseTo((1 - smooth) * (f / 8) + smooth * f, 18);
      }
    });
    // Each regime occurs at this size, so the test exercises all three.
    expect(plain.some((f) => (2 * Math.PI) / f < 2048) && plain.some((f) => (2 * Math.PI) / f > 8192) && plain.some((f) => (2 * Math.PI) / f > 2048 && (2 * Math.PI) / f < 8192)).toBe(true);
  });

  it('config errors name config.json and the key; transformers 5\'s rope_parameters and Mistral\'s window are read', () => {
    expect(() => llamaShapeFromConfig({ ...config, num_key_value_heads: 3 }, 'config.json')).toThrow(/config\.json: num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)/);
    expect(() => llamaShapeFromConfig({ ...config, hidden_size: 'x' }, 'config.json')).toThrow(CheckpointError);
    expect(() => llamaShapeFromConfig({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'config.json')).toThrow(/rope scaling 'yarn' is not supported/);
    const v5 = llamaShapeFromConfig({ ...config, rope_theta: undefined, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, 'config.json');
    expect(v5.ropeTheta).toBe(500000);
    expect(v5.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(llamaShapeFromConfig({ ...config, model_type: 'mistral', sliding_window: 4 }, 'config.json').slidingWindow).toBe(4);
    expect(llamaShapeFromConfig({ ...config, model_type: 'qwen2' }, 'config.json').qkvBias).toBe(true);
  });

  it('the sliding window hides keys more than window − 1 positions back, as well as later ones and padding', () => {
    const s = { ...llamaShapeFromConfig({ ...config, model_type: 'mistral', sliding_window: 2 }, 'config.json') };
    expect(s.layerTypes).toEqual(['sliding', 'sliding']);
    const m = llamaInputs(s, [5, 6, 7, 8], [1, 1, 1, 0], [1, 4])['mask_local']!.data;
    const open = (i: number, j: number) => m[i * 4 + j] === 0;
    expect([0, 1, 2, 3].map((i) => [0, 1, 2, 3].filter((j) => open(i, j)))).toEqual([[0], [0, 1], [1, 2], [2]]);
  });
});
