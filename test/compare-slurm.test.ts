/**
 * `relprop compare --shard auto` under a real (one-node) Slurm: the docs' sbatch script as a
 * 2-task job array, then `relprop merge`, gives the bytes of an unsharded run. The cluster is
 * started by the test (test/helpers/slurm.ts); if it cannot start, the test fails with the reason.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers/cli.js';
import { startSlurm, type SlurmCluster } from './helpers/slurm.js';

const BIN = path.join(ROOT, 'bin', 'relprop.js');
let cluster: SlurmCluster;
beforeAll(async () => {
  cluster = await startSlurm();
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('compare --shard auto as a Slurm job array', () => {
  it('two array tasks, then merge: byte-identical to an unsharded run', async () => {
    const runs = path.join(cluster.dir, 'runs');
    const spec = ['--model', 'image-softmax', '--data', 'task:image:7', '--methods', 'rollout,transformer-attribution', '--metrics', 'perturbation,agreement'];
    const env = { RELPROP: `${process.execPath} ${BIN}`, MODEL: 'image-softmax', DATA: 'task:image:7', METHODS: 'rollout,transformer-attribution', METRICS: 'perturbation,agreement', RUN: runs };
    const sbatch = await cluster.exec('sbatch', ['--wait', '--array=0-1', '--cpus-per-task=1', '--mem=1G', '-o', path.join(cluster.dir, 'task-%a.log'), '-D', cluster.dir, path.join(ROOT, 'docs', 'compare.sbatch')], { env, timeout: 300_000 }).catch(async (err: Error) => {
      const logs = await Promise.all([0, 1].map((a) => fs.readFile(path.join(cluster.dir, `task-${a}.log`), 'utf8').catch(() => '(no log)')));
      throw new Error(`sbatch failed: ${err.message}\n${logs.join('\n')}`);
    });
    expect(sbatch.stdout).toMatch(/Submitted batch job \d+/);
    for (const k of [0, 1]) {
      const run = JSON.parse(await fs.readFile(path.join(runs, `shard-${k}`, 'run.json'), 'utf8'));
      expect(run.shard).toEqual({ k, n: 2 });
    }
    await cluster.exec(process.execPath, [BIN, 'merge', '--out', path.join(runs, 'all'), path.join(runs, 'shard-0'), path.join(runs, 'shard-1')]);
    await cluster.exec(process.execPath, [BIN, 'compare', ...spec, '--out', path.join(runs, 'whole')]);
    for (const f of ['results.csv', 'summary.json']) {
      const merged = await fs.readFile(path.join(runs, 'all', f), 'utf8');
      expect(merged.length).toBeGreaterThan(100);
      expect(merged, f).toBe(await fs.readFile(path.join(runs, 'whole', f), 'utf8'));
    }
    const s = JSON.parse(await fs.readFile(path.join(runs, 'all', 'summary.json'), 'utf8'));
    expect(s).toMatchObject({ complete: true, inputs: 7, expected: 7 });
  }, 400_000);
});

describe('--shard auto reads the scheduler', async () => {
  const { parseShard } = await import('../src/cli/compare.js');
  it('Slurm arrays: index from the task id, min and step; count from SLURM_ARRAY_TASK_COUNT', () => {
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '1', SLURM_ARRAY_TASK_COUNT: '2' })).toEqual({ k: 1, n: 2 });
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_MAX: '9', SLURM_ARRAY_TASK_STEP: '2', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ k: 1, n: 3 });
    // --array=0,3,7: no k/n reading covers it.
    expect(() => parseShard('auto', { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '7', SLURM_ARRAY_TASK_COUNT: '3' })).toThrow(/not an evenly stepped range/);
    expect(() => parseShard('auto/4', { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '1', SLURM_ARRAY_TASK_COUNT: '2' })).toThrow(/says 2 tasks/);
  });
  it('Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX with the count from auto/n or RELPROP_SHARD_COUNT', () => {
    expect(parseShard('auto/50', { JOB_COMPLETION_INDEX: '49' })).toEqual({ k: 49, n: 50 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '3', RELPROP_SHARD_COUNT: '8' })).toEqual({ k: 3, n: 8 });
    expect(() => parseShard('auto', { JOB_COMPLETION_INDEX: '3' })).toThrow(/not the count/);
    expect(() => parseShard('auto/4', { JOB_COMPLETION_INDEX: '4' })).toThrow(/outside 0…3/);
    expect(() => parseShard('auto', {})).toThrow(/no scheduler index found/);
    expect(parseShard('2/5', {})).toEqual({ k: 2, n: 5 });
  });
});
