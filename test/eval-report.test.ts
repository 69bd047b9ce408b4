import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CompareSummary } from '../src/core/eval/compare.js';
import { DEFAULT_FRACTIONS, perturbationAuc } from '../src/core/eval/perturbation.js';
import { compareReportHtml } from '../src/core/eval/report.js';
import { htmlToPdf } from '../src/core/eval/report-pdf.js';
import { summarise } from '../src/core/eval/stats.js';
import { UsageError } from '../src/core/errors.js';

const METHODS = ['transformer-attribution', 'rollout', 'random'];

/** Deterministic pseudo-random numbers, so the fixture is realistic-looking yet fixed. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function curve(accuracy: number[], probability: number[]) {
  const fractions = [...DEFAULT_FRACTIONS];
  return { fractions, accuracy, probability, aucAccuracy: perturbationAuc(fractions, accuracy), aucProbability: perturbationAuc(fractions, probability) };
}

const PERT = {
  'transformer-attribution': {
    positive: curve([1, 0.62, 0.41, 0.3, 0.22, 0.17, 0.13, 0.1, 0.08, 0.07], [0.9, 0.5, 0.33, 0.24, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06]),
    negative: curve([1, 0.98, 0.96, 0.93, 0.9, 0.85, 0.78, 0.69, 0.55, 0.38], [0.9, 0.88, 0.86, 0.83, 0.79, 0.74, 0.66, 0.57, 0.45, 0.3]),
  },
  rollout: {
    positive: curve([1, 0.7, 0.52, 0.4, 0.31, 0.25, 0.2, 0.15, 0.12, 0.1], [0.9, 0.6, 0.43, 0.33, 0.26, 0.2, 0.16, 0.12, 0.1, 0.08]),
    negative: curve([1, 0.97, 0.93, 0.88, 0.82, 0.75, 0.66, 0.56, 0.44, 0.3], [0.9, 0.86, 0.82, 0.77, 0.71, 0.64, 0.56, 0.47, 0.36, 0.24]),
  },
  random: {
    positive: curve([1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.41, 0.32, 0.24, 0.16], [0.9, 0.79, 0.69, 0.6, 0.51, 0.42, 0.34, 0.26, 0.19, 0.13]),
    negative: curve([1, 0.9, 0.81, 0.71, 0.61, 0.52, 0.42, 0.33, 0.25, 0.17], [0.9, 0.8, 0.7, 0.61, 0.52, 0.43, 0.35, 0.27, 0.2, 0.14]),
  },
};

const stat = (xs: number[]) => ({ ...summarise(xs), undefined: 0 });

function localisation(rand: () => number, centre: number): Record<string, ReturnType<typeof stat>> {
  const keys = ['pixel_accuracy', 'miou', 'ap', 'pointing_game', 'relevance_mass', 'relevance_rank'];
  return Object.fromEntries(keys.map((k, i) => [`localisation.${k}`, stat(Array.from({ length: 12 }, () => Math.min(1, Math.max(0, centre + i * 0.02 + (rand() - 0.5) * 0.2))))]));
}

/** An [8,8] map with a bright blob around (cy, cx); `signed` adds a negative region. */
function blob(cy: number, cx: number, signed: boolean): number[] {
  return Array.from({ length: 64 }, (_, i) => {
    const y = Math.floor(i / 8);
    const x = i % 8;
    const v = Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 4);
    return signed ? v - 0.6 * Math.exp(-((y - 6) ** 2 + (x - 1) ** 2) / 3) : v;
  });
}

