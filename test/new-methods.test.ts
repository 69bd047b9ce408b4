/**
 * Generic attention explainability, SmoothGrad and attention flow (issue 8, items 3 and 4): each
 * against a value computed here by other means — the formula in a plain float64 loop, saliency at
 * zero noise, max-flow = min-cut by enumeration — plus batches, both model families, and leaks.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { randomViT } from '../src/core/models/random.js';
import type { ViTConfig, ViTModel } from '../src/core/models/vit.js';
import type { ClassifierModel, ModelInput, TokenInput } from '../src/core/models/types.js';
import { ExplainContext } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { getMethod } from '../src/core/methods/registry.js';
import { FlowNetwork } from '../src/core/methods/maxflow.js';
import { attentionFlowToOutput } from '../src/core/methods/attention-flow.js';
import { loadGolden, tensor, expectClose, relativeError } from './helpers/golden.js';
import { bertGolden, tokensOf, disposeTokens } from './helpers/bert.js';
import { useGoldenModels } from './helpers/models.js';

const models = useGoldenModels();
const vitGolden = loadGolden('vit-tiny-a');

const pixelsOf = (i: number) => {
  const t = tensor(vitGolden.inputs[i].pixel_values);
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
};
const idsOf = (i: number) => Array.from(tensor(bertGolden.inputs[i].input_ids).data);
const maskOf = (i: number) => Array.from(tensor(bertGolden.inputs[i].attention_mask).data);
const textBatch = (rows: number[]): TokenInput => ({
  kind: 'tokens',
  ids: tf.tensor2d(rows.map(idsOf), undefined, 'int32'),
  attentionMask: tf.tensor2d(rows.map(maskOf), undefined, 'int32'),
});

/** Small random ViTs with one and two layers (6 patches + CLS), weights large enough that attention is far from uniform. */
const tinyConfig = (depth: number): ViTConfig => ({
  imageSize: [16, 24], patchSize: 8, channels: 3, dim: 16, depth, heads: 2, mlpDim: 32, numClasses: 4,
  qkvBias: true, lnEps: 1e-6, lnEpsFinal: 1e-6, prefixTokens: 1, pooling: 'cls',
});
let oneLayer: ViTModel;
let twoLayer: ViTModel;
let tinyPixels: tf.Tensor4D;

beforeAll(async () => {
  await ensureBackend();
  oneLayer = randomViT(tinyConfig(1), { seed: 11, weightStd: 0.5 });
  twoLayer = randomViT(tinyConfig(2), { seed: 12, weightStd: 0.5 });
  tinyPixels = tf.randomNormal([2, 3, 16, 24], 0, 1, 'float32', 5) as tf.Tensor4D;
});
afterAll(() => {
  oneLayer?.dispose();
  twoLayer?.dispose();
  tinyPixels?.dispose();
});

// ---------------------------------------------------------------------------------------------------
// Reference computations, in float64 with plain loops.

/** CLS row of R after R ← R + Ā_l·R (R = I to start), Ā = mean_h (∇A ⊙ A)⁺, from the context's own ∇A and A. */
function genericAttentionByHand(ctx: ExplainContext, targets: number[], start: number): Float64Array[] {
  const { model } = ctx;
  const T = ctx.tokens;
  const H = model.heads;
  const grads = ctx.gradients(targets).attention.map((g) => Float64Array.from(g.dataSync()));
  return targets.map((_, b) => {
    let R: number[][] = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (i === j ? 1 : 0)));
    for (let l = start; l < model.depth; l++) {
      const a = ctx.attention(l)[b]!;
      const g = grads[l]!;
      const bar = Array.from({ length: T }, (_, i) =>
        Array.from({ length: T }, (_, j) => {
          let s = 0;
          for (let h = 0; h < H; h++) s += Math.max(0, g[((b * H + h) * T + i) * T + j]! * a[(h * T + i) * T + j]!);
          return s / H;
        }),
      );
      R = R.map((row, i) => row.map((r, j) => r + bar[i]!.reduce((s, x, k) => s + x * R[k]![j]!, 0)));
    }
    return Float64Array.from(R[0]!);
  });
}

