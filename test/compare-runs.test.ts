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
import { FIXTURES } from './helpers/golden.js';

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

    // With workers the folder is checked before they start, and --restart reaches the merge.
    const w = await relprop('compare', '--model', 'image-softmax', ...base, '--workers', '2');
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/another configuration \(model\.weightsSha256/);
    await expect(fs.access(path.join(out, 'workers'))).rejects.toThrow();
    const wr = await relprop('compare', '--model', 'image-softmax', ...base, '--workers', '2', '--restart');
    expect(wr.code).toBe(0);
    expect(await read(path.join(out, 'results.csv'))).toBe(softmax);
  }, 120_000);
});

/** Starts the CLI, sends SIGINT once the journal holds `after` inputs, and resolves with its exit code and stderr. */
async function interrupted(args: string[], journal: string, after: number): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const { spawn } = await import('node:child_process');
  const { ROOT } = await import('./helpers/cli.js');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'relprop.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setInterval(async () => {
    const lines = (await fs.readFile(journal, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim()).length;
    if (lines >= after) {
      clearInterval(timer);
      child.kill('SIGINT');
    }
  }, 20);
  return new Promise((resolve) => child.on('exit', (code, signal) => (clearInterval(timer), resolve({ code, signal, stderr }))));
}

describe('results do not depend on how the run was executed', () => {
  // Attention GradCAM's map is constant (all zero after its ReLU) on some of these inputs, so its τ
  // with any other map is undefined there: the case that once counted as τ = 0 after the journal.
  const args = ['--model', 'image-softmax', '--data', 'task:image:20', '--methods', 'transformer-attribution,attention-gradcam', '--metrics', 'agreement,perturbation'];

  it('--workers 1, --workers 2, shards + merge and interrupt + resume write byte-identical results.csv and summary.json', async () => {
    const dir = (n: string) => path.join(tmp, 'exec', n);
    const one = await relprop('compare', ...args, '--out', dir('one'));
    expect(one.code).toBe(0);
    const two = await relprop('compare', ...args, '--out', dir('two'), '--workers', '2');
    expect(two.code).toBe(0);
    for (const k of [0, 1, 2]) expect((await relprop('compare', ...args, '--out', dir(`s${k}`), '--shard', `${k}/3`)).code).toBe(0);
    const merged = await relprop('merge', '--out', dir('merged'), dir('s2'), dir('s0'), dir('s1'));
    expect(merged.code).toBe(0);
    const cut = await interrupted(['compare', ...args, '--out', dir('cut')], path.join(dir('cut'), 'journal.jsonl'), 3);
    expect(cut.signal).toBeNull();
    expect(cut.code).toBe(130);
    const partial = JSON.parse(await read(path.join(dir('cut'), 'summary.json')));
    expect(partial.complete).toBe(false);
    expect(partial.missing.length).toBeGreaterThan(0);
    expect(partial.inputs + partial.missing.length).toBe(20);
    expect(await read(path.join(dir('cut'), 'report.html'))).toMatch(/class="incomplete"[^>]*>Incomplete: \d+ of 20 inputs were not evaluated/);
    const resumed = await relprop('compare', ...args, '--out', dir('cut'));
    expect(resumed.code).toBe(0);

    const csv = await read(path.join(dir('one'), 'results.csv'));
    const summary = await read(path.join(dir('one'), 'summary.json'));
    for (const other of ['two', 'merged', 'cut']) {
      expect(await read(path.join(dir(other), 'results.csv')), other).toBe(csv);
      expect(await read(path.join(dir(other), 'summary.json')), other).toBe(summary);
    }
    // Timings and dates are in provenance.json, which may differ.
    const prov = JSON.parse(await read(path.join(dir('two'), 'provenance.json')));
    expect(prov.timing.msPerExplanation['transformer-attribution']).toBeGreaterThan(0);
    expect(prov.date).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(prov.execution.workers).toBe(2);

    // The undefined τ: an empty CSV field, left out of the median and counted beside it.
    const s = JSON.parse(summary);
    expect(s.complete).toBe(true);
    const rows = csv.trim().split('\n').slice(1).map((l) => l.split(','));
    const tau = rows.filter((r) => r[1] === 'transformer-attribution' && r[2] === 'agreement.tau.attention-gradcam');
    expect(tau).toHaveLength(20);
    const defined = tau.filter((r) => r[3] !== '').map((r) => Number(r[3])).sort((a, b) => a - b);
    const undef = 20 - defined.length;
    expect(undef).toBeGreaterThan(0);
    const i = s.agreement.names.indexOf('transformer-attribution');
    const j = s.agreement.names.indexOf('attention-gradcam');
    expect(s.agreement.undefined[i][j]).toBe(undef);
    expect(s.agreement.n[i][j]).toBe(defined.length);
    const h = (defined.length - 1) / 2;
    expect(s.agreement.median[i][j]).toBeCloseTo(defined[Math.floor(h)]! + (h - Math.floor(h)) * (defined[Math.ceil(h)]! - defined[Math.floor(h)]!), 12);
    expect(s.perMethod['transformer-attribution']['agreement.tau.attention-gradcam'].undefined).toBe(undef);
    expect(one.stdout).toContain(`transformer-attribution vs attention-gradcam: undefined for ${undef} of 20 inputs`);
    expect(await read(path.join(dir('one'), 'report.html'))).toContain(`τ undefined for ${undef} of 20 inputs`);
  }, 600_000);
});

