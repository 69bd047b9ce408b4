/**
 * On the shipped image model and its ground-truth task: a map that ignores the input (`random`)
 * localises at chance and is the worst on the perturbation test, while the paper's method does far
 * better on both.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/core/models/load.js';
import type { ClassifierModel } from '../src/core/models/types.js';
import { openDataset } from '../src/core/eval/datasets.js';
import { runCompare } from '../src/core/eval/compare.js';
import { ROOT } from './helpers/cli.js';

let tmp: string;
let model: ClassifierModel;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-shipped-'));
  model = await loadModel(path.join(ROOT, 'models', 'image-softmax'));
});
afterAll(async () => {
  model.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('the random baseline on image-softmax', () => {
  it('scores at chance on localisation and worst on the positive perturbation test', async () => {
    const data = await openDataset('task:image:24');
    const s = await runCompare(model, data, { methods: ['transformer-attribution', 'rollout', 'random'], metrics: ['perturbation', 'localisation'], out: tmp });
    // Chance for relevance-rank accuracy and the pointing game is the mask's share of the pixels.
    let share = 0;
    for (const item of data.items) {
      const { truth } = await item.load();
      if (truth?.kind === 'pixels') share += truth.mask.reduce((a, b) => a + b, 0) / truth.mask.length / data.items.length;
    }
    const rank = (m: string) => s.perMethod[m]!['localisation.relevance_rank']!.mean;
    const mass = (m: string) => s.perMethod[m]!['localisation.relevance_mass']!.mean;
    expect(Math.abs(rank('random') - share)).toBeLessThan(0.03);
    expect(Math.abs(mass('random') - share)).toBeLessThan(0.03);
    expect(rank('transformer-attribution')).toBeGreaterThan(3 * share);
    const pos = (m: string) => s.perturbation[m]!['positive']!.aucAccuracy;
    const neg = (m: string) => s.perturbation[m]!['negative']!.aucAccuracy;
    // Positive test: lower is better, so the random map has the highest AUC.
    expect(pos('random')).toBeGreaterThan(pos('transformer-attribution'));
    expect(pos('random')).toBeGreaterThan(pos('rollout'));
    expect(neg('transformer-attribution')).toBeGreaterThan(neg('random'));
  }, 180_000);
});

describe('text: ERASER comprehensiveness and sufficiency on text-softmax', () => {
  it('are recorded per input and method, and the paper\'s method is more comprehensive than a random map', async () => {
    const text = await loadModel(path.join(ROOT, 'models', 'text-softmax'));
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-eraser-'));
    const s = await runCompare(text, await openDataset('task:text:12'), { methods: ['transformer-attribution', 'random'], metrics: ['perturbation'], out });
    text.dispose();
    const c = (m: string) => s.perMethod[m]!['eraser.comprehensiveness']!;
    expect(c('transformer-attribution').n).toBe(12);
    expect(s.perMethod['random']!['eraser.sufficiency']!.n).toBe(12);
    expect(c('transformer-attribution').mean).toBeGreaterThan(c('random').mean);
    await fs.rm(out, { recursive: true, force: true });
  }, 120_000);
});
