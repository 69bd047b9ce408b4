/**
 * Relevance propagation through GPT-2 (relevance/gpt2.ts) on the tiny random GPT-2 of gpt2.test.ts:
 * the ledger's boundaries, conservation on a zero-bias copy wherever each rule set claims it
 * (CP-LRP everywhere, AttnLRP everywhere but the softmax rows, the paper's rules down to the first
 * block and on to the embeddings), AttnLRP / CP-LRP as gradient × input of a modified model,
 * contrastive relevance as the difference of two passes, every relevance method on a padded batch,
 * and `relprop compare` on a text file of sentences.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { relevancePass } from '../src/core/relevance/passes.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { GPT2Model, type GPT2Record } from '../src/core/models/gpt2.js';
import { causalMask } from '../src/core/models/layers.js';
import { geluTanh } from '../src/core/ops.js';
import type { ForwardResult, TokenInput } from '../src/core/models/types.js';
import { ATTNLRP_RULES, BASELINE_RULES, CP_LRP_RULES, PAPER_RULES, cpLrpRules, type RuleSet } from '../src/core/relevance/rulesets.js';
import { conservationReport, conservationViolations, type LedgerEntry } from '../src/core/relevance/ledger.js';
import { disposeRelevance, type RelevanceResult } from '../src/core/relevance/result.js';
import { ExplainContext, tensorsOf } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { UsageError } from '../src/core/errors.js';
import { encodeText } from '../src/core/text-inputs.js';
import type { TensorToWrite } from '../src/core/io/safetensors.js';
import { tinyGpt2, writeGpt2Folder, type TinyGpt2 } from './helpers/gpt2-reference.js';
import { relprop } from './helpers/cli.js';
import { relativeError } from './helpers/golden.js';

let tmp: string;
let tiny: TinyGpt2;
let dir: string;
/** The tiny GPT-2 of gpt2.test.ts (2 layers, 4 heads, dim 32), with its biases. */
let model: GPT2Model;
/** The same weights with every bias (Conv1D biases, LayerNorm β) set to 0. */
let zero: GPT2Model;
const A = 266; // ' Paris'
const B = 270; // ' Rome'

