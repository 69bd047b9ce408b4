/**
 * GPT-2 as a family table (families/gpt2) on the layer definitions of nn/, run by both interpreters:
 * eagerly on tfjs and traced into one ONNX Runtime graph. Checked against a float64 reference
 * forward written from HF's GPT2Model (test/helpers/gpt2-reference.ts), against the model class's
 * tfjs forward, and its input gradient against the model class's taped gradient.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { GPT2Model, gpt2FromModel } from '../src/core/models/gpt2.js';
import type { TokenInput } from '../src/core/models/types.js';
import { ensureBackend } from '../src/core/backend.js';
import { ortActive } from '../src/core/ort-products.js';
import { runEager, releaseEager } from '../src/core/engine/eager.js';
import { runTraced, releaseTraced } from '../src/core/engine/trace.js';
import type { HostTensor } from '../src/core/engine/ops.js';
import { inputGradientPass, predictPass } from '../src/core/passes/passes.js';
import { predictOnOrt, inputGradientOnOrt } from '../src/core/onnx/run.js';
import { referenceLogits, tinyGpt2, writeGpt2Folder, type TinyGpt2 } from './helpers/gpt2-reference.js';
import { batchOf, free, maxAbsDiff, maxAbs } from './helpers/tokens.js';

let tmp: string;
let tiny: TinyGpt2;
let model: GPT2Model;
const A = 266; // ' Paris'
const B = 270; // ' Rome'

async function load(dir: string): Promise<GPT2Model> {
  const m = await loadModel(dir);
  if (!(m instanceof GPT2Model)) throw new Error('not a GPT2Model');
  return m;
}

beforeAll(async () => {
  await ensureBackend();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-gpt2-def-'));
  tiny = tinyGpt2();
  model = await load(await writeGpt2Folder(path.join(tmp, 'tiny'), tiny));
});
afterAll(async () => {
  model?.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

const ids = (text: string) => model.tokenizer!.encode(text).ids;

/** The model class's tfjs forward (per-head attention), logits [B, V]. */
const classLogits = (m: GPT2Model, input: TokenInput) => tf.tidy(() => m.forward(input).logits.dataSync().slice());