export function imageSummary(): CompareSummary {
  const rand = lcg(7);
  return {
    complete: true,
    expected: 200,
    missing: [],
    config: {
      relprop: { version: '0.1.0' },
      model: { name: 'vit-tiny-imagenette', family: 'vit', folder: '/models/vit-tiny-imagenette', weightsSha256: 'ab'.repeat(32), configSha256: 'cd'.repeat(32) },
      data: { spec: '/data/imagenette/val', description: 'imagenette val (200 images, segmentation masks)', kind: 'image', count: 200, idsSha256: 'ef'.repeat(32) },
      methods: METHODS,
      metrics: ['perturbation', 'localisation', 'agreement'],
      removal: 'zero',
      target: 'predicted',
      methodOptions: {},
      examples: 6,
    },
    options: { 'transformer-attribution': { startLayer: 0, rules: 'paper' }, rollout: { startLayer: 0 }, random: {} },
    model: 'vit-tiny-imagenette',
    data: 'imagenette val (200 images, segmentation masks)',
    methods: METHODS,
    metrics: ['perturbation', 'localisation', 'agreement'],
    inputs: 198,
    errors: [
      { id: 'n01440764_1234.JPEG', error: 'corrupt or truncated JPEG image (decoder: premature end of data)' },
      { id: 'n02102040_77.png', error: 'file is empty (0 bytes), not an image' },
    ],
    perMethod: {
      'transformer-attribution': { ...localisation(rand, 0.7), 'agreement.tau.rollout': stat([0.4, 0.5, 0.6]) },
      rollout: localisation(rand, 0.6),
      random: localisation(rand, 0.3),
    },
    perturbation: PERT,
    agreement: {
      names: [...METHODS, 'occlusion'],
      median: [
        [1, 0.52, 0.01, 0.31],
        [0.52, 1, -0.02, 0.22],
        [0.01, -0.02, 1, 0],
        [0.31, 0.22, 0, 1],
      ],
      iqr: [
        [0, 0.1, 0.05, 0.12],
        [0.1, 0, 0.04, 0.11],
        [0.05, 0.04, 0, 0.05],
        [0.12, 0.11, 0.05, 0],
      ],
      n: [
        [0, 198, 198, 198],
        [198, 0, 198, 198],
        [198, 198, 0, 198],
        [198, 198, 198, 0],
      ],
      undefined: [
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
    },
    timing: { 'transformer-attribution': 412.3, rollout: 38.71, random: 0.42 },
    examples: [
      {
        id: 'n03888257_10.JPEG',
        index: 0,
        example: {
          maps: { 'transformer-attribution': { shape: [8, 8], data: blob(3, 4, false) }, rollout: { shape: [8, 8], data: blob(2, 5, false) }, random: { shape: [8, 8], data: Array.from({ length: 64 }, () => rand()) } },
          label: 7,
          prediction: 7,
        },
      },
      {
        id: 'n03425413_99.JPEG',
        index: 1,
        example: {
          maps: { 'transformer-attribution': { shape: [8, 8], data: blob(5, 3, true) }, rollout: { shape: [8, 8], data: blob(4, 4, false) }, random: { shape: [8, 8], data: Array.from({ length: 64 }, () => rand()) } },
          label: 4,
          prediction: 9,
        },
      },
    ],
  };
}

export function textSummary(): CompareSummary {
  const tokens = ['[CLS]', 'the', 'film', 'is', 'a', 'wonder', '##ful', ',', 'moving', 'story', '.', '[SEP]', '[PAD]', '[PAD]'];
  const ta = [3, 0.05, 0.1, 0.02, 0.01, 0.9, 0.6, 0, 0.5, 0.2, 0, 2, 0, 0];
  const ro = [4, 0.1, 0.2, 0.1, 0.05, 0.5, 0.4, 0.05, 0.3, 0.3, 0.02, 3, 0, 0];
  const rn = [0.1, -0.3, 0.2, 0.5, -0.1, 0.05, 0.4, -0.2, 0.3, 0.1, 0.0, 0.2, 0, 0];
  const base = imageSummary();
  return {
    ...base,
    model: 'bert-sst2',
    data: 'SST-2 validation',
    metrics: ['perturbation', 'agreement'],
    perMethod: { 'transformer-attribution': {}, rollout: {}, random: {} },
    errors: [],
    examples: [
      { id: 'sst2-0', index: 0, example: { maps: { 'transformer-attribution': { shape: [14], data: ta }, rollout: { shape: [14], data: ro }, random: { shape: [14], data: rn } }, label: 1, prediction: 1, tokens } },
    ],
  };
}

const num = (s: string) => Number(s.replace('\u2212', '-'));
const attr = (tag: string, name: string) => tag.match(new RegExp(`\\b${name}="([^"]*)"`))?.[1];

/** The `<td ...>` cell of one column in one method's row of the results table. */
function resultCell(html: string, method: string, col: string): string {
  const row = html.match(new RegExp(`<tr data-method="${method}">(.*?)</tr>`))![1]!;
  return row.match(new RegExp(`<td[^>]*data-col="${col.replace('.', '\\.')}"[^>]*>(.*?)</td>`))![0];
}

describe('compareReportHtml', () => {
  const summary = imageSummary();
  const html = compareReportHtml(summary, { title: 'ViT on Imagenette' });

  it('is one self-contained page: CSP, no scripts, no remote content', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain('<title>ViT on Imagenette</title>');
  });

  it('has a header with model, data, counts, methods, metrics and the skipped inputs', () => {
    const header = html.slice(html.indexOf('<header>'), html.indexOf('</header>'));
    expect(header).toContain('vit-tiny-imagenette');
    expect(header).toContain('imagenette val (200 images, segmentation masks)');
    expect(header).toContain('198 evaluated');
    for (const m of METHODS) expect(header).toContain(`<code>${m}</code>`);
    expect(header).toContain('<code>localisation</code>');
    expect(header).toContain('2 inputs skipped');
    expect(header).toContain('<li><code>n02102040_77.png</code>: file is empty (0 bytes), not an image</li>');
  });

  it('has one table row per method, with the best value of each column in bold', () => {
    const tbody = html.match(/<table class="results">.*?<tbody>(.*?)<\/tbody>/)![1]!;
    expect(tbody.match(/<tr /g)).toHaveLength(3);
    expect([...tbody.matchAll(/<tr data-method="([^"]+)"/g)].map((m) => m[1])).toEqual(METHODS);
    expect(html).toMatch(/Positive perturbation AUC.*lower is better/);
    expect(html).toMatch(/Negative perturbation AUC.*higher is better/);

    const bold = (method: string, col: string) => resultCell(html, method, col).includes('<strong>');
    const value = (method: string, col: string) => num(resultCell(html, method, col).replace(/<[^>]+>/g, ''));
    // Lowest positive AUC and highest negative AUC win.
    expect(bold('transformer-attribution', 'positive.accuracy')).toBe(true);
    expect(bold('rollout', 'positive.accuracy')).toBe(false);
    expect(bold('random', 'positive.accuracy')).toBe(false);
    expect(value('transformer-attribution', 'positive.accuracy')).toBeCloseTo(PERT['transformer-attribution'].positive.aucAccuracy, 1);
    expect(bold('transformer-attribution', 'negative.probability')).toBe(true);
    expect(bold('random', 'negative.probability')).toBe(false);
    // Localisation: higher wins, shown as percent of the summary's mean.
    for (const k of ['pixel_accuracy', 'miou', 'ap', 'pointing_game', 'relevance_mass', 'relevance_rank']) {
      const means = METHODS.map((m) => summary.perMethod[m]![`localisation.${k}`]!.mean);
      const winner = METHODS[means.indexOf(Math.max(...means))]!;
      for (const m of METHODS) expect(bold(m, `localisation.${k}`)).toBe(m === winner);
      expect(value('rollout', `localisation.${k}`)).toBeCloseTo(summary.perMethod['rollout']![`localisation.${k}`]!.mean * 100, 1);
    }
    // Time: fastest wins.
    expect(bold('random', 'ms')).toBe(true);
    expect(bold('transformer-attribution', 'ms')).toBe(false);
    expect(html.match(/<strong>/g)).toHaveLength(4 + 6 + 1);
  });

  it('shows NaN and missing values as a dash and never bolds them', () => {
    const s = imageSummary();
    const h = compareReportHtml({
      ...s,
      perturbation: { ...s.perturbation, rollout: { ...s.perturbation['rollout']!, positive: { ...s.perturbation['rollout']!.positive!, aucAccuracy: NaN } } },
      perMethod: { ...s.perMethod, random: {} },
      timing: { ...s.timing, rollout: NaN },
    });
    expect(resultCell(h, 'rollout', 'positive.accuracy')).toMatch(/>—<\/td>$/);
    expect(resultCell(h, 'random', 'localisation.miou')).toMatch(/>—<\/td>$/);
    expect(resultCell(h, 'rollout', 'ms')).toMatch(/>—<\/td>$/);
    expect(resultCell(h, 'transformer-attribution', 'positive.accuracy')).toContain('<strong>');
  });

  it('draws one perturbation polyline per method and test, through the mean accuracies', () => {
    const polylines = [...html.matchAll(/<polyline [^>]*>/g)].map((m) => m[0]);
    expect(polylines).toHaveLength(METHODS.length * 2);
    // y must be one decreasing linear function of accuracy, shared by every curve in both panels.
    const pairs: Array<[number, number]> = [];
    for (const p of polylines) {
      const method = attr(p, 'data-method')! as keyof typeof PERT;
      const test = attr(p, 'data-test')! as 'positive' | 'negative';
      const pts = attr(p, 'points')!.split(' ').map((xy) => xy.split(',').map(Number) as [number, number]);
      expect(pts).toHaveLength(DEFAULT_FRACTIONS.length);
      // x grows evenly with the fraction removed.
      const dx = pts[1]![0] - pts[0]![0];
      pts.forEach(([x], i) => expect(x).toBeCloseTo(pts[0]![0] + i * dx, 1));
      pts.forEach(([, y], i) => pairs.push([PERT[method][test].accuracy[i]!, y]));
    }
    const [v0, y0] = pairs.find(([v]) => v === 1)!;
    const [v1, y1] = pairs.find(([v]) => v < 0.2)!;
    const slope = (y1 - y0) / (v1 - v0);
    expect(slope).toBeLessThan(0);
    for (const [v, y] of pairs) expect(y).toBeCloseTo(y0 + slope * (v - v0), 1);
    // A legend entry per method.
    const legend = html.match(/<h2>Perturbation curves<\/h2><div class="legend-row">(.*?)<\/div>/)![1]!;
    for (const m of METHODS) expect(legend).toContain(`<code>${m}</code>`);
    expect(html).toContain('<svg class="curves" data-test="positive"');
    expect(html).toContain('<svg class="curves" data-test="negative"');
  });

  it('draws the Kendall τ matrix as n×n cells with the values printed', () => {
    const names = summary.agreement!.names;
    const cells = [...html.matchAll(/<g class="tau" data-row="([^"]+)" data-col="([^"]+)">.*?<text class="val"[^>]*>([^<]*)<\/text><\/g>/g)];
    expect(cells).toHaveLength(names.length ** 2);
    for (const [, row, col, text] of cells) {
      const v = summary.agreement!.median[names.indexOf(row!)]![names.indexOf(col!)]!;
      expect(text).toBe(v < 0 ? `\u2212${Math.abs(v).toFixed(2)}` : v.toFixed(2));
    }
    // Names on both axes: each name appears as a row label and a rotated column label.
    for (const n of names) expect(html.match(new RegExp(`<text class="name"[^>]*>${n}</text>`, 'g'))).toHaveLength(2);
  });

  it('leaves the τ section out when there is no agreement matrix', () => {
    const h = compareReportHtml({ ...summary, agreement: null });
    expect(h).not.toContain('class="agreement"');
    expect(h).not.toContain('<h2>Agreement');
  });

  it('has an examples × methods heatmap grid, jet for unsigned maps and bwr for signed ones', () => {
    const cells = [...html.matchAll(/<td class="hm-cell" data-example="([^"]+)" data-method="([^"]+)" data-colormap="([^"]+)">(.*?)<\/td>/g)];
    expect(cells).toHaveLength(2 * METHODS.length);
    for (const [, ex, m, cmap, body] of cells) {
      expect(body!.match(/<rect /g)).toHaveLength(64);
      const signed = ex === 'n03425413_99.JPEG' && m === 'transformer-attribution';
      expect(cmap).toBe(signed ? 'bwr' : 'jet');
    }
    // No image given: no data URI and full-opacity heatmaps.
    expect(html).not.toContain('data:image/png');
    expect(html).not.toContain('opacity="0.5"');
    expect(html).toContain('label 4 · predicted 9 <span class="bad">✗</span>');
  });

  it('embeds a given input image once, as a data URI under half-transparent heatmaps', () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 250]);
    const h = compareReportHtml(summary, { images: { 'n03888257_10.JPEG': png } });
    const uri = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    expect(h.split(uri)).toHaveLength(2);
    expect(h.match(/opacity="0\.5"/g)).toHaveLength(METHODS.length);
    expect(h.match(/class="frame in-0"/g)).toHaveLength(METHODS.length + 1);
  });

  it('averages pixel maps down to at most 32×32 cells', () => {
    const big = Array.from({ length: 64 * 64 }, (_, i) => (Math.floor(i / 64) < 32 ? 1 : 0));
    const ex = { ...summary.examples[0]!, example: { ...summary.examples[0]!.example!, maps: { ...summary.examples[0]!.example!.maps, rollout: { shape: [64, 64], data: big } } } };
    const h = compareReportHtml({ ...summary, examples: [ex] });
    const cell = h.match(/<td class="hm-cell" data-example="[^"]+" data-method="rollout"[^>]*>(.*?)<\/td>/)![1]!;
    expect(cell).toContain('viewBox="0 0 32 32"');
    const rects = [...cell.matchAll(/<rect x="(\d+)" y="(\d+)"[^>]*fill="(#[0-9a-f]{6})"/g)];
    expect(rects).toHaveLength(32 * 32);
    // Top half is the map's maximum (jet's dark red), bottom half its minimum (jet's dark blue).
    expect(new Set(rects.filter((r) => Number(r[2]) < 16).map((r) => r[3]))).toEqual(new Set(['#800000']));
    expect(new Set(rects.filter((r) => Number(r[2]) >= 16).map((r) => r[3]))).toEqual(new Set(['#000080']));
  });

  it('shows at most 6 examples', () => {
    const many = Array.from({ length: 9 }, (_, i) => ({ ...summary.examples[0]!, id: `img-${i}`, index: i }));
    const h = compareReportHtml({ ...summary, examples: many });
    expect(h.match(/<td class="hm-cell"/g)).toHaveLength(6 * METHODS.length);
  });

  it('shades the tokens of text examples per method, without special tokens', () => {
    const h = compareReportHtml(textSummary());
    const cells = [...h.matchAll(/<td class="hm-cell tokens" data-example="sst2-0" data-method="([^"]+)" data-colormap="bwr">(.*?)<\/td>/g)];
    expect(cells.map((c) => c[1])).toEqual(METHODS);
    for (const [, , body] of cells) {
      const words = [...body!.matchAll(/<span class="tk"[^>]*>([^<]*)<\/span>/g)].map((m) => m[1]);
      expect(words).toEqual(['the', 'film', 'is', 'a', 'wonder', 'ful', ',', 'moving', 'story', '.']);
      // The continuation piece is glued to its word.
      expect(body).toMatch(/>wonder<\/span><span class="tk"[^>]*>ful</);
    }
    // Scaled over the real tokens: 'wonder' (0.9, the largest) is full red despite [CLS] = 3.
    expect(cells[0]![2]).toMatch(/style="background:#ff0000[^"]*">wonder</);
    // Signed map (random): the largest |r| among the real tokens ('is', 0.5) is full red, and
    // 'the' (−0.3) is blue at 60 %: bwr(−0.6) = (102, 102, 255).
    expect(cells[2]![2]).toMatch(/style="background:#ff0000[^"]*">is</);
    expect(cells[2]![2]).toMatch(/style="background:#6666ff[^"]*">the</);
    expect(h).not.toContain('class="heatmaps"');
    expect(h).not.toContain('Localisation (mean');
  });

  it('escapes hostile method names, ids and error messages everywhere', () => {
    const evil = '<img src=x onerror="alert(1)">';
    const s = imageSummary();
    const rename = <T,>(r: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k === 'rollout' ? evil : k, v]));
    const methods = s.methods.map((m) => (m === 'rollout' ? evil : m));
    const h = compareReportHtml(
      {
        ...s,
        model: '<b>model</b>',
        methods,
        perMethod: rename(s.perMethod),
        perturbation: rename(s.perturbation),
        timing: rename(s.timing),
        agreement: { ...s.agreement!, names: s.agreement!.names.map((m) => (m === 'rollout' ? evil : m)) },
        errors: [{ id: '"><script>alert(2)</script>', error: '</li></ol><script>alert(3)</script>' }],
        examples: s.examples.map((ex) => ({ ...ex, id: `${ex.id}<script>`, example: { ...ex.example!, maps: rename(ex.example!.maps) } })),
      },
      { title: '</title><script>x</script>' },
    );
    expect(h).not.toMatch(/<script/i);
    expect(h).not.toContain('<img');
    expect(h).not.toContain('<b>model');
    // No tag carries an event handler: strip the (quote-free, escaped) attribute values and look.
    for (const tag of h.match(/<[^>]*>/g)!) expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\son[a-z]+=/i);
    expect(h).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect(h).toContain('&lt;/li&gt;&lt;/ol&gt;&lt;script&gt;alert(3)&lt;/script&gt;');
    // The renamed method still gets its row, curves and heatmaps.
    expect(h).toContain('<tr data-method="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;">');
    expect(h.match(/<polyline /g)).toHaveLength(6);
    expect(h.match(/<td class="hm-cell"/g)).toHaveLength(6);
  });

  it('is deterministic: the same summary gives the same bytes', () => {
    const png = Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 255);
    const a = compareReportHtml(imageSummary(), { images: { 'n03888257_10.JPEG': png } });
    const b = compareReportHtml(imageSummary(), { images: { 'n03888257_10.JPEG': png } });
    expect(a).toBe(b);
    expect(compareReportHtml(textSummary())).toBe(compareReportHtml(textSummary()));
  });
});

