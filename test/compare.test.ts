import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/core/models/load.js';
import type { ClassifierModel } from '../src/core/models/types.js';
import { openDataset } from '../src/core/eval/datasets.js';
import { mergeRuns, runCompare } from '../src/core/eval/compare.js';
import { GOLDEN_DIR, FIXTURES } from './helpers/golden.js';
import { relprop } from './helpers/cli.js';

let tmp: string;
let vit: ClassifierModel;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-compare-'));
  vit = await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'));
});
afterAll(async () => {
  vit.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A folder of four small images (the golden model resizes them to 32×32) and one corrupt file. */
async function imageFolder(): Promise<string> {
  const dir = path.join(tmp, 'images');
  await fs.mkdir(dir, { recursive: true });
  for (const f of ['halves-32x16.jpg', 'halves-32x16.webp', 'gradient-6x4.png', 'grey-5x3.png', 'corrupt.png']) {
    await fs.copyFile(path.join(FIXTURES, 'images', f), path.join(dir, f));
  }
  return dir;
}

describe('relprop compare', () => {
  it('writes one row per input × method × metric; bad files are reported and skipped', async () => {
    const data = await openDataset(await imageFolder());
    const out = path.join(tmp, 'run1');
    const s = await runCompare(vit, data, { methods: ['transformer-attribution', 'random'], metrics: ['perturbation', 'agreement'], out });
    expect(s.inputs).toBe(4);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]!.id).toBe('corrupt.png');
    const csv = (await fs.readFile(path.join(out, 'results.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('input,method,metric,value');
    // Per input and method: 2 tests × 10 steps × (correct, probability) + τ against the other method and occlusion.
    expect(csv.length - 1).toBe(4 * 2 * (40 + 2));
    // Step 0 removes nothing: the prediction is the explained class, so correct@0 is 1 for every input.
    expect(csv.filter((l) => l.includes('perturbation.positive.correct@0,')).every((l) => l.endsWith(',1'))).toBe(true);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.perturbation['random'].positive.accuracy[0]).toBe(1);
    expect(summary.agreement.names).toEqual(['transformer-attribution', 'random', 'occlusion']);
  });

  it('a killed and restarted run writes the same results.csv as an uninterrupted one', async () => {
    const data = await openDataset('task:image:6');
    const opts = { methods: ['rollout', 'random'], metrics: ['perturbation', 'localisation'] as const };
    // The golden model takes 32×32 images; the task's are 64×64: they are resized, masks follow.
    await runCompare(vit, data, { ...opts, metrics: [...opts.metrics], out: path.join(tmp, 'whole') });
    const stop = new AbortController();
    let seen = 0;
    await runCompare(vit, data, { ...opts, metrics: [...opts.metrics], out: path.join(tmp, 'cut') }, () => ++seen === 3 && stop.abort(), stop.signal);
    const partial = (await fs.readFile(path.join(tmp, 'cut', 'journal.jsonl'), 'utf8')).trim().split('\n').length;
    expect(partial).toBeLessThan(6);
    // A line cut short by a kill is ignored and that input runs again.
    await fs.appendFile(path.join(tmp, 'cut', 'journal.jsonl'), '{"id":"image-5000005","ind');
    await runCompare(vit, data, { ...opts, metrics: [...opts.metrics], out: path.join(tmp, 'cut') });
    const a = await fs.readFile(path.join(tmp, 'whole', 'results.csv'), 'utf8');
    const b = await fs.readFile(path.join(tmp, 'cut', 'results.csv'), 'utf8');
    expect(b).toBe(a);
    expect(a).toContain('localisation.relevance_mass');
  });

  it('shards merged give the same results as one run', async () => {
    const data = await openDataset('task:image:5');
    const opts = { methods: ['raw-attention'], metrics: ['perturbation'] as ['perturbation'] };
    await runCompare(vit, data, { ...opts, out: path.join(tmp, 'one') });
    await runCompare(vit, data, { ...opts, out: path.join(tmp, 's0'), shard: { k: 0, n: 2 } });
    await runCompare(vit, data, { ...opts, out: path.join(tmp, 's1'), shard: { k: 1, n: 2 } });
    await mergeRuns([path.join(tmp, 's0'), path.join(tmp, 's1')], path.join(tmp, 'merged'));
    expect(await fs.readFile(path.join(tmp, 'merged', 'results.csv'), 'utf8')).toBe(await fs.readFile(path.join(tmp, 'one', 'results.csv'), 'utf8'));
  });

  it('model-level measures: attention permutation and adversarial attention, and token identity per layer', async () => {
    const data = await openDataset('task:image:2');
    const out = path.join(tmp, 'model-tests');
    const s = await runCompare(vit, data, { methods: ['random'], metrics: ['attention', 'identity'], out });
    expect(Object.keys(s.model_tests!).sort()).toEqual(['attention.adversarial_jsd', 'attention.permutation_median_tvd', 'identity.layer0', 'identity.layer1', 'identity.layer2']);
    for (const v of Object.values(s.model_tests!)) expect(v.n).toBe(2);
    expect(s.model_tests!['attention.adversarial_jsd']!.max).toBeLessThanOrEqual(Math.LN2);
    const csv = await fs.readFile(path.join(out, 'results.csv'), 'utf8');
    expect(csv.split('\n').filter((l) => l.includes(',(model),')).length).toBe(2 * 5);
  });

  it('the CLI runs end to end, with two workers, and writes the report', async () => {
    const out = path.join(tmp, 'cli');
    const r = await relprop('compare', '--model', path.join(GOLDEN_DIR, 'vit-tiny-a'), '--data', 'task:image:4', '--methods', 'rollout,random', '--metrics', 'perturbation,localisation', '--out', out, '--workers', '2');
    expect(r.stderr).not.toMatch(/relprop: (?!.*skipped)/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| rollout \|/);
    const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    const rows = (await fs.readFile(path.join(out, 'results.csv'), 'utf8')).trim().split('\n');
    expect(rows.length - 1).toBe(4 * 2 * (40 + 6));
    const bad = await relprop('compare', '--model', path.join(GOLDEN_DIR, 'vit-tiny-a'), '--data', 'task:image:2', '--methods', 'nope');
    expect(bad.stderr).toMatch(/unknown method 'nope'/);
  });
});