describe('one definition, two interpreters: GPT-2', () => {
  it('a right-padded batch: both interpreters give each sample the float64 reference next-token logits', () => {
    const a = ids("Paris's café, 123 the Rome");
    const b = ids('The cat');
    const input = batchOf(a, b);
    const { network, params } = gpt2FromModel(model);
    const feeds = model.nativeForm().predictFeeds(input);
    const eager = runEager(params, feeds, predictPass(network))['logits']!;
    expect(ortActive()).toBe(true);
    const traced = runTraced(model, 'predict', params, feeds, predictPass(network))['logits']!;
    const V = model.numClasses;
    expect(traced.shape).toEqual([2, V]);
    const ref = [...referenceLogits(tiny, a).at(-1)!, ...referenceLogits(tiny, b).at(-1)!];
    expect(maxAbs(ref)).toBeGreaterThan(1);
    // The tolerance of the model class against the same reference (gpt2.test.ts).
    expect(maxAbsDiff(eager.data, ref)).toBeLessThan(1e-4);
    expect(maxAbsDiff(traced.data, ref)).toBeLessThan(1e-4);
    // And the model class's own float32 forward, closer still.
    const own = classLogits(model, input);
    expect(maxAbsDiff(eager.data, own)).toBeLessThan(1e-5);
    expect(maxAbsDiff(traced.data, own)).toBeLessThan(1e-5);
    // model.predict now takes the traced pass.
    const p = predictOnOrt(model, input)!;
    expect(maxAbsDiff(p.dataSync(), traced.data)).toBe(0);
    tf.dispose(p);
    releaseEager(params);
    free(input);
  });

  it('input gradients of logit(A) − logit(B) at n word-embedding points: both interpreters and the model class agree with float64 finite differences', () => {
    const seq = ids('The cat is here. Paris');
    const input = batchOf(seq);
    const T = seq.length;
    const D = model.config.dim;
    const n = 3;
    // n points on the path from 0 to the words, as integrated gradients takes them.
    const words = model.gradientInput(input);
    const x = tf.tidy(() => tf.concat([0.25, 0.6, 1].map((s) => tf.mul(words, s)), 0));
    const seedData = new Float32Array(n * model.numClasses);
    for (let i = 0; i < n; i++) {
      seedData[i * model.numClasses + A] = 1;
      seedData[i * model.numClasses + B] = -1;
    }
    // The model class, taped: forward of all n points as one batch, d(Σ seed ⊙ logits)/dx.
    const repeated: TokenInput = { kind: 'tokens', ids: tf.tile(input.ids, [n, 1]), attentionMask: tf.tile(input.attentionMask, [n, 1]) };
    const seed = tf.tensor2d(seedData, [n, model.numClasses]);
    const taped = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.forward(repeated, { inputValue: v }).logits, seed)))(x).dataSync().slice());
    expect(maxAbs(taped)).toBeGreaterThan(1e-3);

    const { network, params } = gpt2FromModel(model);
    const g = model.nativeForm().gradientFeeds(input, x)!;
    expect(g.copies).toBe(n);
    const feeds: Record<string, HostTensor> = { ...g.feeds, seed: { data: seedData, shape: [n, model.numClasses] } };
    const eager = runEager(params, feeds, inputGradientPass(network));
    const traced = runTraced(model, 'gradient', params, feeds, inputGradientPass(network));
    expect(eager['gradient']!.shape).toEqual([n, T, D]);
    // Against float64 truth: central differences of the reference forward at every coordinate of
    // every point. The tiny model's large weights make the layer norms amplify float32 rounding, so
    // the bound is relative to the gradient's size. The model class's taped gradient (checked at a
    // few coordinates in gpt2.test.ts) is further off at the middle point than either interpreter,
    // so the taped gradient is the check's sanity floor here, not its reference.
    const wte = tiny.tensors['wte.weight']!.data;
    [0.25, 0.6, 1].forEach((scale, k) => {
      const point = seq.map((id) => Float64Array.from(wte.subarray(id * D, (id + 1) * D), (v) => Math.fround(v * scale)));
      const score = (w: Float64Array[]) => {
        const last = referenceLogits(tiny, seq, w).at(-1)!;
        return last[A]! - last[B]!;
      };
      const h = 1e-5;
      const fd = new Float64Array(T * D);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < D; i++) {
          const [up, down] = [point.map((r) => Float64Array.from(r)), point.map((r) => Float64Array.from(r))];
          up[t]![i]! += h;
          down[t]![i]! -= h;
          fd[t * D + i] = (score(up) - score(down)) / (2 * h);
        }
      }
      const at = (g: ArrayLike<number>) => Array.from(g).slice(k * T * D, (k + 1) * T * D);
      const bound = 2e-5 * maxAbs(fd);
      expect(maxAbs(fd)).toBeGreaterThan(1);
      expect(maxAbsDiff(at(eager['gradient']!.data), fd), `eager at ${scale}`).toBeLessThan(bound);
      expect(maxAbsDiff(at(traced['gradient']!.data), fd), `traced at ${scale}`).toBeLessThan(bound);
    });
    // What gradients.ts gets: the same numbers in x's shape, with the logits of each point.
    const viaRun = inputGradientOnOrt(model, input, x, seedData)!;
    expect(viaRun.input.shape).toEqual(x.shape);
    expect(maxAbsDiff(viaRun.input.dataSync(), traced['gradient']!.data)).toBe(0);
    const atWords = classLogits(model, input);
    expect(maxAbsDiff(viaRun.logits.subarray(2 * model.numClasses), atWords)).toBeLessThan(1e-5);
    tf.dispose([words, x, seed, repeated.ids, repeated.attentionMask, viaRun.input]);
    releaseEager(params);
    free(input);
  });

  it('scale_attn_by_inverse_layer_idx and scale_attn_weights = false carry into the table', async () => {
    for (const extra of [{ scale_attn_by_inverse_layer_idx: true }, { scale_attn_weights: false }]) {
      const dir = await writeGpt2Folder(path.join(tmp, Object.keys(extra)[0]!), tiny, tiny.tensors, { ...tiny.config, ...extra });
      const m = await load(dir);
      const input = batchOf(ids('The cat is here.'));
      const { network, params } = gpt2FromModel(m);
      const eager = runEager(params, m.nativeForm().predictFeeds(input), predictPass(network))['logits']!;
      const own = classLogits(m, input);
      expect(maxAbsDiff(eager.data, own)).toBeLessThan(1e-5);
      // Not the default scale's logits: the option changed something.
      expect(maxAbsDiff(own, classLogits(model, input))).toBeGreaterThan(1e-3);
      releaseEager(params);
      releaseTraced(m);
      m.dispose();
      free(input);
    }
  });
});