describe('merge checks its shards', () => {
  const args = (out: string, shard: string, ...more: string[]) => ['compare', '--model', 'image-softmax', '--data', 'task:image:5', '--methods', 'rollout', '--metrics', 'perturbation', '--out', out, '--shard', shard, ...more];
  const dir = (n: string) => path.join(tmp, 'merge', n);

  it('refuses mixed configurations, a shard given twice and overlapping inputs; names missing shards and marks the merge incomplete', async () => {
    for (const k of [0, 1, 2]) expect((await relprop(...args(dir(`s${k}`), `${k}/3`))).code).toBe(0);
    expect((await relprop(...args(dir('mean1'), '1/3', '--removal', 'mean'))).code).toBe(0);
    expect((await relprop(...args(dir('half0'), '0/2'))).code).toBe(0);

    const mixed = await relprop('merge', '--out', dir('m1'), dir('s0'), dir('mean1'), dir('s2'));
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toMatch(/different configurations \(removal: "zero" ≠ "mean"\)/);
    await expect(fs.access(path.join(dir('m1'), 'summary.json'))).rejects.toThrow();

    const twice = await relprop('merge', '--out', dir('m2'), dir('s0'), dir('s0'), dir('s1'));
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/shard 0\/3 given twice/);

    const split = await relprop('merge', '--out', dir('m3'), dir('s0'), dir('half0'));
    expect(split.code).toBe(1);
    expect(split.stderr).toMatch(/shards of different splits/);

    // Input 0 copied into shard 1's journal: the same input in two shards.
    await fs.cp(dir('s1'), dir('s1x'), { recursive: true });
    const first = (await read(path.join(dir('s0'), 'journal.jsonl'))).split('\n')[0]!;
    await fs.appendFile(path.join(dir('s1x'), 'journal.jsonl'), first.replace('"index":0', '"index":1') + '\n');
    const overlap = await relprop('merge', '--out', dir('m4'), dir('s0'), dir('s1x'), dir('s2'));
    expect(overlap.code).toBe(1);
    expect(overlap.stderr).toMatch(/input image-5000000 is in both/);

    const partial = await relprop('merge', '--out', dir('m5'), dir('s0'), dir('s2'));
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(/shards 1\/3 missing/);
    const s = JSON.parse(await read(path.join(dir('m5'), 'summary.json')));
    expect(s).toMatchObject({ complete: false, missingShards: ['1/3'], inputs: 3, expected: 5 });
    expect(await read(path.join(dir('m5'), 'report.html'))).toMatch(/Incomplete: shards 1\/3 are missing/);

    const whole = await relprop('merge', '--out', dir('m6'), dir('s0'), dir('s1'), dir('s2'));
    expect(whole.code).toBe(0);
    expect(JSON.parse(await read(path.join(dir('m6'), 'summary.json')))).toMatchObject({ complete: true, missing: [], inputs: 5, expected: 5 });
  }, 180_000);

  it('an interrupted shard makes the merge incomplete and names its missing inputs', async () => {
    const run = (shard: string) => ['compare', '--model', 'image-softmax', '--data', 'task:image:40', '--methods', 'rollout', '--metrics', 'perturbation', '--out', dir(`c${shard[0]}`), '--shard', shard];
    const cut = await interrupted(run('1/2'), path.join(dir('c1'), 'journal.jsonl'), 2);
    expect(cut.code).toBe(130);
    expect((await relprop(...run('0/2'))).code).toBe(0);
    const m = await relprop('merge', '--out', dir('cm'), dir('c0'), dir('c1'));
    expect(m.code).toBe(1);
    const s = JSON.parse(await read(path.join(dir('cm'), 'summary.json')));
    expect(s.complete).toBe(false);
    expect(s.missing.length).toBeGreaterThan(0);
    expect(s.missing.length + s.inputs).toBe(40);
    // Shard 1 holds the odd indices.
    for (const id of s.missing) expect(Number(id.split('-')[1]) % 2).toBe(1);
    expect(m.stderr).toMatch(new RegExp(`${s.missing.length} input\\(s\\) not evaluated \\(${s.missing[0]}`));
  }, 180_000);
});

