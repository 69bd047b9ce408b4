/**
 * The shipped models: each loads, and its accuracy on 200 freshly generated samples (never used in
 * training nor for its card) is within 2 points of the accuracy its card states.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../src/core/models/load.js';
import { accuracy } from '../src/core/train/trainer.js';
import { HELD_OUT_SEED, taskData } from '../src/core/train/data.js';
import { FIXTURES } from './helpers/golden.js';

const MODELS = path.resolve(FIXTURES, '..', '..', 'models');
const EXPECTED = ['image-softmax', 'image-sparsemax', 'image-entmax15', 'text-softmax', 'text-sparsemax', 'text-entmax15'];
const present = EXPECTED.filter((m) => existsSync(path.join(MODELS, m, 'training.json')));

describe('shipped models', () => {
  it('all six are present, nothing else, and together they stay under 20 MB', () => {
    const names = readdirSync(MODELS, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    expect(names.sort()).toEqual([...EXPECTED].sort());
    expect(present).toEqual(EXPECTED);
    let bytes = 0;
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.name.startsWith('.')) continue;
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else bytes += readFileSync(p).length;
      }
    };
    walk(MODELS);
    expect(bytes).toBeLessThan(20 * 2 ** 20);
  });

  for (const name of present) {
    it(`${name}: accuracy on 200 fresh samples is within 2 points of its card, and the card is at least 97 %`, async () => {
      const card = JSON.parse(readFileSync(path.join(MODELS, name, 'training.json'), 'utf8'));
      expect(card.attention).toBe(name.split('-')[1]);
      const model = await loadModel(path.join(MODELS, name));
      // Offset 3,000,000: disjoint from training (seed 1), per-epoch evaluation (0…) and the card's samples (1,000,000…).
      const acc = await accuracy(model, taskData(card.task, HELD_OUT_SEED), 200, 3_000_000);
      model.dispose();
      expect(Math.abs(acc - card.heldOutAccuracy), `fresh ${acc} vs card ${card.heldOutAccuracy}`).toBeLessThanOrEqual(0.02);
      expect(card.heldOutAccuracy).toBeGreaterThanOrEqual(0.97);
    });
  }
});