async function load(folder: string): Promise<GPT2Model> {
  const m = await loadModel(folder);
  if (!(m instanceof GPT2Model)) throw new Error('not a GPT2Model');
  return m;
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-gpt2-rel-'));
  tiny = tinyGpt2();
  dir = await writeGpt2Folder(path.join(tmp, 'tiny'), tiny);
  const zeroed: Record<string, TensorToWrite> = Object.fromEntries(
    Object.entries(tiny.tensors).map(([k, v]) => [k, k.endsWith('.bias') ? { shape: v.shape, data: new Float32Array(v.data.length) } : v]),
  );
  model = await load(dir);
  zero = await load(await writeGpt2Folder(path.join(tmp, 'zero-bias'), tiny, zeroed));
});
afterAll(async () => {
  model?.dispose();
  zero?.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

const ids = (text: string) => model.tokenizer!.encode(text).ids;
/** Two sequences, the second right-padded (attention mask 0). */
const SEQS = () => [ids("Paris's café, 123 the Rome"), ids('The cat is')];
const TARGETS = [A, B];

/** Sequences padded into one batch, on the right (default) or on the left (HF's batched generation). */
function batchOf(...seqs: number[][]): TokenInput {
  return padded(seqs, 'right');
}
function padded(seqs: number[][], side: 'left' | 'right'): TokenInput {
  const T = Math.max(...seqs.map((s) => s.length));
  const pad = <X>(s: X[], fill: X) => (side === 'right' ? [...s, ...Array<X>(T - s.length).fill(fill)] : [...Array<X>(T - s.length).fill(fill), ...s]);
  return {
    kind: 'tokens',
    ids: tf.tensor2d(seqs.flatMap((s) => pad(s, 0)), [seqs.length, T], 'int32'),
    attentionMask: tf.tensor2d(seqs.flatMap((s) => pad(s.map(() => 1), 0)), [seqs.length, T], 'int32'),
  };
}
const free = (t: TokenInput) => tf.dispose([t.ids, t.attentionMask]);
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
/** Per-sample totals of a [B, …] or [B·T, D] tensor. */
function totals(t: tf.Tensor, batch: number): number[] {
  const s = tf.tidy(() => tf.sum(tf.reshape(t, [batch, -1]), 1));
  const v = values(s);
  s.dispose();
  return v;
}

interface Pass {
  readonly rel: RelevanceResult;
  readonly fwd: ForwardResult<GPT2Record>;
  readonly logits: Float32Array;
}
function run(m: GPT2Model, input: TokenInput, targets: readonly number[], rules: RuleSet, contrast?: readonly number[]): Pass {
  const fwd = m.forward(input);
  const rel = relevancePass(m, fwd, targets, rules, { toInput: true, ...(contrast ? { contrast } : {}) });
  return { rel, fwd, logits: Float32Array.from(fwd.logits.dataSync()) };
}
function dispose(p: Pass): void {
  disposeRelevance(p.rel);
  tf.dispose(tensorsOf(p.fwd));
}

/** What AttnLRP's softmax rows absorbed (Σ in − out) and the tolerance of input total = logit − absorbed (as attnlrp-cplrp.test.ts). */
function softmaxAccount(ledger: readonly LedgerEntry[], logit: number): { absorbed: number; tol: number } {
  const report = conservationReport(ledger);
  let absorbed = 0;
  let resolution = 0;
  ledger.forEach((e, i) => {
    if (e.kind !== 'Softmax') return;
    absorbed += e.relevanceIn - e.relevanceOut;
    resolution += report[i]!.resolution * Math.abs(e.relevanceIn);
  });
  return { absorbed, tol: 1e-5 + resolution / Math.abs(logit) };
}
const entry = (ledger: readonly LedgerEntry[], layer: string) => {
  const e = ledger.find((x) => x.layer === layer);
  if (!e) throw new Error(`no ledger entry ${layer}`);
  return e;
};


describe('the GPT-2 relevance pass', () => {
  it('crosses every module in reverse graph order, with HF module names, under all four rule sets', () => {
    const input = batchOf(...SEQS());
    const T = input.ids.shape[1];
    for (const rules of [PAPER_RULES, BASELINE_RULES, ATTNLRP_RULES, CP_LRP_RULES]) {
      const p = run(model, input, TARGETS, rules);
      const names = p.rel.ledger[0]!.map((e) => e.layer);
      const block = (l: number) => {
        const n = `transformer.h.${l}`;
        const core =
          rules.attentionWeights === 'constant'
            ? [`${n}.attn.matmul2`]
            : [`${n}.attn.matmul2`, `${n}.attn.attn_dropout`, `${n}.attn.softmax`, `${n}.attn.add`, `${n}.attn.matmul1`];
        return [
          n, `${n}.add2`, `${n}.mlp`, `${n}.mlp.dropout`, `${n}.mlp.c_proj`, `${n}.mlp.act`, `${n}.mlp.c_fc`, `${n}.ln_2`, `${n}.clone2`,
          `${n}.add1`, `${n}.attn`, `${n}.attn.resid_dropout`, `${n}.attn.c_proj`, ...core, `${n}.attn.c_attn`, `${n}.ln_1`, `${n}.clone1`,
        ];
      };
      expect(names, rules.id).toEqual([
        'lm_head', 'transformer', 'transformer.ln_f', 'transformer.last_token', ...block(1), ...block(0), 'transformer.drop', 'transformer.add',
      ]);
      // R^(A) per layer, [B, H, T, T]: nothing above the diagonal (causal) or on padded keys.
      expect(p.rel.attnCam.map((c) => c.shape)).toEqual([[2, 4, T, T], [2, 4, T, T]]);
      const len = SEQS().map((s) => s.length);
      for (const cam of p.rel.attnCam) {
        const v = cam.dataSync();
        v.forEach((x, i) => {
          const j = i % T;
          const q = Math.floor(i / T) % T;
          const b = Math.floor(i / (4 * T * T));
          if (j > q || j >= len[b]!) expect(Math.abs(x)).toBe(0);
        });
        if (rules.attentionWeights === 'propagate') expect(maxAbs(v)).toBeGreaterThan(1e-4);
      }
      // Padded positions get no relevance, and the token map is [B, T].
      expect(p.rel.input!.shape).toEqual([2, T]);
      const tok = p.rel.input!.dataSync();
      for (let t = len[1]!; t < T; t++) expect(Math.abs(tok[T + t]!)).toBe(0);
      dispose(p);
    }
    free(input);
  });
});

describe('zero-bias GPT-2: relevance is conserved wherever the rules claim it', () => {
  let input: TokenInput;
  beforeAll(() => {
    input = batchOf(...SEQS());
  });
  afterAll(() => free(input));
  const logitOf = (p: Pass, b: number) => p.logits[b * zero.numClasses + TARGETS[b]!]!;

  it('CP-LRP: every boundary conserves to 1e-5, from the target logit to the token and position embeddings', () => {
    const p = run(zero, input, TARGETS, CP_LRP_RULES);
    const words = totals(p.rel.input!, 2);
    const blocks = totals(p.rel.tokens, 2);
    p.rel.ledger.forEach((ledger, b) => {
      const logit = logitOf(p, b);
      expect(ledger[0]!.relevanceIn).toBeCloseTo(logit, 5);
      expect(conservationViolations(ledger, 1e-5)).toEqual([]);
      expect(ledger.some((e) => e.expectedDrift)).toBe(false);
      expect(relDiff(blocks[b]!, logit)).toBeLessThan(1e-5);
      // The embedding Add splits it between wte and wpe; the token map is wte's share.
      const add = entry(ledger, 'transformer.add');
      expect(relDiff(add.branches![0]!, words[b]!)).toBeLessThan(1e-5);
      expect(relDiff(words[b]! + add.branches![1]!, logit)).toBeLessThan(1e-5);
    });
    dispose(p);
  });

  it('AttnLRP: every boundary but the softmax conserves; the softmax rows account for the rest', () => {
    const p = run(zero, input, TARGETS, ATTNLRP_RULES);
    const words = totals(p.rel.input!, 2);
    const blocks = totals(p.rel.tokens, 2);
    p.rel.ledger.forEach((ledger, b) => {
      const logit = logitOf(p, b);
      expect(ledger[0]!.relevanceIn).toBeCloseTo(logit, 5);
      expect(conservationViolations(ledger, 1e-5)).toEqual([]);
      expect(ledger.filter((e) => e.kind === 'Softmax')).toHaveLength(zero.depth);
      ledger.forEach((e, i) => {
        let end = i + 1;
        while (end < ledger.length && ledger[end]!.depth > e.depth) end++;
        expect(Boolean(e.expectedDrift), e.layer).toBe(ledger.slice(i, end).some((x) => x.kind === 'Softmax'));
      });
      expect(Math.max(...conservationReport(ledger).filter((d) => d.kind === 'Softmax').map((d) => d.drift))).toBeGreaterThan(1e-3);
      const { absorbed, tol } = softmaxAccount(ledger, logit);
      expect(relDiff(blocks[b]! + absorbed, logit)).toBeLessThan(tol);
      const add = entry(ledger, 'transformer.add');
      expect(relDiff(words[b]! + add.branches![1]! + absorbed, logit)).toBeLessThan(tol);
    });
    dispose(p);
  });

  it('the paper rules conserve 1 down to the first block, and through the embedding Add', () => {
    const p = run(zero, input, TARGETS, PAPER_RULES);
    p.rel.ledger.forEach((ledger, b) => {
      expect(ledger[0]!.relevanceIn).toBe(1);
      expect(conservationViolations(ledger, 1e-5)).toEqual([]);
      expect(Math.abs(entry(ledger, 'transformer.h.0').relevanceOut - 1)).toBeLessThan(1e-5);
      expect(Math.abs(entry(ledger, 'transformer.add').relevanceOut - 1)).toBeLessThan(1e-5);
    });
    dispose(p);
  });

  it('the checks see a leak: ε = 1e-3 absorbs enough for the ledger to flag it', () => {
    const p = run(zero, input, TARGETS, cpLrpRules({ epsilon: 1e-3 }));
    expect(p.rel.ledger.some((l) => conservationViolations(l, 1e-5).length > 0)).toBe(true);
    dispose(p);
  });
});

// ---------------------------------------------------------------------------------------------------
// The models AttnLRP and CP-LRP are gradient × input of (with ε → 0), as in attnlrp-cplrp.test.ts:
// σ of every LayerNorm detached, GELU's derivative replaced by GELU(x)/x; AttnLRP: ∂/∂V halved,
// ∂/∂Q and ∂/∂K quartered; CP-LRP: A detached. The start z_t·e_t is the seed e_t. Position
// embeddings are constants: the gradient is taken at the token embeddings.

type Mode = 'attnlrp' | 'cp-lrp';

function scaleGrad<X extends tf.Tensor>(x: X, factor: number): X {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as tf.Tensor;
    return { value: t.clone(), gradFunc: (dy: tf.Tensor) => [factor === 0 ? tf.zerosLike(dy) : tf.mul(dy, factor)] };
  }) as (t: tf.Tensor) => tf.Tensor;
  return f(x) as X;
}

