/**
 * A LlamaForCausalLM folder loaded as an explainable next-token model (models/llama.ts): every pass is
 * the family table's, so its numbers are those of the table's test against karpathy/llama2.c
 * (llama-one-definition.test.ts), here through the loader, the context and the methods.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { LlamaModel } from '../src/core/models/llama.js';
import type { TokenInput } from '../src/core/models/types.js';
import { ExplainContext } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { encodeText, singleTokenId } from '../src/core/text-inputs.js';
import { CheckpointError, UsageError } from '../src/core/errors.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/core/io/safetensors.js';
import { inputGradientOnOrt } from '../src/core/onnx/run.js';
import { conservationViolations } from '../src/core/relevance/ledger.js';
import { ROOT, relprop } from './helpers/cli.js';
import { batchOf, free, maxAbsDiff } from './helpers/tokens.js';

const DIR = path.join(ROOT, 'test', 'fixtures', 'llama');
interface Case {
  ids: number[];
  target: number;
  contrast: number;
  float64: { logits: number[]; gradient: number[] };
}
const { cases } = JSON.parse(readFileSync(path.join(DIR, 'reference.json'), 'utf8')) as { cases: Case[] };
let model: LlamaModel;
let tmp: string;

beforeAll(async () => {
  const m = await loadModel(DIR);
  if (!(m instanceof LlamaModel)) throw new Error('not a LlamaModel');
  model = m;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-llama-'));
});
afterAll(async () => {
  model?.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});


describe('a Llama checkpoint as a next-token model', () => {
  it('loads config.json + model.safetensors (HF names) and predicts each padded sample\'s next token as llama2.c does', () => {
    expect(model.family).toBe('llama');
    expect(model.numClasses).toBe(48);
    const input = batchOf(cases[0]!.ids, cases[1]!.ids);
    const expected = [...cases[0]!.float64.logits, ...cases[1]!.float64.logits];
    const predicted = model.predict(input);
    const fwd = model.forward(input);
    expect(maxAbsDiff(predicted.dataSync(), expected)).toBeLessThan(1e-5);
    expect(maxAbsDiff(fwd.logits.dataSync(), expected)).toBeLessThan(1e-5);
    // Causal attention with GQA: 4 heads, row i puts nothing on later tokens, rows sum to 1.
    const probs = fwd.attention[1]!.probs;
    expect(probs.shape).toEqual([2, 4, 7, 7]);
    const a = probs.arraySync() as number[][][][];
    for (const head of a[0]!) head.forEach((row, i) => {
      expect(row.slice(i + 1).every((p) => p === 0)).toBe(true);
      expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 6);
    });
    tf.dispose([predicted, fwd.logits, ...fwd.attention.map((x) => x.probs)]);
    free(input);
  });

  it('∂(logit(target) − logit(contrast))/∂(token embeddings) from the layers\' own backward equals llama2.c in float64', () => {
    for (const c of cases) {
      const input = batchOf(c.ids);
      const ctx = new ExplainContext(model, input, { contrast: c.contrast });
      const g = ctx.gradients([c.target]);
      expect(g.input.shape).toEqual([c.ids.length, 32]);
      expect(maxAbsDiff(g.input.dataSync(), c.float64.gradient)).toBeLessThan(1e-5);
      // ∂/∂A for every block, for the gradient-weighted attention methods.
      expect(g.attention.map((t) => t.shape)).toEqual([
        [1, 4, c.ids.length, c.ids.length],
        [1, 4, c.ids.length, c.ids.length],
      ]);
      ctx.dispose();
      free(input);
    }
  });

  it('gradient, occlusion and attention methods explain it; the native many-point gradient is the eager one; relevance methods refuse', async () => {
    const c = cases[0]!;
    const input = batchOf(c.ids);
    for (const method of ['saliency', 'gradient-input', 'integrated-gradients', 'smoothgrad', 'occlusion', 'raw-attention', 'rollout', 'attention-gradcam', 'generic-attention']) {
      const [e] = await explain(model, input, { method, target: c.target, ...(method === 'raw-attention' || method === 'rollout' ? {} : { contrast: c.contrast }) });
      expect(e!.shape, method).toEqual([c.ids.length]);
      expect(Array.from(e!.map).every(Number.isFinite), method).toBe(true);
    }
    // What IG and SmoothGrad take natively (many points, one graph) is the layers' eager backward at each point.
    const words = model.gradientInput(input);
    const x = tf.concat([0.3, 0.7, 1].map((a) => tf.mul(words, a)), 0);
    const seedRow = Array.from({ length: 48 }, (_, i) => (i === c.target ? 1 : i === c.contrast ? -1 : 0));
    const native = inputGradientOnOrt(model, input, x, Float32Array.from([...seedRow, ...seedRow, ...seedRow]))!;
    expect(native).not.toBeNull();
    [0.3, 0.7, 1].forEach((a, k) => {
      const g = tf.tidy(() => {
        const fwd = model.forward(input, { inputValue: tf.mul(words, a) });
        return model.backward(fwd, tf.tensor2d([seedRow]), { attention: false }).input.dataSync().slice();
      });
      const rows = native.input.dataSync().subarray(k * g.length, (k + 1) * g.length);
      expect(maxAbsDiff(rows, g), `point ${a}`).toBeLessThan(1e-5);
    });
    tf.dispose([words, x, native.input]);
    for (const method of ['lrp', 'transformer-attribution', 'partial-lrp']) {
      await expect(explain(model, input, { method, target: c.target })).rejects.toThrow(/rule set '(paper|baseline)' is not defined for llama decoders: use attnlrp or cp-lrp/);
    }
    await expect(explain(model, input, { method: 'occlusion', target: c.target, occlusion: 'mask' })).rejects.toThrow(/has no \[MASK\] or \[UNK\] token; use 'remove'/);
    free(input);
  });

  it('AttnLRP and CP-LRP equal LXT\'s rule functions on llama2.c (float64), token by token; CP-LRP conserves at every module, AttnLRP drifts only in the blocks (the softmax)', async () => {
    for (const c of cases as Array<Case & Record<'attnlrp' | 'cp-lrp', { tokens: number[] }>>) {
      const input = batchOf(c.ids);
      const diff = c.float64.logits[c.target]! - c.float64.logits[c.contrast]!;
      for (const method of ['attnlrp', 'cp-lrp'] as const) {
        const [e] = await explain(model, input, { method, target: c.target, contrast: c.contrast });
        const expected = c[method].tokens;
        expect(Math.max(...expected.map(Math.abs)), method).toBeGreaterThan(0.01);
        expect(maxAbsDiff(e!.map, expected), method).toBeLessThan(1e-5);
        const ledger = e!.ledger!;
        expect(ledger.map((r) => r.layer)).toEqual(['lm_head', 'model.norm', 'model.explained', 'model.layers.1', 'model.layers.0']);
        expect(ledger[0]!.relevanceIn).toBeCloseTo(diff, 5);
        expect(conservationViolations(ledger, 1e-5)).toEqual([]);
        const sum = Array.from(e!.map).reduce((a, v) => a + v, 0);
        if (method === 'cp-lrp') {
          // Bias-free: everything that starts at the logits reaches the tokens.
          expect(ledger.some((r) => r.expectedDrift)).toBe(false);
          expect(Math.abs(sum - diff)).toBeLessThan(1e-5 * Math.max(1, Math.abs(diff)));
        } else {
          expect(ledger.filter((r) => r.expectedDrift).map((r) => r.layer)).toEqual(['model.layers.1', 'model.layers.0']);
          expect(Math.abs(sum - diff)).toBeGreaterThan(1e-3);
        }
      }
      free(input);
    }
  });

  it('--position: explaining the prediction after token 3 of the whole text is explaining the text cut after it (causal attention), for every kind of method', async () => {
    const c = cases[0]!;
    const at = 3;
    const whole: TokenInput = { ...batchOf(c.ids), explainAt: [at] };
    const cut = batchOf(c.ids.slice(0, at + 1));
    for (const method of ['gradient-input', 'attnlrp', 'cp-lrp', 'occlusion', 'raw-attention', 'attention-gradcam', 'integrated-gradients']) {
      const [a] = await explain(model, whole, { method, target: c.target });
      const [b] = await explain(model, cut, { method, target: c.target });
      // The same numbers from products of another length: float32 rounding, relative to their size.
      const scale = (x: ArrayLike<number>) => 1e-5 * Math.max(1, ...Array.from(x, Math.abs));
      expect(maxAbsDiff(a!.logits, b!.logits), method).toBeLessThan(scale(b!.logits));
      expect(maxAbsDiff(a!.map.subarray(0, at + 1), b!.map), method).toBeLessThan(scale(b!.map));
      expect(Array.from(a!.map.subarray(at + 1)).every((v) => v === 0), method).toBe(true);
    }
    await expect(explain(model, { ...batchOf(c.ids), explainAt: [9] }, { method: 'saliency', target: 1 })).rejects.toThrow(/position 9 is not a token of input 0 \(its real tokens end at 6\)/);
    const r = await relprop('explain', '--model', DIR, '--ids', c.ids.join(','), '--position', String(at), '--method', 'attnlrp', '--target', String(c.target), '--json');
    expect(r.code).toBe(0);
    const [lib] = await explain(model, cut, { method: 'attnlrp', target: c.target });
    expect(maxAbsDiff(JSON.parse(r.stdout).map.data.slice(0, at + 1), lib!.map)).toBeLessThan(1e-5);
    free(whole);
    free(cut);
  });

  it('checkpoint errors name the tensor and the file: a wrong shape, an untied head without lm_head, a shard index that disagrees, a foreign token id; sharded folders load', async () => {
    const file = await readSafetensors(path.join(DIR, 'model.safetensors'));
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, t] of file.tensors) tensors[name] = { shape: t.shape, data: file.getFloat32(name) };
    file.close();
    const config = JSON.parse(readFileSync(path.join(DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
    const folder = async (name: string, t: Record<string, TensorToWrite>, cfg: Record<string, unknown>) => {
      const dir = path.join(tmp, name);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
      await writeSafetensors(path.join(dir, 'model.safetensors'), t);
      return dir;
    };
    const k = 'model.layers.1.self_attn.k_proj.weight';
    const bad = await folder('bad-shape', { ...tensors, [k]: { shape: [8, 32], data: new Float32Array(256) } }, config);
    await expect(loadModel(bad)).rejects.toThrow(CheckpointError);
    await expect(loadModel(bad)).rejects.toThrow(new RegExp(`${k.replace(/\./g, '\\.')}.*\\[8, 32\\].*\\[16, 32\\]|${k.replace(/\./g, '\\.')}.*\\[16, 32\\].*\\[8, 32\\]`));
    const untied = await folder('untied', tensors, { ...config, tie_word_embeddings: false });
    await expect(loadModel(untied)).rejects.toThrow(/tie_word_embeddings is false but .* has no 'lm_head\.weight'/);
    // Sharded as HF saves big checkpoints: two files and model.safetensors.index.json.
    const names = Object.keys(tensors).sort();
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const sharded = path.join(tmp, 'sharded');
    await fs.mkdir(sharded);
    await fs.writeFile(path.join(sharded, 'config.json'), JSON.stringify(config));
    const weightMap: Record<string, string> = {};
    for (const [i, group] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(sharded, file), Object.fromEntries(group.map((n) => [n, tensors[n]!])));
      for (const n of group) weightMap[n] = file;
    }
    const writeIndex = (map: Record<string, string>) => fs.writeFile(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    await writeIndex(weightMap);
    const fromShards = await loadModel(sharded);
    const probe = batchOf(cases[0]!.ids);
    expect(maxAbsDiff(fromShards.predict(probe).dataSync(), cases[0]!.float64.logits)).toBeLessThan(1e-5);
    fromShards.dispose();
    free(probe);
    await writeIndex({ ...weightMap, [names[0]!]: 'model-00002-of-00002.safetensors' });
    await expect(loadModel(sharded)).rejects.toThrow(new RegExp(`model\.safetensors\.index\.json: lists tensor '${names[0]!.replace(/\./g, '\\.')}' in model-00002-of-00002\.safetensors, which does not hold it`));
    await writeIndex({ ...weightMap, [names[0]!]: 'model-00003-of-00003.safetensors' });
    await expect(loadModel(sharded)).rejects.toThrow(/in shard "model-00003-of-00003\.safetensors", which is not in the folder/);

    // LlamaForSequenceClassification: `score` read at the last real token. With score = the first
    // three rows of the tied embedding, its logits are the LM head's first three.
    const embed = tensors['model.embed_tokens.weight']!;
    const cls = await folder('classifier', { ...tensors, 'score.weight': { shape: [3, 32], data: (embed.data as Float32Array).slice(0, 96) } }, { ...config, architectures: ['LlamaForSequenceClassification'], id2label: { 0: 'neg', 1: 'neu', 2: 'pos' } });
    const classifier = await loadModel(cls);
    expect(classifier.labels).toEqual(['neg', 'neu', 'pos']);
    const both = batchOf(cases[0]!.ids, cases[1]!.ids);
    const got = classifier.predict(both).dataSync();
    expect(maxAbsDiff(got, [...cases[0]!.float64.logits.slice(0, 3), ...cases[1]!.float64.logits.slice(0, 3)])).toBeLessThan(1e-5);
    const [cp] = await explain(classifier, batchOf(cases[0]!.ids), { method: 'cp-lrp', target: 2 });
    expect(cp!.ledger![0]!.layer).toBe('score');
    expect(Array.from(cp!.map).reduce((a, v) => a + v, 0)).toBeCloseTo(cases[0]!.float64.logits[2]!, 4);
    classifier.dispose();
    const r = await relprop('explain', '--model', cls, '--ids', cases[0]!.ids.join(','), '--method', 'gradient-input');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/top classes:/);
    expect(r.stdout).toMatch(/target {2}\d \((neg|neu|pos)\)/);

    const input = batchOf([1, 99]);
    expect(() => model.predict(input)).toThrow(/token id 99 is not in model 'llama''s vocabulary \(0\.\.47\)/);
    free(input);
    expect(() => model.forward(batchOf([1]), { attentionEdit: { layer: 0, edit: (a) => a } })).toThrow(UsageError);
  });
});

describe('relprop explain on a Llama folder', () => {
  it('--ids with --target/--contrast: gradient × input and AttnLRP as llama2.c and LXT give them, with provenance; the paper\'s rules exit 1 with one line', async () => {
    const c = cases[0]!;
    const r = await relprop('explain', '--model', DIR, '--ids', c.ids.join(','), '--method', 'gradient-input', '--target', String(c.target), '--contrast', String(c.contrast), '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ method: 'gradient-input', target: c.target, contrast: c.contrast });
    expect(out.provenance.model.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    // Gradient × input summed over the hidden axis, from llama2.c's own gradient and the embeddings.
    const file = await readSafetensors(path.join(DIR, 'model.safetensors'));
    const wte = file.getFloat32('model.embed_tokens.weight');
    file.close();
    const expected = c.ids.map((id, t) => c.float64.gradient.slice(t * 32, (t + 1) * 32).reduce((s, g, i) => s + g * wte[id * 32 + i]!, 0));
    expect(maxAbsDiff(out.map.data, expected)).toBeLessThan(1e-5);
    const lrp = await relprop('explain', '--model', DIR, '--ids', c.ids.join(','), '--method', 'lrp');
    expect(lrp.code).toBe(1);
    expect(lrp.stdout).toBe('');
    expect(lrp.stderr).toMatch(/^relprop: rule set 'paper' is not defined for llama decoders: use attnlrp or cp-lrp .*\n$/);
    const attn = await relprop('explain', '--model', DIR, '--ids', c.ids.join(','), '--method', 'attnlrp', '--target', String(c.target), '--contrast', String(c.contrast), '--json');
    expect(attn.code).toBe(0);
    expect(maxAbsDiff(JSON.parse(attn.stdout).map.data, (c as Case & { attnlrp: { tokens: number[] } }).attnlrp.tokens)).toBeLessThan(1e-5);
  });
});

describe('a Llama folder with a tokenizer.json', () => {
  it('--text and --target-token: words come back with their relevance, classes are the tokenizer\'s texts, maps equal the library\'s on the encoded ids', async () => {
    const dir = path.join(tmp, 'with-tokenizer');
    await fs.mkdir(dir);
    for (const f of ['config.json', 'model.safetensors']) await fs.copyFile(path.join(DIR, f), path.join(dir, f));
    // A tiny Unigram tokenizer (ids 0–10) inside the fixture's 48-token vocabulary.
    await fs.copyFile(path.join(ROOT, 'test', 'fixtures', 'tokenizers', 'unigram', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const m = (await loadModel(dir)) as LlamaModel;
    expect(m.tokenizer).not.toBeNull();
    expect(m.labels[4]).toBe(m.tokenizer!.decode([4]));
    const { input, encoding } = encodeText(m, 'ab tc');
    expect(encoding!.words.map((w) => w.text)).toEqual(['ab', 'tc']);
    // Unigram's best split of 'ab' is ▁a + b (−3 beats ▁ab's −5): two tokens, refused; 'a' is ▁a.
    expect(() => singleTokenId(m, 'ab', '--target-token')).toThrow(/--target-token "ab" is 2 tokens/);
    const target = singleTokenId(m, 'a', '--target-token');
    expect(target).toBe(4);
    const [lib] = await explain(m, input, { method: 'attnlrp', target });
    const r = await relprop('explain', '--model', dir, '--text', 'ab tc', '--method', 'attnlrp', '--target-token', 'a', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.target).toBe(4);
    expect(maxAbsDiff(out.map.data, lib!.map)).toBeLessThan(1e-6);
    expect(out.words.map((w: { text: string }) => w.text)).toEqual(['ab', 'tc']);
    free(input);
    m.dispose();
  });
});