describe('htmlToPdf', () => {
  it('names the fix when Chromium is missing', async () => {
    const missing = path.join(os.tmpdir(), 'relprop-no-such-chromium');
    await expect(htmlToPdf('<p>x</p>', path.join(os.tmpdir(), 'never.pdf'), { executablePath: missing })).rejects.toThrow(UsageError);
    await expect(htmlToPdf('<p>x</p>', path.join(os.tmpdir(), 'never.pdf'), { executablePath: missing })).rejects.toThrow(/install Debian's chromium or set RELPROP_CHROMIUM/);
  });

  // The PDF is printed by a system Chromium (playwright-core downloads none); machines without
  // Debian's chromium package cannot run this one, everything else above still runs there.
  it.skipIf(!existsSync('/usr/bin/chromium'))('prints the report to a multi-page A4 PDF', async () => {
    const { encodePng } = await import('../src/core/image/io.js');
    const rgb = new Uint8Array(64 * 64 * 3).map((_, i) => ((i % 3) * 60 + Math.floor(i / 192)) & 255);
    const png = await encodePng({ width: 64, height: 64, data: rgb });
    const html = compareReportHtml(imageSummary(), { images: { 'n03888257_10.JPEG': png, 'n03425413_99.JPEG': png } });
    const file = path.join(os.tmpdir(), `relprop-report-${process.pid}.pdf`);
    try {
      await htmlToPdf(html, file, { executablePath: '/usr/bin/chromium' });
      const bytes = readFileSync(file);
      expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      const pages = (bytes.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
      expect(pages > 1 || statSync(file).size > 10_000).toBe(true);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