function identityRuleGrad(fn: (x: tf.Tensor) => tf.Tensor, at0: number, x: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [t, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const y = fn(t);
    save([t, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys] = saved as [tf.Tensor2D, tf.Tensor2D];
        const isZero = tf.equal(xs, 0);
        return [tf.mul(dy, tf.where(isZero, tf.fill(xs.shape, at0), tf.div(ys, tf.where(isZero, tf.onesLike(xs), xs))))];
      },
    };
  }) as (t: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}

function lnSigmaDetached(ln: { gamma: tf.Tensor1D; beta: tf.Tensor1D; eps: number }, x: tf.Tensor2D): tf.Tensor2D {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const invStd = scaleGrad(tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), ln.eps)), 0);
  return tf.add(tf.mul(tf.mul(centred, invStd), ln.gamma), ln.beta) as tf.Tensor2D;
}

const lin = (layer: { wT: tf.Tensor2D; b: tf.Tensor1D | null }, x: tf.Tensor2D) =>
  (layer.b ? tf.add(tf.matMul(x, layer.wT), layer.b) : tf.matMul(x, layer.wT)) as tf.Tensor2D;

function attentionModified(layer: GPT2Model['weights']['layers'][number]['attn'], x: tf.Tensor2D, B: number, T: number, mode: Mode, mask: tf.Tensor2D): tf.Tensor2D {
  const H = layer.heads;
  const qkv = lin(layer.qkv, x);
  const causal = causalMask(T);
  const rows = Array.from({ length: B }, (_, b) => {
    const pieces = tf.split(tf.slice(qkv, [b * T, 0], [T, qkv.shape[1]]), 3 * H, 1) as tf.Tensor2D[];
    const heads = Array.from({ length: H }, (_, h) => {
      const [qs, ks, vs] = mode === 'attnlrp' ? [0.25, 0.25, 0.5] : [0, 0, 1];
      const q = scaleGrad(pieces[h]!, qs);
      const k = scaleGrad(pieces[H + h]!, ks);
      const v = scaleGrad(pieces[2 * H + h]!, vs);
      const scores = tf.add(tf.add(tf.mul(tf.matMul(q, tf.transpose(k)), layer.scale), causal), tf.slice(mask, [b, 0], [1, T]));
      return tf.matMul(tf.softmax(scores), v);
    });
    return tf.concat(heads, 1);
  });
  return lin(layer.proj, tf.concat(rows, 0) as tf.Tensor2D);
}

