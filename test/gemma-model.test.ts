/**
 * Gemma 2 and Gemma 3 text models on the Llama family table's Gemma settings, against google's own
 * pure-PyTorch implementation (gemma_pytorch's gemma/model.py, float64; generator in
 * test/fixtures/gemma/make_gemma_reference.py): sandwich norms, x̂·(1 + w), √d-scaled embeddings, GeGLU,
 * soft-capped attention and logits (Gemma 2), alternating sliding and global layers with their own
 * RoPE bases and q/k norms (Gemma 3); and Gemma 3's AttnLRP and CP-LRP against LXT's rule functions.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { LlamaModel } from '../src/core/models/llama.js';
import type { TokenInput } from '../src/core/models/types.js';
import { ExplainContext } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { conservationViolations } from '../src/core/relevance/ledger.js';
import { ROOT } from './helpers/cli.js';
import { maxAbsDiff, maxAbs } from './helpers/tokens.js';

interface Case {
  ids: number[];
  target: number;
  contrast: number;
  float64: { logits: number[]; gradient: number[] };
  attnlrp?: { tokens: number[] };
  'cp-lrp'?: { tokens: number[] };
}
const dirOf = (name: string) => path.join(ROOT, 'test', 'fixtures', 'gemma', name);
const casesOf = (name: string) => (JSON.parse(readFileSync(path.join(dirOf(name), 'reference.json'), 'utf8')) as { cases: Case[] }).cases;
const one = (ids: number[]): TokenInput => ({ kind: 'tokens', ids: tf.tensor2d([ids], [1, ids.length], 'int32'), attentionMask: tf.tensor2d([ids.map(() => 1)], [1, ids.length], 'int32') });
const models: LlamaModel[] = [];
afterAll(() => models.forEach((m) => m.dispose()));

async function load(name: string): Promise<LlamaModel> {
  const m = await loadModel(dirOf(name));
  if (!(m instanceof LlamaModel)) throw new Error('not a LlamaModel');
  models.push(m);
  return m;
}

describe.each(['gemma2', 'gemma3'])('%s against gemma_pytorch', (name) => {
  it('reads the config: its layer types, norms, caps and RoPE bases', async () => {
    const m = await load(name);
    expect(m.shape).toMatchObject(
      name === 'gemma2'
        ? { gemma: true, layerTypes: ['sliding', 'full'], attnSoftcap: 2, finalSoftcap: 10, qkNorm: false, localRopeTheta: null, activation: 'gelu-tanh', tied: true }
        : { gemma: true, layerTypes: ['sliding', 'sliding', 'full'], attnSoftcap: null, finalSoftcap: null, qkNorm: true, localRopeTheta: 10000, ropeTheta: 1000000 },
    );
    expect(m.shape.queryScale).toBeCloseTo(6 ** -0.5, 15);
  });

  it('next-token logits and ∂(logit(target) − logit(contrast))/∂(input embeddings) equal the float64 reference within 1e-5', async () => {
    const m = await load(name);
    for (const c of casesOf(name)) {
      const input = one(c.ids);
      expect(maxAbs(c.float64.logits)).toBeGreaterThan(1);
      const p = m.predict(input);
      expect(maxAbsDiff(p.dataSync(), c.float64.logits)).toBeLessThan(1e-5);
      const ctx = new ExplainContext(m, input, { contrast: c.contrast });
      const g = ctx.gradients([c.target]).input.dataSync();
      expect(maxAbs(c.float64.gradient)).toBeGreaterThan(0.1);
      expect(maxAbsDiff(g, c.float64.gradient)).toBeLessThan(1e-5);
      ctx.dispose();
      tf.dispose([p, input.ids, input.attentionMask]);
    }
  });
});

describe('relevance on Gemma', () => {
  it('Gemma 3: AttnLRP and CP-LRP equal LXT\'s rules on gemma_pytorch (float64) token by token; CP-LRP conserves', async () => {
    const m = await load('gemma3');
    for (const c of casesOf('gemma3')) {
      const input = one(c.ids);
      const diff = c.float64.logits[c.target]! - c.float64.logits[c.contrast]!;
      for (const method of ['attnlrp', 'cp-lrp'] as const) {
        const [e] = await explain(m, input, { method, target: c.target, contrast: c.contrast });
        expect(maxAbsDiff(e!.map, c[method]!.tokens), method).toBeLessThan(1e-5);
        expect(e!.ledger!.map((r) => r.layer)).toEqual(['lm_head', 'model.norm', 'model.explained', 'model.layers.2', 'model.layers.1', 'model.layers.0', 'model.embed_scale']);
        expect(conservationViolations(e!.ledger!, 1e-5)).toEqual([]);
        if (method === 'cp-lrp') expect(Math.abs(Array.from(e!.map).reduce((a, v) => a + v, 0) - diff)).toBeLessThan(1e-5 * Math.max(1, Math.abs(diff)));
      }
      tf.dispose([input.ids, input.attentionMask]);
    }
  });

  it('Gemma 2: the relevance rules refuse its soft caps (LXT defines none); gradient methods explain it', async () => {
    const m = await load('gemma2');
    const c = casesOf('gemma2')[0]!;
    const input = one(c.ids);
    await expect(explain(m, input, { method: 'attnlrp', target: c.target })).rejects.toThrow(/rule set 'attnlrp' is not defined for gemma2's soft-capped attention and logits/);
    const [e] = await explain(m, input, { method: 'saliency', target: c.target });
    expect(e!.shape).toEqual([c.ids.length]);
    tf.dispose([input.ids, input.attentionMask]);
  });
});