/** A' = (mean_h A + I) with rows renormalised, per layer, for sample b. */
function residualAttention(ctx: ExplainContext, b: number): number[][][] {
  const T = ctx.tokens;
  const H = ctx.model.heads;
  return Array.from({ length: ctx.model.depth }, (_, l) => {
    const a = ctx.attention(l)[b]!;
    return Array.from({ length: T }, (_, i) => {
      const row = Array.from({ length: T }, (_, j) => {
        let s = 0;
        for (let h = 0; h < H; h++) s += a[(h * T + i) * T + j]!;
        return s / H + (i === j ? 1 : 0);
      });
      const sum = row.reduce((x, y) => x + y, 0);
      return row.map((x) => x / sum);
    });
  });
}

/** Max flow by enumeration of every s–t cut (max-flow = min-cut): fine for up to ~12 nodes. */
function minCut(n: number, edges: ReadonlyArray<[number, number, number]>, s: number, t: number): number {
  const others = Array.from({ length: n }, (_, i) => i).filter((i) => i !== s && i !== t);
  let best = Infinity;
  for (let mask = 0; mask < 1 << others.length; mask++) {
    const sourceSide = new Set([s, ...others.filter((_, k) => mask & (1 << k))]);
    let cut = 0;
    for (const [u, v, c] of edges) if (sourceSide.has(u) && !sourceSide.has(v)) cut += c;
    best = Math.min(best, cut);
  }
  return best;
}

function flowOf(n: number, edges: ReadonlyArray<[number, number, number]>, s: number, t: number): number {
  const net = new FlowNetwork(n);
  for (const [u, v, c] of edges) net.addEdge(u, v, c);
  return net.maxFlow(s, t);
}