/** The modified GPT-2 from the first block's input (or the token embeddings) to Σ_b logit_b[target_b]. */
function gpt2Modified(m: GPT2Model, rec: GPT2Record, B: number, targets: readonly number[], mode: Mode, from: 'blocks' | 'words') {
  const W = m.weights;
  const T = rec.embeddings.shape[0] / B;
  const oneHot = tf.oneHot(tf.tensor1d([...targets], 'int32'), m.numClasses).toFloat();
  const f = (input: tf.Tensor) => {
    let x = from === 'blocks' ? (input as tf.Tensor2D) : (tf.add(input, rec.positions) as tf.Tensor2D);
    for (const layer of W.layers) {
      const mid = tf.add(x, attentionModified(layer.attn, lnSigmaDetached(layer.norm1, x), B, T, mode, rec.mask)) as tf.Tensor2D;
      const hidden = identityRuleGrad(geluTanh, 0.5, lin(layer.mlp.fc1, lnSigmaDetached(layer.norm2, mid)));
      x = tf.add(mid, lin(layer.mlp.fc2, hidden)) as tf.Tensor2D;
    }
    const last = tf.matMul(rec.selector, x) as tf.Tensor2D;
    return tf.sum(tf.mul(tf.matMul(lnSigmaDetached(W.finalNorm, last), W.head.wT), oneHot));
  };
  const x = from === 'blocks' ? rec.embeddings : rec.words;
  return { x, grad: tf.grad(f)(x) };
}

