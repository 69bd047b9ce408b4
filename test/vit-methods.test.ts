import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { explain } from '../src/core/explain.js';
import { listMethods } from '../src/core/methods/registry.js';
import { gaussLegendre } from '../src/core/methods/integrated-gradients.js';
import type { ClassifierModel } from '../src/core/models/types.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';

const CASE = 'vit-tiny-a';
const golden = loadGolden(CASE);
const REL_TOL = 5e-3; // relevance-derived (issue 3; golden README: ~3× precision.json)
const FREE_TOL = 1e-5; // relprop-free
let model: ClassifierModel;

beforeAll(async () => {
  model = await loadModel(path.join(GOLDEN_DIR, CASE));
});
afterAll(() => model?.dispose());

const pixelsOf = (i: number) => {
  const t = tensor(golden.inputs[i].pixel_values);
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
};

async function one(i: number, method: string, target: number, extra: Record<string, unknown> = {}) {
  const pixels = pixelsOf(i);
  try {
    const [e] = await explain(model, { kind: 'image', pixels }, { method, target, ...extra });
    return e!;
  } finally {
    pixels.dispose();
  }
}

const CASES: Array<[string, Record<string, unknown>, string, number]> = [
  ['transformer-attribution', { startLayer: 0 }, 'ours.transformer_attribution.start_layer_0', REL_TOL],
  ['transformer-attribution', { startLayer: 1 }, 'ours.transformer_attribution.start_layer_1', REL_TOL],
  ['transformer-attribution', { startLayer: 0, rules: 'baseline' }, 'orig.grad.start_layer_0', REL_TOL],
  ['transformer-attribution', { startLayer: 1, rules: 'baseline' }, 'orig.grad.start_layer_1', REL_TOL],
  ['lrp', {}, 'ours.full', REL_TOL],
  ['lrp', { rules: 'baseline' }, 'orig.full', REL_TOL],
  ['partial-lrp', {}, 'orig.last_layer', REL_TOL],
  ['partial-lrp', { rules: 'paper' }, 'ours.last_layer', REL_TOL],
  ['attention-gradcam', {}, 'baselines.generate_cam_attn.raw', FREE_TOL],
];

describe('every method vs the authors\' code (vit-tiny-a, every input, both targets)', () => {
  for (let i = 0; i < golden.inputs.length; i++) {
    for (let k = 0; k < 2; k++) {
      const g = golden.results[i].targets[k];
      for (const [method, opts, key, tol] of CASES) {
        it(`${golden.inputs[i].id} target ${g.target} (${g.kind}): ${method} ${JSON.stringify(opts)} = ${key}`, async () => {
          const e = await one(i, method, g.target, opts);
          expect(e.target).toBe(g.target);
          const ref = tensor(g.methods[key].output);
          expectClose(e.map, ref.data, tol, key);
          expect(e.map.length).toBe(ref.data.length);
        });
      }
    }
  }

  it('lrp returns a pixel map with its ledger; the paper rules conserve to 1e-6 down to block 0', async () => {
    const e = await one(0, 'lrp', 2);
    expect(e.shape).toEqual([32, 32]);
    expect(e.space).toBe('pixel');
    const ledger = e.ledger!;
    expect(ledger[0]).toMatchObject({ layer: 'head', kind: 'Linear' });
    const block0 = ledger.find((x) => x.layer === 'blocks.0')!;
    expect(Math.abs(block0.relevanceOut - 1)).toBeLessThan(1e-6 * 10);
    const pixelsSum = e.map.reduce((s, x) => s + x, 0);
    expect(pixelsSum).toBeCloseTo(golden.results[0].targets[1].ours.conservation.pixels_after_patch_embed_conv, 3);
  });

  it('a batch of three inputs with different targets gives the maps of three single calls', async () => {
    const pixels = tf.concat([0, 1, 2].map(pixelsOf)) as tf.Tensor4D;
    const targets = [0, 1, 2].map((i) => golden.results[i].targets[1].target);
    for (const [method, opts, key] of [CASES[0]!, CASES[4]!, CASES[6]!, CASES[8]!]) {
      const batch = await explain(model, { kind: 'image', pixels }, { method, target: targets, ...opts });
      batch.forEach((e, i) => {
        expect(e.target).toBe(targets[i]);
        expectClose(e.map, tensor(golden.results[i].targets[1].methods[key].output).data, key.startsWith('baselines') ? FREE_TOL : REL_TOL, `${method}[${i}]`);
      });
    }
    pixels.dispose();
  });
});