async function attributeIn(model: ClassifierModel, input: ModelInput, method: string, targets: number[], options = {}) {
  const ctx = new ExplainContext(model, input);
  try {
    return await getMethod(method).attribute(ctx, targets, options);
  } finally {
    ctx.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------

describe('max flow (Dinic, float capacities)', () => {
  it('gives the known values of small graphs', () => {
    expect(flowOf(2, [[0, 1, 3]], 0, 1)).toBe(3);
    // A chain: the bottleneck is the middle edge, not the first.
    expect(flowOf(4, [[0, 1, 10], [1, 2, 2.5], [2, 3, 10]], 0, 3)).toBe(2.5);
    // Cormen et al.'s network (Fig. 26.1): 23, with the last edges into the sink the bottleneck.
    const clrs: Array<[number, number, number]> = [
      [0, 1, 16], [0, 2, 13], [1, 3, 12], [2, 1, 4], [2, 4, 14], [3, 2, 9], [3, 5, 20], [4, 3, 7], [4, 5, 4],
    ];
    expect(flowOf(6, clrs, 0, 5)).toBeCloseTo(23, 12);
    // A flow that must be cancelled along a reverse arc: s→a→b→t first blocks both a→t and s→b→t.
    expect(flowOf(4, [[0, 1, 1], [0, 2, 1], [1, 2, 1], [1, 3, 1], [2, 3, 1]], 0, 3)).toBeCloseTo(2, 12);
    // No path, and zero-capacity arcs.
    expect(flowOf(3, [[0, 1, 5], [2, 1, 5]], 0, 2)).toBe(0);
    expect(flowOf(3, [[0, 1, 0], [1, 2, 4]], 0, 2)).toBe(0);
  });

  it('equals the minimum cut on random dense float graphs, and a network answers repeated queries', () => {
    let seed = 1;
    const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 30; trial++) {
      const n = 4 + (trial % 6);
      const edges: Array<[number, number, number]> = [];
      for (let u = 0; u < n; u++) for (let v = 0; v < n; v++) if (u !== v && next() < 0.5) edges.push([u, v, next()]);
      const net = new FlowNetwork(n);
      for (const [u, v, c] of edges) net.addEdge(u, v, c);
      for (const [s, t] of [[0, n - 1], [n - 1, 0], [1, 2]] as const) {
        const want = minCut(n, edges, s, t);
        expect(net.maxFlow(s, t)).toBeCloseTo(want, 10);
        expect(net.maxFlow(s, t)).toBeCloseTo(want, 10);
      }
    }
  });

  it('attentionFlowToOutput on a crafted 2-layer, 3-token graph: Σ_i min(A₀[i,j], A₁[0,i]); a 3-layer one equals its min cut', () => {
    const a0 = Float64Array.from([0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.1, 0.1, 0.8]);
    const a1 = Float64Array.from([0.5, 0.2, 0.3, 0.3, 0.4, 0.3, 0.2, 0.2, 0.6]);
    const flows = attentionFlowToOutput([a0, a1], 3, 0);
    const want = [0, 1, 2].map((j) => [0, 1, 2].reduce((s, i) => s + Math.min(a0[i * 3 + j]!, a1[i]!), 0));
    // j = 0: min(.6,.5) + min(.2,.2) + min(.1,.3) = 0.8 — the bottleneck is the second layer's edge for i = 0.
    expect(want[0]).toBeCloseTo(0.8, 12);
    for (let j = 0; j < 3; j++) expect(flows[j]).toBeCloseTo(want[j]!, 12);

    const a2 = Float64Array.from([0.1, 0.7, 0.2, 0.4, 0.4, 0.2, 0.3, 0.3, 0.4]);
    const three = attentionFlowToOutput([a0, a1, a2], 3, 0);
    // The full layered graph (all 4 boundaries × 3 tokens) as an edge list, flow to token 0 on top.
    const edges: Array<[number, number, number]> = [];
    [a0, a1, a2].forEach((a, l) => {
      for (let j = 0; j < 3; j++) for (let i = 0; i < 3; i++) edges.push([l * 3 + j, (l + 1) * 3 + i, a[i * 3 + j]!]);
    });
    for (let j = 0; j < 3; j++) expect(three[j]).toBeCloseTo(minCut(12, edges, j, 9), 12);
  });
});

describe('generic attention explainability', () => {
  it('one layer: the CLS row of I + Ā, Ā = E_h[(∇A ⊙ A)⁺], computed by hand from the context (batch of 2, different targets)', async () => {
    const ctx = new ExplainContext(oneLayer, { kind: 'image', pixels: tinyPixels });
    try {
      const targets = [1, 3];
      const got = await getMethod('generic-attention').attribute(ctx, targets, {});
      const want = genericAttentionByHand(ctx, targets, 0);
      for (let b = 0; b < 2; b++) {
        expect(got[b]!.shape).toEqual([2, 3]);
        expect(got[b]!.target).toBe(targets[b]);
        expectClose(got[b]!.map, want[b]!.slice(1), 1e-5, `sample ${b}`);
        expect(got[b]!.map.some((v) => v > 0)).toBe(true);
      }
    } finally {
      ctx.dispose();
    }
  });

  it('two layers: R ← R + Ā·R over both layers, and from start layer 1 only the second', async () => {
    const ctx = new ExplainContext(twoLayer, { kind: 'image', pixels: tinyPixels });
    try {
      const targets = [2, 0];
      for (const start of [0, 1]) {
        const got = await getMethod('generic-attention').attribute(ctx, targets, { startLayer: start });
        const want = genericAttentionByHand(ctx, targets, start);
        for (let b = 0; b < 2; b++) expectClose(got[b]!.map, want[b]!.slice(1), 1e-5, `start ${start}, sample ${b}`);
        expect(got[0]!.options).toEqual({ startLayer: start });
      }
    } finally {
      ctx.dispose();
    }
  });

  it('golden BERT: the same formula, with the CLS self-entry set to 0 as the authors\' text code', async () => {
    const input = textBatch([0, 2]);
    const ctx = new ExplainContext(models.bert, input);
    try {
      const targets = [1, 0];
      const got = await getMethod('generic-attention').attribute(ctx, targets, {});
      const want = genericAttentionByHand(ctx, targets, 0);
      for (let b = 0; b < 2; b++) {
        const w = Float64Array.from(want[b]!);
        w[0] = 0;
        expect(got[b]!.space).toBe('token');
        expect(got[b]!.map[0]).toBe(0);
        expectClose(got[b]!.map, w, 1e-5, `sample ${b}`);
      }
    } finally {
      ctx.dispose();
      disposeTokens(input);
    }
  });
});

describe('SmoothGrad', () => {
  it('with zero noise equals saliency (images and text)', async () => {
    const pixels = pixelsOf(0);
    const image: ModelInput = { kind: 'image', pixels };
    const [s] = await explain(models.vit, image, { method: 'saliency', target: 2 });
    const [g] = await explain(models.vit, image, { method: 'smoothgrad', target: 2, noise: 0, samples: 3 });
    expectClose(g!.map, s!.map, 1e-5, 'image');
    expect(g!.shape).toEqual(s!.shape);
    expect(g!.options).toEqual({ samples: 3, noise: 0, seed: 0, ntType: 'smoothgrad', abs: true });
    pixels.dispose();

    const text = tokensOf(1);
    const [st] = await explain(models.bert, text, { method: 'saliency', target: 0 });
    const [gt] = await explain(models.bert, text, { method: 'smoothgrad', target: 0, noise: 0, samples: 5 });
    expectClose(gt!.map, st!.map, 1e-5, 'text');
    disposeTokens(text);
  });

  it('with noise: the same seed gives the same map, another seed another, and both differ from saliency', async () => {
    const pixels = pixelsOf(1);
    const image: ModelInput = { kind: 'image', pixels };
    const run = async (seed?: number) => (await explain(models.vit, image, { method: 'smoothgrad', target: 1, samples: 8, seed }))[0]!;
    const a = await run();
    const b = await run(0);
    const c = await run(7);
    const [s] = await explain(models.vit, image, { method: 'saliency', target: 1 });
    expect(Array.from(a.map)).toEqual(Array.from(b.map));
    expect(a.options).toEqual({ samples: 8, noise: 0.15, seed: 0, ntType: 'smoothgrad', abs: true });
    expect(relativeError(c.map, a.map)).toBeGreaterThan(1e-3);
    expect(relativeError(a.map, s!.map)).toBeGreaterThan(1e-3);
    pixels.dispose();

    const text = tokensOf(0);
    const t1 = (await explain(models.bert, text, { method: 'smoothgrad', target: 1, seed: 3 }))[0]!;
    const t2 = (await explain(models.bert, text, { method: 'smoothgrad', target: 1, seed: 3 }))[0]!;
    const [ts] = await explain(models.bert, text, { method: 'saliency', target: 1 });
    expect(Array.from(t1.map)).toEqual(Array.from(t2.map));
    expect(t1.options.noise).toBe(0.01);
    expect(relativeError(t1.map, ts!.map)).toBeGreaterThan(1e-4);
    disposeTokens(text);
  });

  it('in a contrastive context (y_target − y_contrast) with zero noise, equals saliency of the same context', async () => {
    const pixels = pixelsOf(2);
    const ctx = new ExplainContext(models.vit, { kind: 'image', pixels }, { contrast: 0 });
    try {
      const [s] = await getMethod('saliency').attribute(ctx, [3], {});
      const [g] = await getMethod('smoothgrad').attribute(ctx, [3], { noise: 0, samples: 2 });
      const [plain] = await explain(models.vit, { kind: 'image', pixels }, { method: 'saliency', target: 3 });
      expectClose(g!.map, s!.map, 1e-5, 'contrastive');
      expect(relativeError(g!.map, plain!.map)).toBeGreaterThan(1e-3);
    } finally {
      ctx.dispose();
      pixels.dispose();
    }
  });

  it('rejects bad options', async () => {
    const pixels = pixelsOf(0);
    for (const bad of [{ samples: 0 }, { samples: 1.5 }, { noise: -0.1 }, { noise: Number.NaN }, { seed: -1 }]) {
      await expect(explain(models.vit, { kind: 'image', pixels }, { method: 'smoothgrad', target: 0, ...bad })).rejects.toThrow(/samples|noise|seed/);
    }
    pixels.dispose();
  });
});

describe('attention flow', () => {
  it('one layer: the flow from token j to the output CLS is A\'[0, j] (one edge), normalised over the tokens', async () => {
    const ctx = new ExplainContext(oneLayer, { kind: 'image', pixels: tinyPixels });
    try {
      const got = await getMethod('attention-flow').attribute(ctx, [0, 0], {});
      for (let b = 0; b < 2; b++) {
        const row = residualAttention(ctx, b)[0]![0]!;
        const sum = row.reduce((x, y) => x + y, 0);
        expectClose(got[b]!.map, row.slice(1).map((v) => v / sum), 1e-6, `sample ${b}`);
      }
    } finally {
      ctx.dispose();
    }
  });

  it('two layers: Σ_i min(A\'₀[i, j], A\'₁[0, i]), normalised, from the model\'s own attention', async () => {
    const ctx = new ExplainContext(twoLayer, { kind: 'image', pixels: tinyPixels });
    try {
      const got = await getMethod('attention-flow').attribute(ctx, [1, 2], {});
      for (let b = 0; b < 2; b++) {
        const [a0, a1] = residualAttention(ctx, b) as [number[][], number[][]];
        const T = ctx.tokens;
        const flows = Array.from({ length: T }, (_, j) => a0.reduce((s, row, i) => s + Math.min(row[j]!, a1[0]![i]!), 0));
        const sum = flows.reduce((x, y) => x + y, 0);
        expectClose(got[b]!.map, flows.slice(1).map((f) => f / sum), 1e-6, `sample ${b}`);
      }
      // From start layer 1 the graph has one layer: the flow is that layer's CLS row.
      const [one] = await getMethod('attention-flow').attribute(ctx, [1, 2], { startLayer: 1 });
      expectClose(one!.map, residualAttention(ctx, 0)[1]![0]!.slice(1), 1e-6, 'start layer 1');
    } finally {
      ctx.dispose();
    }
  });
});

describe('the three methods on the golden models', () => {
  const METHODS = ['generic-attention', 'smoothgrad', 'attention-flow'];

  it('ViT: a batch of 2 with different targets gives the maps of single calls; no tensor is left behind', async () => {
    const before = tf.memory().numTensors;
    const pixels = tf.tidy(() => tf.concat([pixelsOf(0), pixelsOf(2)])) as tf.Tensor4D;
    const targets = [3, 1];
    for (const method of METHODS) {
      const batch = await attributeIn(models.vit, { kind: 'image', pixels }, method, targets, { samples: 4 });
      for (const [b, i] of [[0, 0], [1, 2]] as const) {
        const single = pixelsOf(i);
        const [e] = await attributeIn(models.vit, { kind: 'image', pixels: single }, method, [targets[b]!], { samples: 4 });
        single.dispose();
        expect(batch[b]!.shape).toEqual(e!.shape);
        expect(e!.map.every(Number.isFinite)).toBe(true);
        expectClose(batch[b]!.map, e!.map, 1e-4, `${method}[${b}]`);
      }
    }
    pixels.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('BERT: a batch (with a padded sequence) gives the maps of single calls; no tensor is left behind', async () => {
    const before = tf.memory().numTensors;
    const input = textBatch([0, 2]);
    const targets = [0, 1];
    for (const method of METHODS) {
      const batch = await attributeIn(models.bert, input, method, targets, { samples: 4 });
      for (const [b, i] of [[0, 0], [1, 2]] as const) {
        const single = tokensOf(i);
        const [e] = await attributeIn(models.bert, single, method, [targets[b]!], { samples: 4 });
        disposeTokens(single);
        expect(e!.space).toBe('token');
        expect(e!.map.every(Number.isFinite)).toBe(true);
        expectClose(batch[b]!.map, e!.map, 1e-4, `${method}[${b}]`);
      }
    }
    disposeTokens(input);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('attention flow is target-independent, non-negative, and sums to at most 1 over the patches', async () => {
    const pixels = pixelsOf(1);
    const [a] = await explain(models.vit, { kind: 'image', pixels }, { method: 'attention-flow', target: 0 });
    const [b] = await explain(models.vit, { kind: 'image', pixels }, { method: 'attention-flow', target: 4 });
    expect(Array.from(a!.map)).toEqual(Array.from(b!.map));
    expect(a!.map.every((v) => v >= 0)).toBe(true);
    expect(a!.map.reduce((s, v) => s + v, 0)).toBeLessThanOrEqual(1 + 1e-6);
    expect(getMethod('attention-flow').targetDependent).toBe(false);
    pixels.dispose();
  });
});
