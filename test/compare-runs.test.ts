/**
 * A compare run folder as an experiment record: it knows its configuration (and refuses to mix
 * another into it), its results do not depend on how it was executed, and outputs that are not
 * whole say so.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { relprop } from './helpers/cli.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-runs-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const read = (f: string) => fs.readFile(f, 'utf8');

describe('a run folder knows its configuration', () => {
  it('resuming with another model exits 1 and names what differs; --restart starts over', async () => {
    const out = path.join(tmp, 'config');
    const base = ['--data', 'task:image:3', '--methods', 'rollout', '--metrics', 'perturbation', '--out', out];
    const a = await relprop('compare', '--model', 'image-softmax', ...base);
    expect(a.code).toBe(0);
    const run = JSON.parse(await read(path.join(out, 'run.json')));
    expect(run.config.model.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.config.model.folder).toBe(path.resolve('models', 'image-softmax'));
    expect(run.config.data).toMatchObject({ spec: 'task:image:3', count: 3, kind: 'image', seeds: { generator: 7_000_001, first: 5_000_000 } });
    expect(run.config).toMatchObject({ methods: ['rollout'], metrics: ['perturbation'], removal: 'zero', target: 'predicted' });
    expect(run.config.relprop.version).toMatch(/^\d+\.\d+\.\d+/);
    const softmax = await read(path.join(out, 'results.csv'));

    const b = await relprop('compare', '--model', 'image-sparsemax', ...base);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/another configuration/);
    expect(b.stderr).toMatch(/model\.weightsSha256/);
    expect(b.stderr).not.toMatch(/resumed/);
    // Nothing of the old run was touched.
    expect(await read(path.join(out, 'results.csv'))).toBe(softmax);

    // Another option value, another removal: each named.
    const c = await relprop('compare', '--model', 'image-softmax', ...base, '--removal', 'mean');
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/removal: "zero" ≠ "mean"/);

    const d = await relprop('compare', '--model', 'image-sparsemax', ...base, '--restart');
    expect(d.code).toBe(0);
    expect(d.stderr).not.toMatch(/resumed/);
    const sparse = await read(path.join(out, 'results.csv'));
    expect(sparse).not.toBe(softmax);
    expect(JSON.parse(await read(path.join(out, 'run.json'))).config.model.folder).toBe(path.resolve('models', 'image-sparsemax'));

    // The same configuration resumes (every input is in the journal) and writes the same bytes.
    const e = await relprop('compare', '--model', 'image-sparsemax', ...base);
    expect(e.code).toBe(0);
    expect(e.stderr).toMatch(/3 resumed/);
    expect(await read(path.join(out, 'results.csv'))).toBe(sparse);
  }, 120_000);
});