describe('gradient methods: defining properties', () => {
  it('Gauss–Legendre quadrature on [0,1] integrates polynomials up to degree 2n−1 exactly', () => {
    for (const n of [1, 2, 5, 50]) {
      const { alphas, weights } = gaussLegendre(n);
      for (let k = 0; k <= 2 * n - 1; k += Math.max(1, Math.floor(n / 3))) {
        const integral = alphas.reduce((s, a, i) => s + weights[i]! * a ** k, 0);
        expect(integral).toBeCloseTo(1 / (k + 1), 12);
      }
    }
  });

  it('integrated gradients is complete: Σ map = f(x) − f(0) within 1 %', async () => {
    for (const i of [0, 1]) {
      const target = golden.results[i].targets[0].target;
      const e = await one(i, 'integrated-gradients', target, { steps: 50 });
      const zero = tf.zeros([1, 3, 32, 32]) as tf.Tensor4D;
      const f0 = model.forward({ kind: 'image', pixels: zero });
      const baseline = f0.logits.dataSync()[target]!;
      tf.dispose([zero, ...Object.values(f0).flat() as tf.Tensor[]]);
      const fx = tensor(golden.results[i].logits).data[target]!;
      const sum = e.map.reduce((s, x) => s + x, 0);
      expect(Math.abs(sum - (fx - baseline)) / Math.abs(fx - baseline)).toBeLessThan(0.01);
    }
  });

  it('saliency and gradient × input agree with central finite differences of the target logit', async () => {
    const target = 3;
    const sal = await one(2, 'saliency', target);
    const gxi = await one(2, 'gradient-input', target);
    const base = tensor(golden.inputs[2].pixel_values);
    const logit = (data: Float32Array) => {
      const x = tf.tensor4d(data, [1, 3, 32, 32]);
      const f = model.forward({ kind: 'image', pixels: x });
      const v = f.logits.dataSync()[target]!;
      tf.dispose([x]);
      tf.dispose(f.logits);
      return v;
    };
    const eps = 1e-2;
    for (const [r, c] of [[3, 5], [17, 22], [30, 1]] as const) {
      const g: number[] = [];
      for (let ch = 0; ch < 3; ch++) {
        const idx = ch * 1024 + r * 32 + c;
        const plus = Float32Array.from(base.data);
        const minus = Float32Array.from(base.data);
        plus[idx]! += eps;
        minus[idx]! -= eps;
        g.push((logit(plus) - logit(minus)) / (2 * eps));
      }
      const p = r * 32 + c;
      expect(sal.map[p]!).toBeCloseTo(Math.max(...g.map(Math.abs)), 2);
      expect(gxi.map[p]!).toBeCloseTo(g.reduce((s, gc, ch) => s + gc * base.data[ch * 1024 + p]!, 0), 2);
    }
  });
});

describe('housekeeping', () => {
  it('every method runs for a non-predicted target, and leaves no tensor behind over 20 explanations', async () => {
    const pixels = pixelsOf(1);
    const before = tf.memory().numTensors;
    let n = 0;
    while (n < 20) {
      for (const m of listMethods()) {
        if (n >= 20) break;
        const [e] = await explain(model, { kind: 'image', pixels }, { method: m.id, target: 4, steps: 4 });
        expect(e!.target).toBe(4);
        expect(e!.map.every(Number.isFinite)).toBe(true);
        n++;
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
  });
});