describe('runs that cannot give a number say so', () => {
  it('exits non-zero when every input failed or there are none', async () => {
    const bad = path.join(tmp, 'bad-images');
    await fs.mkdir(bad, { recursive: true });
    await fs.copyFile(path.join(FIXTURES, 'images', 'corrupt.png'), path.join(bad, 'corrupt.png'));
    await fs.copyFile(path.join(FIXTURES, 'images', 'truncated.jpg'), path.join(bad, 'truncated.jpg'));
    const all = await relprop('compare', '--model', 'image-softmax', '--data', bad, '--methods', 'rollout', '--metrics', 'perturbation', '--out', path.join(tmp, 'allbad'));
    expect(all.code).toBe(1);
    expect(all.stderr).toMatch(/no input could be evaluated \(2 failed\)/);
    const none = await relprop('compare', '--model', 'image-softmax', '--data', 'task:image:0', '--methods', 'rollout', '--metrics', 'perturbation', '--out', path.join(tmp, 'none'));
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/task:image:0: holds no inputs/);
    const empty = path.join(tmp, 'empty.txt');
    await fs.writeFile(empty, '\n\n');
    const e = await relprop('compare', '--model', 'text-softmax', '--data', empty, '--methods', 'rollout', '--metrics', 'perturbation', '--out', path.join(tmp, 'empty'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/empty\.txt: /);
  }, 60_000);

  it('a JSONL label outside the model\'s classes is an error naming the line', async () => {
    const file = path.join(tmp, 'labels.jsonl');
    await fs.writeFile(file, '{"text": "a fine film", "label": 1}\n\n{"text": "a poor film", "label": 2}\n');
    const r = await relprop('compare', '--model', 'text-softmax', '--data', file, '--methods', 'rollout', '--metrics', 'perturbation', '--out', path.join(tmp, 'labels'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/labels\.jsonl: line 3: label 2 is not one of the model's 2 classes \(an integer 0–1\)/);
    await expect(fs.access(path.join(tmp, 'labels', 'journal.jsonl'))).rejects.toThrow();
  }, 60_000);

  it('a mask of another size than its image is an error naming the mask', async () => {
    const images = path.join(tmp, 'masked');
    const masks = path.join(tmp, 'masks');
    await fs.mkdir(images, { recursive: true });
    await fs.mkdir(masks, { recursive: true });
    await fs.copyFile(path.join(FIXTURES, 'images', 'halves-32x16.jpg'), path.join(images, 'a.jpg'));
    await fs.copyFile(path.join(FIXTURES, 'images', 'gradient-6x4.png'), path.join(images, 'b.png'));
    // a's mask has the right size; b's (6×4) is given a's 32×16 one.
    const { writePng, readImage } = await import('../src/core/image/io.js');
    const big = await readImage(path.join(FIXTURES, 'images', 'halves-32x16.jpg'));
    await writePng(path.join(masks, 'a.png'), big);
    await writePng(path.join(masks, 'b.png'), big);
    const out = path.join(tmp, 'masked-out');
    const r = await relprop('compare', '--model', 'image-softmax', '--data', images, '--masks', masks, '--methods', 'rollout', '--metrics', 'localisation', '--out', out);
    const s = JSON.parse(await read(path.join(out, 'summary.json')));
    expect(s.inputs).toBe(1);
    expect(s.errors).toEqual([{ id: 'b.png', error: `${path.join(masks, 'b.png')}: mask is 32×16 but its image ${path.join(images, 'b.png')} is 6×4` }]);
    expect(r.stderr).toContain('mask is 32×16 but its image');
  }, 60_000);
});

describe('what the report and the table show', () => {
  it('text: ERASER comprehensiveness and sufficiency in the stdout table and the report, as in summary.json', async () => {
    const out = path.join(tmp, 'eraser');
    const r = await relprop('compare', '--model', 'text-softmax', '--data', 'task:text:4', '--methods', 'transformer-attribution,random', '--metrics', 'perturbation', '--out', out);
    expect(r.code).toBe(0);
    const s = JSON.parse(await read(path.join(out, 'summary.json')));
    const html = await read(path.join(out, 'report.html'));
    for (const m of ['transformer-attribution', 'random']) {
      const c = s.perMethod[m]['eraser.comprehensiveness'].mean as number;
      const f = s.perMethod[m]['eraser.sufficiency'].mean as number;
      expect(s.perMethod[m]['eraser.comprehensiveness'].n).toBe(4);
      const row = r.stdout.split('\n').find((l) => l.startsWith(`| ${m} |`))!.split('|').map((x) => x.trim());
      const head = r.stdout.split('\n').find((l) => l.startsWith('| method |'))!.split('|').map((x) => x.trim());
      expect(row[head.indexOf('compr. ↑')]).toBe(c.toFixed(3));
      expect(row[head.indexOf('suff. ↓')]).toBe(f.toFixed(3));
      const cell = (col: string) => html.match(new RegExp(`<tr data-method="${m}">.*?<td[^>]*data-col="${col.replace('.', '\\.')}"[^>]*>(?:<strong>)?([^<]*)`))![1];
      expect(Number(cell('eraser.comprehensiveness'))).toBeCloseTo(c, 3);
      expect(Number(cell('eraser.sufficiency'))).toBeCloseTo(f, 3);
    }
    expect(html).toContain('ERASER (mean)');
  }, 60_000);

  it('images: each example input is drawn beside its maps, with class names; the provenance is shown', async () => {
    const out = path.join(tmp, 'grid');
    const r = await relprop('compare', '--model', 'image-softmax', '--data', 'task:image:3', '--methods', 'rollout,random', '--metrics', 'perturbation', '--out', out);
    expect(r.code).toBe(0);
    const s = JSON.parse(await read(path.join(out, 'summary.json')));
    const html = await read(path.join(out, 'report.html'));
    const names = ['circle', 'square', 'triangle', 'cross'];
    expect(s.examples).toHaveLength(3);
    for (const [i, ex] of s.examples.entries()) {
      expect(ex.example.view).toMatchObject({ width: 64, height: 64 });
      expect(Buffer.from(ex.example.view.rgb, 'base64')).toHaveLength(64 * 64 * 3);
      // The input cell of its row holds the image (a CSS class with the PNG), then the maps over it.
      const row = html.match(new RegExp(`<tr><th scope="row" class="input"><div class="frame in-${i}"[^>]*></div><div class="id">${ex.id}</div>(.*?)</tr>`));
      expect(row, ex.id).not.toBeNull();
      expect(row![1]).toContain(`label ${ex.example.label} (${names[ex.example.label]}) · predicted ${ex.example.prediction} (${names[ex.example.prediction]})`);
      expect(row![1].match(/class="frame in-\d+"/g)).toHaveLength(2);
      expect(html).toMatch(new RegExp(`\\.in-${i}\\{background-image:url\\("data:image/png;base64,`));
    }
    const prov = JSON.parse(await read(path.join(out, 'provenance.json')));
    expect(html).toContain(s.config.model.weightsSha256);
    expect(html).toContain(`<dt>Engine</dt><dd>${prov.engine}</dd>`);
    expect(html).toContain(`<dt>Date</dt><dd>${prov.date}</dd>`);
    expect(html).toContain('generator seed 7000001, samples 5000000–5000002');
  }, 60_000);
});