describe('AttnLRP and CP-LRP on GPT-2 are gradient × input of the modified model (ε → 0; biases, causal mask, padding)', () => {
  for (const rules of [ATTNLRP_RULES, CP_LRP_RULES]) {
    it(`${rules.id}: at the first block's input and at the tokens`, () => {
      const input = batchOf(...SEQS());
      const T = input.ids.shape[1];
      const p = run(model, input, TARGETS, rules);
      const mode = rules.id as Mode;
      const blocks = gpt2Modified(model, p.fwd.record, 2, TARGETS, mode, 'blocks');
      const atBlocks = tf.mul(blocks.x, blocks.grad);
      const errBlocks = relativeError(p.rel.tokens.dataSync(), atBlocks.dataSync());
      expect(errBlocks).toBeLessThan(1e-4);
      const words = gpt2Modified(model, p.fwd.record, 2, TARGETS, mode, 'words');
      const perToken = tf.sum(tf.reshape(tf.mul(words.x, words.grad), [2, T, -1]), 2);
      const errWords = relativeError(p.rel.input!.dataSync(), perToken.dataSync());
      expect(errWords).toBeLessThan(1e-4);
      // The check tells the two modifications apart.
      const other = gpt2Modified(model, p.fwd.record, 2, TARGETS, mode === 'attnlrp' ? 'cp-lrp' : 'attnlrp', 'blocks');
      const atOther = tf.mul(other.x, other.grad);
      expect(relativeError(p.rel.tokens.dataSync(), atOther.dataSync())).toBeGreaterThan(1e-2);
      tf.dispose([atBlocks, perToken, atOther, blocks.grad, words.grad, other.grad]);
      dispose(p);
      free(input);
    });
  }
});

