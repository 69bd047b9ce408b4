import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FIXTURES, GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';
import { relprop, ROOT, unescapeHtml } from './helpers/cli.js';
import { createHash } from 'node:crypto';
import { readPngText } from '../src/core/image/png-text.js';

const MODEL = path.join(GOLDEN_DIR, 'vit-tiny-a');
const golden = loadGolden('vit-tiny-a');
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-cli-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('relprop explain', () => {
  it('--tensor … --method rollout --json prints the specified object, map equal to the golden rollout', async () => {
    const r = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img0.json'), '--method', 'rollout', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ method: 'rollout', target: golden.results[0].argmax, map: { shape: [4, 4] }, ledger: null });
    expectClose(out.logits, tensor(golden.results[0].logits).data, 1e-5, 'logits');
    expectClose(out.map.data, tensor(golden.results[0].target_independent['baselines.generate_rollout.start_layer_0'].output).data, 1e-5, 'rollout');
  });

  it('--method transformer-attribution --target 4 --json prints the map and the ledger (golden img1 argmin)', async () => {
    const r = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img1.json'), '--method', 'transformer-attribution', '--target', '4', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.target).toBe(4);
    const g = golden.results[1].targets.find((t: { target: number }) => t.target === 4);
    expectClose(out.map.data, tensor(g.methods['ours.transformer_attribution.start_layer_0'].output).data, 5e-3, 'transformer-attribution');
    expect(out.ledger[0]).toEqual({ layer: 'head', kind: 'Linear', relevanceIn: 1, relevanceOut: expect.closeTo(1, 5) });
    expect(out.ledger.find((e: { layer: string }) => e.layer === 'blocks.2.add1').branches).toHaveLength(2);
    expect(out.ledger.every((e: { relevanceIn: unknown; relevanceOut: unknown }) => typeof e.relevanceIn === 'number' && typeof e.relevanceOut === 'number')).toBe(true);
  });

  it('--image … --out overlay.png writes an overlay at the image\'s own size; --out x.json writes the JSON', async () => {
    const png = path.join(tmp, 'overlay.png');
    const image = path.join(FIXTURES, 'images', 'halves-32x16.jpg');
    const r = await relprop('explain', '--model', MODEL, '--image', image, '--method', 'lrp', '--out', png, '--bare');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*overlay\.png/);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 32, 16]);
    // Without --bare the legend strip goes below the overlay: as wide as its text needs, taller.
    const legend = path.join(tmp, 'overlay-legend.png');
    expect((await relprop('explain', '--model', MODEL, '--image', image, '--method', 'lrp', '--out', legend)).code).toBe(0);
    const withLegend = await sharp(legend).metadata();
    expect(withLegend.width!).toBeGreaterThanOrEqual(32);
    expect(withLegend.height!).toBeGreaterThan(16);
    // Both carry their provenance in an iTXt chunk: the model's real weights hash and the options given.
    for (const [file, bare] of [[png, true], [legend, false]] as const) {
      const prov = JSON.parse(readPngText(new Uint8Array(await fs.readFile(file)))['relprop']!);
      expect(prov.model.weightsSha256).toBe(createHash('sha256').update(await fs.readFile(path.join(MODEL, 'weights.safetensors'))).digest('hex'));
      expect(prov.model.folder).toBe(path.resolve(MODEL));
      expect(prov.method).toBe('lrp');
      expect(prov.options).toMatchObject({ colormap: 'bwr', alpha: 0.5, legend: !bare });
      expect(prov.relprop.version).toBe(JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')).version);
    }
    const json = path.join(tmp, 'sub', 'e.json');
    expect((await relprop('explain', '--model', MODEL, '--image', image, '--method', 'lrp', '--out', json)).code).toBe(0);
    const saved = JSON.parse(await fs.readFile(json, 'utf8'));
    expect(saved.map.shape).toEqual([32, 32]);
    expect(saved.map.space).toBe('pixel');
  });

  it('--report writes the one-input report: every method, its status, the ledger chart and R^(A) per block (golden attn_cam totals)', async () => {
    const file = path.join(tmp, 'report.html');
    const r = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img0.json'), '--method', 'transformer-attribution,lrp,rollout', '--report', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*report\.html/);
    const html = await fs.readFile(file, 'utf8');
    expect([...html.matchAll(/<article class="card" data-method="([^"]+)"/g)].map((m) => m[1])).toEqual(['transformer-attribution', 'lrp', 'rollout']);
    // The paper's rules conserve to the first block; rollout has no relevance pass.
    expect(html).toMatch(/data-method="transformer-attribution">.*?✓ conserved to 1e-3/s);
    expect(html).toMatch(/data-method="rollout">.*?no ledger/s);
    expect((html.match(/<svg /g) ?? []).length).toBe(2);
    // Per block, ΣR^(A) is the sum of the authors' attn_cam for the predicted class.
    const g = golden.results[0].targets.find((t: { target: number }) => t.target === golden.results[0].argmax);
    const expected = (g.ours.attn_cam as unknown[]).map((cam) => Array.from(tensor(cam).data).reduce((a, b) => a + b, 0));
    const section = /<section class="method"><h3>Transformer attribution.*?<\/section>/s.exec(html)![0];
    const totals = [...section.matchAll(/block (\d+) · ΣR<sup>\(A\)<\/sup> (-?[\d.e+-]+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(totals.map(([l]) => l)).toEqual(expected.map((_, l) => l));
    totals.forEach(([l, v]) => expect(Math.abs(v - expected[l]!)).toBeLessThanOrEqual(Math.abs(expected[l]!) * 5e-3 + 1e-6));
    expect(html).not.toMatch(/<script|(src|href)="https?:/i);
    // Each map's provenance (issue 15, item 16): read back from the report's JSON block.
    const block = /<pre hidden id="relprop-provenance">(.*?)<\/pre>/s.exec(html)![1]!;
    const provs = JSON.parse(unescapeHtml(block));
    expect(provs.map((p: { method: string }) => p.method)).toEqual(['transformer-attribution', 'lrp', 'rollout']);
    const sha = createHash('sha256').update(await fs.readFile(path.join(MODEL, 'weights.safetensors'))).digest('hex');
    for (const p of provs) {
      expect(p.model.weightsSha256).toBe(sha);
      expect(p.target).toBe(golden.results[0].argmax);
      expect(p.engine).toMatch(/\w/);
      expect(Number.isNaN(Date.parse(p.date))).toBe(false);
    }
    expect(provs[0].rules).toBe('paper');
    expect(provs[0].options).toMatchObject({ startLayer: 0, rules: 'paper' });
    expect(html).toMatch(/<h2>Provenance<\/h2>.*weights sha256 [0-9a-f]{64}/s);

    const bad = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img0.json'), '--method', 'lrp,rollout');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/several methods .* need --report/);
    const ext = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img0.json'), '--report', path.join(tmp, 'r.docx'));
    expect(ext.stderr).toMatch(/--report must end in \.html or \.pdf/);
  });

  it('--list-methods lists every method id and rule set; --help describes every option', async () => {
    const list = await relprop('explain', '--list-methods');
    for (const id of ['transformer-attribution', 'lrp', 'partial-lrp', 'attention-gradcam', 'raw-attention', 'rollout', 'saliency', 'gradient-input', 'integrated-gradients', 'paper', 'baseline']) {
      expect(list.stdout).toContain(id);
    }
    const help = await relprop('explain', '--help');
    for (const opt of ['--model', '--image', '--tensor', '--method', '--target', '--start-layer', '--rules', '--steps', '--out', '--json', '--list-methods', '--backend']) {
      expect(help.stdout).toContain(opt);
    }
    expect((await relprop('--help')).stdout).toContain('explain');
  });

  it.each([
    [['--method', 'magic'], /unknown method 'magic'/],
    [['--target', '9'], /target 9 is out of range/],
    [['--start-layer', '5', '--method', 'rollout'], /start layer 5 is out of range/],
    [['--rules', 'weird', '--method', 'lrp'], /unknown rule set 'weird'/],
    [['--steps', '4', '--method', 'rollout'], /--steps does not apply to method 'rollout'/],
  ])('bad request %j fails with a clear message and exit code 1', async (extra, message) => {
    const r = await relprop('explain', '--model', MODEL, '--tensor', path.join(MODEL, 'img0.json'), ...extra);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('bad inputs name the file and the problem', async () => {
    const corrupt = path.join(FIXTURES, 'images', 'corrupt.png');
    let r = await relprop('explain', '--model', MODEL, '--image', corrupt);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('corrupt.png');
    const wrong = path.join(tmp, 'wrong.json');
    await fs.writeFile(wrong, JSON.stringify({ dtype: 'float32', shape: [1, 3, 2, 2], data: [[[[0, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]]] }));
    r = await relprop('explain', '--model', MODEL, '--tensor', wrong);
    expect(r.stderr).toMatch(/wrong\.json: tensor has shape \[1, 3, 2, 2\] but model 'vit-tiny-a' expects \[1, 3, 32, 32\]/);
    r = await relprop('explain', '--model', path.join(tmp, 'no-such-model'), '--tensor', wrong);
    expect(r.stderr).toMatch(/no-such-model: model folder not found/);
    r = await relprop('explain', '--model', MODEL);
    expect(r.stderr).toMatch(/give exactly one input/);
    r = await relprop('explain', '--model', MODEL, '--tensor', wrong, '--out', 'x.gif');
    expect(r.stderr).toMatch(/--out must end in \.png, \.json or \.html/);
  });
});