describe('contrastive relevance (why A rather than B)', () => {
  it('is the difference of the two single-target passes for every rule set linear in the start, and the paper rules refuse it', () => {
    const input = batchOf(...SEQS());
    const contrast = [B, A];
    for (const rules of [BASELINE_RULES, ATTNLRP_RULES, CP_LRP_RULES]) {
      const both = run(model, input, TARGETS, rules, contrast);
      const a = run(model, input, TARGETS, rules);
      const b = run(model, input, contrast, rules);
      // The start: e_A − e_B (one-hot rule sets, total 0) or z_A·e_A − z_B·e_B (logit start, total z_A − z_B).
      both.rel.ledger.forEach((ledger, s) => {
        const V = model.numClasses;
        const expected = rules.start === 'logit' ? both.logits[s * V + TARGETS[s]!]! - both.logits[s * V + contrast[s]!]! : 0;
        expect(ledger[0]!.relevanceIn).toBeCloseTo(expected, 5);
      });
      const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.sub(x, y).dataSync());
      const check = (got: tf.Tensor, x: tf.Tensor, y: tf.Tensor, what: string) => {
        const d = diff(x, y);
        expect(maxAbs(d), `${rules.id} ${what}`).toBeGreaterThan(1e-6);
        const err = maxAbsDiff(got.dataSync(), d) / maxAbs(d);
        expect(err, `${rules.id} ${what}`).toBeLessThan(1e-5);
        return err;
      };
      const errs = [check(both.rel.tokens, a.rel.tokens, b.rel.tokens, 'tokens'), check(both.rel.input!, a.rel.input!, b.rel.input!, 'input')];
      if (rules.attentionWeights === 'propagate') both.rel.attnCam.forEach((c, l) => errs.push(check(c, a.rel.attnCam[l]!, b.rel.attnCam[l]!, `attnCam ${l}`)));
      // The ledger's totals are the differences too (to float32's resolution of each boundary).
      both.rel.ledger.forEach((ledger, s) =>
        ledger.forEach((e, i) => {
          const ea = a.rel.ledger[s]![i]!;
          const eb = b.rel.ledger[s]![i]!;
          expect(e.layer).toBe(ea.layer);
          const tol = 1e-5 * (Math.abs(ea.relevanceIn) + Math.abs(eb.relevanceIn)) + 4 * ((ea.magnitude ?? 0) + (eb.magnitude ?? 0)) * 2 ** -24 * Math.sqrt(e.terms ?? 1);
          expect(Math.abs(e.relevanceOut - (ea.relevanceOut - eb.relevanceOut)), `${rules.id} ${e.layer}`).toBeLessThan(tol);
        }),
      );
      [both, a, b].forEach(dispose);
    }
    const fwd = model.forward(input);
    expect(() => relevancePass(model, fwd, TARGETS, PAPER_RULES, { contrast })).toThrow(/rule set 'paper' cannot explain a contrastive target/);
    tf.dispose(tensorsOf(fwd));
    free(input);
  });

  it('the relevance methods take a contrast through the context: attnlrp\'s map for (A, B) is its map for A minus its map for B', async () => {
    const { input } = encodeText(model, 'The cat is here. Paris');
    const [ab] = await explain(model, input, { method: 'attnlrp', target: A, contrast: B });
    const [a] = await explain(model, input, { method: 'attnlrp', target: A });
    const [b] = await explain(model, input, { method: 'attnlrp', target: B });
    expect(ab!.contrast).toBe(B);
    const d = a!.map.map((v, i) => v - b!.map[i]!);
    expect(maxAbsDiff(ab!.map, d)).toBeLessThan(1e-5 * maxAbs(d));
    const [ta] = await explain(model, input, { method: 'transformer-attribution', rules: 'cp-lrp', target: A, contrast: B });
    expect(ta!.map.every(Number.isFinite)).toBe(true);
    await expect(explain(model, input, { method: 'lrp', target: A, contrast: B })).rejects.toThrow(UsageError);
    const ctx = new ExplainContext(model, input, { contrast: B });
    expect(() => ctx.relevance(PAPER_RULES, [A])).toThrow(/renormalised Add is not linear/);
    ctx.dispose();
    free(input);
  });
});

describe('relevance methods on GPT-2', () => {
  const METHODS = ['transformer-attribution', 'lrp', 'partial-lrp', 'attnlrp', 'cp-lrp'];

  it('run with a target token on a padded batch of two (either side), each sample getting the map it gets alone, leaking no tensor', async () => {
    const seqs = SEQS();
    const right = padded(seqs, 'right');
    const left = padded(seqs, 'left');
    const T = right.ids.shape[1];
    const before = tf.memory().numTensors;
    for (const method of METHODS) {
      const batched = await explain(model, right, { method, target: TARGETS });
      const leftBatched = await explain(model, left, { method, target: TARGETS });
      for (const [k, seq] of seqs.entries()) {
        const e = batched[k]!;
        expect(e.shape, method).toEqual([T]);
        expect(e.space).toBe('token');
        expect(e.target).toBe(TARGETS[k]);
        expect(e.ledger!.length, method).toBeGreaterThan(30);
        expect(e.map.every(Number.isFinite), method).toBe(true);
        const single = batchOf(seq);
        const [alone] = await explain(model, single, { method, target: TARGETS[k] });
        free(single);
        expect(maxAbs(alone!.map), method).toBeGreaterThan(1e-6);
        expect(maxAbsDiff(e.map.subarray(0, seq.length), alone!.map), `${method} sample ${k}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(alone!.map)));
        // Padding gets nothing.
        expect(maxAbs(e.map.subarray(seq.length)), method).toBe(0);
        const l = leftBatched[k]!.map;
        expect(maxAbsDiff(l.subarray(T - seq.length), alone!.map), `${method} sample ${k}, left-padded`).toBeLessThan(1e-4 * Math.max(1, maxAbs(alone!.map)));
        expect(maxAbs(l.subarray(0, T - seq.length)), method).toBe(0);
        // Row-normalised rollout (model.conventions): the last token's row is a distribution.
        if (method === 'transformer-attribution') expect(alone!.map.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    free(right);
    free(left);
  });
});

describe('relprop compare on a GPT-2 folder and a text file of sentences', () => {
  it('explains the predicted next token; perturbation deletes tokens and starts from the model\'s own prediction', async () => {
    const sentences = ['The cat is here.', "Paris's café, 123", 'the Rome cat is'];
    const data = path.join(tmp, 'sentences.txt');
    await fs.writeFile(data, sentences.join('\n') + '\n');
    const out = path.join(tmp, 'compare');
    const r = await relprop('compare', '--model', dir, '--data', data, '--methods', 'rollout,attnlrp', '--metrics', 'perturbation,agreement', '--out', out);
    expect(r.stderr).not.toMatch(/skipped/);
    expect(r.code).toBe(0);
    const journal = (await fs.readFile(path.join(out, 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: string; rows: Array<{ method: string; metric: string; value: number }>; example?: { prediction: number } });
    expect(journal.map((e) => e.id)).toEqual(['sentences.txt:1', 'sentences.txt:2', 'sentences.txt:3']);
    for (const [i, e] of journal.entries()) {
      // The explained class is the model's next-token prediction, and at fraction 0 nothing is removed:
      // the prediction holds and its probability is the model's own.
      const { input } = encodeText(model, sentences[i]!);
      const logits = model.predict(input);
      const row = Array.from(logits.dataSync());
      logits.dispose();
      free(input);
      const predicted = row.indexOf(Math.max(...row));
      const pz = Math.exp(row[predicted]! - Math.max(...row)) / row.reduce((s, v) => s + Math.exp(v - Math.max(...row)), 0);
      expect(e.example!.prediction).toBe(predicted);
      for (const method of ['rollout', 'attnlrp']) {
        const mine = (metric: string) => e.rows.find((x) => x.method === method && x.metric === metric)!.value;
        for (const test of ['positive', 'negative']) {
          expect(mine(`perturbation.${test}.correct@0`)).toBe(1);
          expect(mine(`perturbation.${test}.probability@0`)).toBeCloseTo(pz, 5);
        }
        // Removing the most relevant 90 % of the tokens changes the prediction's probability.
        expect(Math.abs(mine('perturbation.positive.probability@0.9') - pz)).toBeGreaterThan(1e-4);
        expect(Number.isFinite(mine('eraser.comprehensiveness'))).toBe(true);
        for (const other of ['rollout', 'attnlrp', 'occlusion'].filter((o) => o !== method)) {
          const tau = mine(`agreement.tau.${other}`);
          expect(tau).toBeGreaterThanOrEqual(-1);
          expect(tau).toBeLessThanOrEqual(1);
        }
      }
    }
    const summary = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.inputs).toBe(3);
    for (const method of ['rollout', 'attnlrp']) {
      expect(summary.perturbation[method].positive.accuracy[0]).toBe(1);
      expect(summary.perturbation[method].negative.accuracy[0]).toBe(1);
    }
    expect(summary.agreement.names).toEqual(['rollout', 'attnlrp', 'occlusion']);
    const csv = (await fs.readFile(path.join(out, 'results.csv'), 'utf8')).trim().split('\n');
    expect(csv.length - 1).toBe(journal.reduce((n, e) => n + e.rows.length, 0));

    // GPT-2 has no [MASK] or [UNK]: asking for them is a clear error before any work.
    const masked = await relprop('compare', '--model', dir, '--data', data, '--methods', 'rollout', '--metrics', 'perturbation', '--removal', 'mask', '--out', path.join(tmp, 'masked'));
    expect(masked.code).toBe(1);
    expect(masked.stderr).toMatch(/removal 'mask' puts a \[MASK\] or \[UNK\] token in place of a removed one, and GPT-2 model '.*' has neither; use --removal delete/);
  });
});
