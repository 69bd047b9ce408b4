/**
 * The app's views read as numbers (issue 17, items 1–9, 12, 13, 17): `relprop serve` (the real CLI)
 * driven by Debian's Chromium through playwright-core. Every value the page prints is checked
 * against what the API returns for the same request, made by a script beside the page: legends
 * against the map's min/max, hover against the map at that patch, exports against the map itself.
 * Screenshots go to $RELPROP_SHOTS/app-views (default test-results/app-views, gitignored).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './helpers/cli.js';
import { FIXTURES } from './helpers/golden.js';
import { METHOD_OPTIONS, OPTION_NAMES, type OptionSpec } from '../src/core/methods/options.js';
import type { MethodCatalogue } from '../src/shared/api.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`app-views.test.ts: skipped, ${CHROMIUM} is missing`);
const SHOTS = process.env['RELPROP_SHOTS'] ? path.join(process.env['RELPROP_SHOTS'], 'app-views') : path.join(ROOT, 'test-results', 'app-views');
const IMAGE = path.join(FIXTURES, 'images', 'halves-32x16.jpg');
const SENTENCE = 'the food was not bad but the service was awful';

let tmp: string;
let server: ChildProcess;
let printed: string;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const consoleProblems: string[] = [];

interface MapResult {
  method: string;
  signed: boolean;
  target: number;
  targetLabel: string;
  map: { shape: number[]; data: number[] };
  words?: Array<{ text: string; relevance: number }>;
  tokens?: Array<{ token: string; relevance: number; special: boolean }>;
  ledger: { conserved: boolean; byDesign?: string; embeddingShare?: number } | null;
  completeness?: { sum: number; expected: number; gap: number };
  layers?: Array<{ layer: number; map: { data: number[] }; words?: Array<{ relevance: number }> }>;
  provenance: { method: string; rules?: string; options: Record<string, unknown>; model: { weightsSha256?: string }; target: number; contrast?: number };
}
interface JobStatus {
  state: string;
  results: MapResult[];
  skipped?: Array<{ method: string; reason: string }>;
  error?: string;
}

async function startServer(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'relprop.js'), 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relprop serve printed no URL in 30 s\nstdout: ${out}\nstderr: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\/\S*/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relprop serve exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return { child, url };
}

/** An API call as a script holding the token makes it (its own client, so the page's work is not touched). */
async function api<T>(method: string, body?: unknown): Promise<T> {
  const token = new URL(printed).searchParams.get('token') ?? '';
  const res = await fetch(`${base}api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-relprop-client': 'script' },
    body: body === undefined ? '' : JSON.stringify(body),
  });
  const envelope = (await res.json()) as { ok: boolean; value?: T; error?: string };
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value as T;
}

async function finished(jobId: string): Promise<JobStatus> {
  for (;;) {
    const s = await api<JobStatus>('job', { id: jobId });
    if (s.state !== 'queued' && s.state !== 'running') return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same request as the page makes, from the script: what the page should show. */
async function reference(req: Record<string, unknown>): Promise<JobStatus> {
  const ticket = await api<{ jobId: string }>(Array.isArray(req['methods']) ? 'compare' : 'explain', req);
  const s = await finished(ticket.jobId);
  if (s.state !== 'done') throw new Error(`reference job ${s.state}: ${s.error ?? ''}`);
  return s;
}

const imageInput = async () => (await api<{ inputId: string }>('openImage', { modelId: 'image-softmax', name: 'h.jpg', bytes: (await fs.readFile(IMAGE)).toString('base64') })).inputId;
const textInput = async () => (await api<{ inputId: string }>('openText', { modelId: 'text-softmax', text: SENTENCE })).inputId;

const minOf = (xs: number[]) => xs.reduce((a, b) => Math.min(a, b), Infinity);
const maxOf = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
/** A printed number read back: 4 significant digits (or x.xxxe±n) of the value. */
const printedAs = (text: string | null, v: number) => {
  expect(text, `printed ${text} for ${v}`).not.toBeNull();
  const back = Number(text!.replace('−', '-'));
  expect(Math.abs(back - v), `printed ${text} for ${v}`).toBeLessThanOrEqual(Math.abs(v) * 5e-4 + 1e-12);
};
/** 1 for the largest value, as the page ranks (ties share the better rank). */
const rankOf = (data: number[], i: number) => 1 + data.filter((v) => v > data[i]!).length;

/** No word run into a separator or a bracket ("1e-3· 6.2 %", "(0)rather than"): Svelte trims spaces at block edges. */
async function expectSpaced(): Promise<void> {
  const text = await page.locator('main').innerText();
  for (const line of text.split('\n')) {
    expect(line, 'a · without a space beside it').not.toMatch(/\S·|·\S/);
    expect(line, 'a bracket run into a word').not.toMatch(/\)[A-Za-z]/);
    expect(line, 'a sentence run into the next').not.toMatch(/[a-z]\.[A-Z][a-z]/);
  }
}

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const idle = () => page.locator('[data-testid="activity-bar"][data-busy="false"]').waitFor({ state: 'attached', timeout: 60_000 });
const predictionButtons = () => page.locator('ol[aria-label="Top classes"] button');

async function loaded(): Promise<void> {
  // A plain wait (not expect.poll): beforeAll calls it too.
  await page.locator('select[aria-label="Model"] option[value="image-softmax"]').waitFor({ state: 'attached', timeout: 30_000 });
  await idle();
}

async function openImageInPage(): Promise<void> {
  await page.getByRole('tab', { name: 'Explain' }).click();
  if ((await page.locator('select[aria-label="Model"]').inputValue()) !== 'image-softmax') await page.selectOption('select[aria-label="Model"]', 'image-softmax');
  await page.locator('[data-testid="image-file"]').setInputFiles(IMAGE);
  await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
  await idle();
}

async function openSentenceInPage(): Promise<void> {
  await page.getByRole('tab', { name: 'Explain' }).click();
  await page.selectOption('select[aria-label="Model"]', 'text-softmax');
  await page.locator('textarea[aria-label="Sentence"]').fill(SENTENCE);
  await page.getByRole('button', { name: 'Classify' }).click();
  await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(2);
  await idle();
}

async function explainInPage(methodId: string): Promise<void> {
  await page.getByRole('tab', { name: 'Explain' }).click();
  await page.selectOption('select[aria-label="Method"]', methodId);
  await page.getByRole('button', { name: 'Explain', exact: true }).click();
  await idle();
  const title = await page.locator(`select[aria-label="Method"] option[value="${methodId}"]`).textContent();
  await expect.poll(() => page.locator('[data-testid="explanation"] h3').textContent(), { timeout: 30_000 }).toContain(title!.trim());
}

async function legendOf(scope: string): Promise<{ scaling: string; colormap: string; min: number; max: number; lo: string; hi: string; zero: number; meaning: string; how: string }> {
  const l = page.locator(`${scope} [data-testid="legend"]`).first();
  return {
    scaling: (await l.getAttribute('data-scaling'))!,
    colormap: (await l.getAttribute('data-colormap'))!,
    min: Number(await l.getAttribute('data-min')),
    max: Number(await l.getAttribute('data-max')),
    lo: (await l.locator('[data-testid="legend-lo"]').textContent())!,
    hi: (await l.locator('[data-testid="legend-hi"]').textContent())!,
    zero: await l.locator('[data-testid="legend-zero"]').count(),
    meaning: (await l.locator('.meaning').textContent())!,
    how: (await l.locator('[data-testid="legend-scaling"]').textContent())!,
  };
}

/** A legend that states the map's own range, scaled min-max (unsigned) or ±max (signed). */
function expectLegendOf(legend: Awaited<ReturnType<typeof legendOf>>, values: number[], signed: boolean): void {
  const min = minOf(values);
  const max = maxOf(values);
  expect(legend.min).toBe(min);
  expect(legend.max).toBe(max);
  if (signed) {
    const m = Math.max(Math.abs(min), Math.abs(max));
    expect(legend.scaling).toBe('signed-max');
    printedAs(legend.lo, -m);
    printedAs(legend.hi, m);
    expect(legend.how).toMatch(/scaled ±max/);
  } else {
    expect(legend.scaling).toBe('minmax');
    printedAs(legend.lo, min);
    printedAs(legend.hi, max);
    expect(legend.how).toMatch(/scaled min-max/);
  }
}

describe.skipIf(!HAVE_CHROMIUM)('the app: maps you can read off, and what made them', () => {
  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'main', 'worker.js'))) throw new Error('dist/main/worker.js is missing: run `npm run build:node` (npm test does it)');
    if (!existsSync(path.join(ROOT, 'out', 'renderer', 'index.html'))) throw new Error('out/renderer is missing: run `npm run build:app` (npm test does it)');
    await fs.mkdir(SHOTS, { recursive: true });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-app-views-'));
    const started = await startServer({ ...process.env, RELPROP_SETTINGS: path.join(tmp, 'settings.json') });
    server = started.child;
    printed = started.url;
    base = `${new URL(printed).origin}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) consoleProblems.push(m.text());
    });
    page.on('pageerror', (e) => consoleProblems.push(e.message));
    await page.goto(printed);
    await loaded();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('1, 2, 5: every legend is quantified and follows the map', () => {
    it('the explain view: min-max for an unsigned map, ±max in RdBu (the default diverging colormap) for a signed one', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await explainInPage('transformer-attribution');
      const ta = (await reference({ inputId, modelId: 'image-softmax', method: 'transformer-attribution' })).results[0]!;
      const unsigned = await legendOf('[data-testid="explanation"]');
      expectLegendOf(unsigned, ta.map.data, false);
      expect(unsigned.meaning).toMatch(/low.*high/);
      expect(unsigned.colormap).toBe('jet');
      await shot('01-legend-unsigned');

      await explainInPage('gradient-input');
      const gi = (await reference({ inputId, modelId: 'image-softmax', method: 'gradient-input' })).results[0]!;
      const signed = await legendOf('[data-testid="explanation"]');
      expectLegendOf(signed, gi.map.data, true);
      expect(signed.zero).toBe(1);
      expect(signed.colormap).toBe('rdbu');
      expect(signed.meaning).toMatch(new RegExp(`− against.*\\+ for ${gi.targetLabel}`));
      // The others stay selectable.
      expect(await page.locator('select[aria-label="Colormap"] option').allTextContents()).toEqual(expect.arrayContaining(['bwr (diverging)', 'jet', 'viridis']));
      await expectSpaced();
      await shot('01-legend-signed-rdbu');
    });

    it('every Compare card has its own legend, stating its own map', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      const methods = ['transformer-attribution', 'gradient-input', 'rollout'];
      await page.getByRole('tab', { name: 'Compare' }).click();
      const boxes = page.locator('fieldset.method-choice input[type="checkbox"]');
      for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).setChecked(false);
      for (const id of methods) await page.locator(`fieldset.method-choice input[type="checkbox"][data-method="${id}"]`).setChecked(true);
      await page.getByRole('button', { name: 'Compare', exact: true }).click();
      await idle();
      const cards = page.locator('[data-testid="compare-grid"] article');
      await expect.poll(() => cards.count(), { timeout: 60_000 }).toBe(3);
      const ref = await reference({ inputId, modelId: 'image-softmax', methods });
      for (const r of ref.results) {
        const legend = await legendOf(`[data-testid="compare-grid"] article[data-method="${r.method}"]`);
        expectLegendOf(legend, r.map.data, r.signed);
        expect(legend.colormap).toBe(r.signed ? 'rdbu' : 'jet');
      }
      await shot('01-compare-legends');
    });

    it('the Layers maps: each block its own ±max scale, the numbers of its row', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await page.getByRole('tab', { name: 'Layers' }).click();
      await page.selectOption('select[aria-label="Layers method"]', 'transformer-attribution');
      await page.getByRole('button', { name: 'Show layers' }).click();
      await idle();
      const figures = page.locator('[data-testid="layer-maps"] figure');
      await expect.poll(() => figures.count(), { timeout: 30_000 }).toBe(4);
      const ref = (await reference({ inputId, modelId: 'image-softmax', method: 'transformer-attribution', options: { layers: true } })).results[0]!;
      for (const l of ref.layers!) expectLegendOf(await legendOf(`[data-testid="layer-maps"] figure[data-layer="${l.layer}"]`), l.map.data, true);
      // 17: the chart's axis labels are whole names (b0, norm, head …), each drawn inside the chart.
      const labels = await page.locator('[data-testid="ledger-chart"] svg').evaluate((svg) => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text[transform]')].map((t) => {
          const r = t.getBoundingClientRect();
          return { text: t.textContent ?? '', inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5 };
        });
      });
      expect(labels.length).toBeGreaterThanOrEqual(7);
      expect(labels.filter((l) => !l.inside)).toEqual([]);
      expect(labels.at(-1)!.text).toBe('input');
      await shot('01-layers-legends');
    });

    it('the text view: "low / high" min-max for an unsigned map, "against / for" ±max for a signed one', async () => {
      await openSentenceInPage();
      const inputId = await textInput();
      await explainInPage('transformer-attribution');
      const ta = (await reference({ inputId, modelId: 'text-softmax', method: 'transformer-attribution' })).results[0]!;
      const unsigned = await legendOf('[data-testid="explanation"]');
      expectLegendOf(unsigned, ta.words!.map((w) => w.relevance), false);
      expect(unsigned.meaning).toMatch(/^low\s*high$/);
      expect(unsigned.meaning).not.toMatch(/against/);
      await shot('02-text-legend-unsigned');

      await explainInPage('gradient-input');
      const gi = (await reference({ inputId, modelId: 'text-softmax', method: 'gradient-input' })).results[0]!;
      const signed = await legendOf('[data-testid="explanation"]');
      expectLegendOf(signed, gi.words!.map((w) => w.relevance), true);
      expect(signed.meaning).toMatch(new RegExp(`− against\\s*\\+ for ${gi.targetLabel}`));
      await shot('02-text-legend-signed');
    });
  });

  describe('3: hover shows values; the token table and top-k', () => {
    it('a patch under the pointer: its value, rank and share of the total, those of the map', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await explainInPage('transformer-attribution');
      const ref = (await reference({ inputId, modelId: 'image-softmax', method: 'transformer-attribution' })).results[0]!;
      const [rows, cols] = ref.map.shape as [number, number];
      const canvas = page.locator('[data-testid="explanation"] canvas');
      const box = (await canvas.boundingBox())!;
      const sumAbs = ref.map.data.reduce((a, v) => a + Math.abs(v), 0);
      for (const [r, c] of [
        [2, 5],
        [rows - 1, 0],
      ] as const) {
        await page.mouse.move(box.x + ((c + 0.5) / cols) * box.width, box.y + ((r + 0.5) / rows) * box.height);
        const info = page.locator('[data-testid="hover-info"]');
        await expect.poll(() => info.getAttribute('data-index')).toBe(String(r * cols + c));
        const v = ref.map.data[r * cols + c]!;
        expect(Number(await info.getAttribute('data-value'))).toBe(v);
        expect(Number(await info.getAttribute('data-rank'))).toBe(rankOf(ref.map.data, r * cols + c));
        expect(Number(await info.getAttribute('data-share'))).toBeCloseTo(v / sumAbs, 12);
        const text = (await info.textContent())!;
        expect(text).toContain(`patch (row ${r + 1}, column ${c + 1})`);
        expect(text).toContain(`rank ${rankOf(ref.map.data, r * cols + c)} of ${rows * cols}`);
        printedAs(/value (\S+)/.exec(text)![1]!, v);
        // Shares to 3 significant digits.
        const pct = Number(/· (\S+) % of the total/.exec(text)![1]!);
        expect(Math.abs(pct - (100 * v) / sumAbs)).toBeLessThanOrEqual(Math.abs((100 * v) / sumAbs) * 5e-3);
      }
      await shot('03-hover-patch');
    });

    it('a word under the pointer, the token table with [CLS] and [SEP] on request, and the top 5', async () => {
      await openSentenceInPage();
      const inputId = await textInput();
      await explainInPage('gradient-input');
      const ref = (await reference({ inputId, modelId: 'text-softmax', method: 'gradient-input' })).results[0]!;
      const words = ref.words!.map((w) => w.relevance);
      const wordEl = page.locator('[data-testid="text-highlight"] span.word').nth(4);
      await wordEl.hover();
      const info = page.locator('[data-testid="hover-info"]');
      await expect.poll(() => info.getAttribute('data-index')).toBe('4');
      expect(Number(await info.getAttribute('data-value'))).toBe(words[4]);
      expect(Number(await info.getAttribute('data-rank'))).toBe(rankOf(words, 4));
      expect(await info.textContent()).toContain(`word "${ref.words![4]!.text}"`);

      const tokens = ref.tokens!;
      const table = page.locator('[data-testid="token-table"] tbody tr');
      const plain = tokens.filter((t) => !t.special);
      expect(await table.count()).toBe(plain.length);
      expect(await table.locator('td:nth-child(2)').allTextContents()).toEqual(plain.map((t) => t.token));
      await page.locator('input[aria-label="Show special tokens"]').check();
      expect(await table.count()).toBe(tokens.length);
      expect(await table.locator('td:nth-child(2)').allTextContents()).toEqual(tokens.map((t) => t.token));
      expect(tokens.map((t) => t.token)).toEqual(expect.arrayContaining(['[CLS]', '[SEP]']));
      const values = tokens.map((t) => t.relevance);
      for (let i = 0; i < tokens.length; i++) {
        expect(Number(await table.nth(i).getAttribute('data-value'))).toBe(values[i]);
        expect(Number(await table.nth(i).getAttribute('data-rank'))).toBe(rankOf(values, i));
      }
      const top = plain.map((t) => t.relevance).sort((a, b) => b - a).slice(0, 5);
      expect((await page.locator('[data-testid="top-k"] li').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value')))))).toEqual(top);
      await shot('03-hover-word-token-table');
    });
  });

  describe('6, 7: what ran, and conservation verdicts that explain themselves', () => {
    it('LRP: the rule set actually used (never "default"), ✓ conserved with the share left at the embeddings', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await explainInPage('lrp');
      const ref = (await reference({ inputId, modelId: 'image-softmax', method: 'lrp' })).results[0]!;
      const scope = page.locator('[data-testid="explanation"]');
      expect(ref.provenance.rules).toBeTruthy();
      expect(await scope.locator('[data-testid="prov-rules"]').textContent()).toBe(ref.provenance.rules);
      expect(await scope.locator('[data-testid="prov-rules"]').textContent()).not.toBe('default');
      expect(await scope.locator('[data-testid="prov-target"]').textContent()).toBe(String(ref.target));
      expect(ref.ledger!.conserved).toBe(true);
      const share = scope.locator('[data-testid="embedding-share"]');
      expect(Number(await share.getAttribute('data-share'))).toBe(ref.ledger!.embeddingShare);
      expect(await share.textContent()).toContain(`${(ref.ledger!.embeddingShare! * 100).toFixed(1)} % left at the embeddings`);
      expect(await scope.locator('.ledger').textContent()).toMatch(/✓ conserved/);
      // The weights' hash, on request.
      await scope.locator('[data-testid="provenance"] summary').click();
      expect(await scope.locator('[data-testid="provenance"] dl').textContent()).toContain(ref.provenance.model.weightsSha256!);
      await expectSpaced();
      await shot('06-provenance-lrp-conserved');
    });

    it('AttnLRP: "not conservative by design", with the reason, not a red ✗; integrated gradients: its completeness gap and every option', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await explainInPage('attnlrp');
      const ref = (await reference({ inputId, modelId: 'image-softmax', method: 'attnlrp' })).results[0]!;
      const scope = page.locator('[data-testid="explanation"]');
      expect(ref.ledger!.conserved).toBe(false);
      expect(ref.ledger!.byDesign).toMatch(/bias/);
      expect(await scope.locator('[data-testid="by-design"]').textContent()).toMatch(/^not conservative by design: drift/);
      const ledgerText = (await scope.locator('.ledger').textContent())!;
      expect(ledgerText).not.toContain('✗');
      expect(ledgerText).toContain(ref.ledger!.byDesign!);
      expect(await scope.locator('[data-testid="prov-rules"]').textContent()).toBe('attnlrp');
      await expectSpaced();
      await shot('07-verdict-attnlrp-by-design');

      await page.selectOption('select[aria-label="Method"]', 'integrated-gradients');
      await page.locator('input[aria-label="Steps"]').fill('20');
      await page.getByRole('button', { name: 'Explain', exact: true }).click();
      await idle();
      await expect.poll(() => scope.locator('[data-testid="completeness"]').count(), { timeout: 30_000 }).toBe(1);
      const ig = (await reference({ inputId, modelId: 'image-softmax', method: 'integrated-gradients', options: { steps: 20 } })).results[0]!;
      const sum = ig.map.data.reduce((a, b) => a + b, 0);
      expect(ig.completeness!.sum).toBeCloseTo(sum, 9);
      expect(ig.completeness!.gap).toBeCloseTo(ig.completeness!.sum - ig.completeness!.expected, 12);
      const gap = scope.locator('[data-testid="completeness"]');
      expect(Number(await gap.getAttribute('data-gap'))).toBe(ig.completeness!.gap);
      printedAs(/completeness gap (\S+)/.exec((await gap.textContent())!)![1]!, ig.completeness!.gap);
      expect(await scope.locator('code[data-option="steps"]').textContent()).toBe('20');
      await shot('07-completeness-ig');
      await page.locator('input[aria-label="Steps"]').fill('');
    });
  });

  describe('8: Compare has its own options, shown, and skips what cannot take a contrast', () => {
    it('with a contrast, the methods that cannot take it are listed with the reason and the others run, with the grid\'s own steps', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await page.getByRole('tab', { name: 'Compare' }).click();
      const methods = ['transformer-attribution', 'lrp', 'gradient-input', 'integrated-gradients'];
      const boxes = page.locator('fieldset.method-choice input[type="checkbox"]');
      for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).setChecked(false);
      for (const id of methods) await page.locator(`fieldset.method-choice input[type="checkbox"][data-method="${id}"]`).setChecked(true);
      const other = (await predictionButtons().nth(1).locator('.label').textContent())!.trim();
      await page.selectOption('select[aria-label="Contrast class"]', { label: other });
      await page.locator('input[aria-label="Compare steps"]').fill('12');
      await page.getByRole('button', { name: 'Compare', exact: true }).click();
      await idle();
      const cards = page.locator('[data-testid="compare-grid"] article');
      await expect.poll(() => cards.count(), { timeout: 60_000 }).toBe(2);
      const contrast = Number(await page.locator('select[aria-label="Contrast class"]').inputValue());
      const ref = await reference({ inputId, modelId: 'image-softmax', methods, contrast, options: { steps: 12 } });
      expect(ref.skipped!.map((s) => s.method)).toEqual(['transformer-attribution', 'lrp']);
      expect(await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-method')))).toEqual(['gradient-input', 'integrated-gradients']);
      const skipped = page.locator('[data-testid="compare-skipped"] li');
      expect(await skipped.evaluateAll((els) => els.map((e) => e.getAttribute('data-method')))).toEqual(['transformer-attribution', 'lrp']);
      for (const s of ref.skipped!) expect(await page.locator(`[data-testid="compare-skipped"] li[data-method="${s.method}"]`).textContent()).toContain(s.reason);
      // The grid's steps, shown on the card; the contrast too.
      const ig = page.locator('[data-testid="compare-grid"] article[data-method="integrated-gradients"]');
      expect(await ig.locator('code[data-option="steps"]').textContent()).toBe('12');
      expect(await ig.locator('[data-testid="prov-contrast"]').textContent()).toBe(String(contrast));
      for (const r of ref.results) expect(Number(await page.locator(`[data-testid="compare-grid"] article[data-method="${r.method}"] [data-testid="legend"]`).getAttribute('data-max'))).toBe(maxOf(r.map.data));
      await expectSpaced();
      await shot('08-compare-contrast-skipped');
      // The Explain tab's options are its own.
      await page.getByRole('tab', { name: 'Explain' }).click();
      await page.selectOption('select[aria-label="Method"]', 'integrated-gradients');
      expect(await page.locator('input[aria-label="Steps"]').inputValue()).toBe('');
      await page.selectOption('select[aria-label="Contrast class"]', { label: '— (explain the class alone)' });
    });
  });

  describe('9: exports are complete', () => {
    it('the raw map as JSON and .npy with its provenance; Explain and Compare exports get different names', async () => {
      await openImageInPage();
      const inputId = await imageInput();
      await explainInPage('gradient-input');
      const ref = (await reference({ inputId, modelId: 'image-softmax', method: 'gradient-input' })).results[0]!;
      const download = async (name: string, scope = page) => {
        const [d] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), scope.getByRole('button', { name, exact: true }).click()]);
        const file = path.join(tmp, d.suggestedFilename());
        await d.saveAs(file);
        return { name: d.suggestedFilename(), file };
      };
      const json = await download('Export map (JSON)');
      expect(json.name).toMatch(/^relprop-halves-32x16-gradient-input-.+-explain\.json$/);
      const doc = JSON.parse(await fs.readFile(json.file, 'utf8')) as { shape: number[]; data: number[]; method: string; target: number; provenance: MapResult['provenance'] & { relprop: { version: string }; date: string } };
      expect(doc.shape).toEqual(ref.map.shape);
      expect(doc.data).toEqual(ref.map.data);
      expect(doc.target).toBe(ref.target);
      expect(doc.provenance.method).toBe('gradient-input');
      expect(doc.provenance.model.weightsSha256).toBe(ref.provenance.model.weightsSha256);
      expect(doc.provenance.relprop.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(Date.parse(doc.provenance.date)).toBeGreaterThan(0);

      const npy = await download('Export map (.npy)');
      const bytes = await fs.readFile(npy.file);
      expect(bytes.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
      const headerLen = bytes.readUInt16LE(8);
      const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
      expect(header).toContain(`'descr': '<f4'`);
      expect(header).toContain(`'shape': (${ref.map.shape.join(', ')})`);
      expect((10 + headerLen) % 64).toBe(0);
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen, bytes.byteOffset + bytes.length));
      expect(Array.from(values)).toEqual(ref.map.data.map(Math.fround));

      const png = await download('Export PNG');
      const meta = await sharp(png.file).metadata();
      const comments = Object.fromEntries((meta.comments ?? []).map((c) => [c.keyword, c.text]));
      expect(JSON.parse(comments['relprop-provenance']!).model.weightsSha256).toBe(ref.provenance.model.weightsSha256);

      await page.getByRole('tab', { name: 'Compare' }).click();
      const boxes = page.locator('fieldset.method-choice input[type="checkbox"]');
      for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).setChecked(false);
      await page.locator('fieldset.method-choice input[type="checkbox"][data-method="gradient-input"]').setChecked(true);
      await page.getByRole('button', { name: 'Compare', exact: true }).click();
      await idle();
      await page.locator('[data-testid="compare-grid"] article[data-method="gradient-input"]').waitFor({ timeout: 30_000 });
      const [d] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Export .* map as JSON/ }).click()]);
      expect(d.suggestedFilename()).toBe(json.name.replace(/-explain\.json$/, '-compare.json'));
      await shot('09-exports');
    });
  });

  describe('4: diverging maps over colour images draw on a greyed copy', () => {
    it('at opacity 0 a diverging map leaves a grey picture, a sequential one the colour picture', async () => {
      await openImageInPage();
      await page.getByRole('tab', { name: 'Explain' }).click();
      await explainInPage('gradient-input');
      const colours = () =>
        page.locator('[data-testid="explanation"] canvas').evaluate((el) => {
          const c = el as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let coloured = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) coloured++;
          return coloured;
        });
      await page.locator('input[aria-label="Overlay opacity"]').fill('0');
      await expect.poll(colours).toBe(0);
      await page.selectOption('select[aria-label="Colormap"]', 'viridis');
      await expect.poll(colours).toBeGreaterThan(1000);
      await page.selectOption('select[aria-label="Colormap"]', 'bwr');
      await expect.poll(colours).toBe(0);
      await page.locator('input[aria-label="Overlay opacity"]').fill('0.5');
      await page.selectOption('select[aria-label="Colormap"]', 'auto');
      await shot('04-diverging-over-grey');
    });
  });

  describe('12, 13: state is kept; broken models stay out', () => {
    it("Evaluate's form survives a tab switch; method, colormap, tab and options survive a reload", async () => {
      await page.getByRole('tab', { name: 'Evaluate' }).click();
      await page.locator('input[aria-label="Number of samples"]').fill('7');
      await page.getByRole('tab', { name: 'Explain' }).click();
      await page.getByRole('tab', { name: 'Evaluate' }).click();
      expect(await page.locator('input[aria-label="Number of samples"]').inputValue()).toBe('7');

      await page.getByRole('tab', { name: 'Explain' }).click();
      await page.selectOption('select[aria-label="Method"]', 'smoothgrad');
      await page.locator('input[aria-label="Samples"]').fill('9');
      await explainInPage('smoothgrad');
      await page.selectOption('select[aria-label="Colormap"]', 'viridis');
      await page.getByRole('tab', { name: 'Compare' }).click();
      await page.locator('fieldset.method-choice input[type="checkbox"][data-method="integrated-gradients"]').setChecked(true);
      await page.locator('input[aria-label="Compare steps"]').fill('33');
      await page.reload();
      await loaded();
      expect(await page.getByRole('tab', { name: 'Compare' }).getAttribute('aria-selected')).toBe('true');
      expect(await page.locator('input[aria-label="Compare steps"]').inputValue()).toBe('33');
      await page.getByRole('tab', { name: 'Explain' }).click();
      expect(await page.locator('select[aria-label="Method"]').inputValue()).toBe('smoothgrad');
      expect(await page.locator('input[aria-label="Samples"]').inputValue()).toBe('9');
      await openImageInPage();
      await explainInPage('smoothgrad');
      expect(await page.locator('select[aria-label="Colormap"]').inputValue()).toBe('viridis');
      expect(await page.locator('[data-testid="explanation"] [data-testid="legend"]').getAttribute('data-colormap')).toBe('viridis');
      expect(await page.locator('[data-testid="explanation"] code[data-option="samples"]').textContent()).toBe('9');
      await shot('12-kept-after-reload');
      await page.locator('input[aria-label="Samples"]').fill('');
      await page.selectOption('select[aria-label="Colormap"]', 'auto');
      await page.getByRole('tab', { name: 'Compare' }).click();
      await page.locator('input[aria-label="Compare steps"]').fill('');
      await page.getByRole('tab', { name: 'Explain' }).click();
    });

    it('a model folder that fails to load is neither kept nor selected; an added model can be removed', async () => {
      await openImageInPage();
      const broken = path.join(tmp, 'broken-model');
      await fs.mkdir(broken);
      await fs.copyFile(path.join(ROOT, 'models', 'image-softmax', 'model.safetensors'), path.join(broken, 'model.safetensors'));
      await fs.writeFile(path.join(broken, 'config.json'), '{"model_type": "vit", "hidden_size": ');
      await page.getByRole('button', { name: 'Add model folder…' }).click();
      await page.locator('#model-path').fill(broken);
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor({ timeout: 30_000 });
      expect(await alert.textContent()).toMatch(/config\.json/);
      expect(await page.locator('select[aria-label="Model"]').inputValue()).toBe('image-softmax');
      expect(await page.locator('select[aria-label="Model"] option').allTextContents()).not.toEqual(expect.arrayContaining([expect.stringContaining('broken-model')]));
      expect(existsSync(path.join(tmp, 'settings.json')) ? JSON.parse(await fs.readFile(path.join(tmp, 'settings.json'), 'utf8')).models ?? [] : []).toEqual([]);
      // The picture and its prediction under image-softmax are still what is shown.
      expect(await predictionButtons().count()).toBe(4);
      await shot('13-broken-model-refused');
      await page.getByRole('button', { name: 'Dismiss' }).first().click();

      // A working one is added, selected, and the input re-run through it; then removed.
      const good = path.join(FIXTURES, 'golden', 'vit-tiny-a');
      await page.locator('#model-path').fill(good);
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      await expect.poll(() => page.locator('select[aria-label="Model"]').inputValue(), { timeout: 30_000 }).toBe('user/vit-tiny-a');
      await idle();
      // The picture re-run through it: its own classes, none of image-softmax's prediction left.
      const models = await api<Array<{ id: string; labels: string[] }>>('listModels');
      const tinyLabels = models.find((m) => m.id === 'user/vit-tiny-a')!.labels;
      const shown = (await predictionButtons().locator('.label').allTextContents()).map((t) => t.replace('predicted', '').trim());
      expect(shown.length).toBeGreaterThan(0);
      for (const l of shown) expect(tinyLabels).toContain(l);
      expect(shown).not.toContain('square');
      expect(JSON.parse(await fs.readFile(path.join(tmp, 'settings.json'), 'utf8')).models).toEqual([good]);
      await page.locator('details.added-models summary').click();
      await page.getByRole('button', { name: 'Remove vit-tiny-a' }).click();
      await expect.poll(() => page.locator('select[aria-label="Model"]').inputValue(), { timeout: 30_000 }).toBe('image-softmax');
      await idle();
      expect(JSON.parse(await fs.readFile(path.join(tmp, 'settings.json'), 'utf8')).models).toEqual([]);
      expect(await page.locator('select[aria-label="Model"] option[value="user/vit-tiny-a"]').count()).toBe(0);
      await shot('13-model-removed');
    });

    it('picking a class during the first explanation explains that class', async () => {
      await openImageInPage();
      // Nothing explained yet: a 1000-step integral, far longer than the test waits, is the first.
      expect(await page.locator('[data-testid="explanation"]').count()).toBe(0);
      await page.selectOption('select[aria-label="Method"]', 'integrated-gradients');
      await page.locator('input[aria-label="Steps"]').fill('1000');
      await page.getByRole('button', { name: 'Explain', exact: true }).click();
      const row = page.locator('[data-testid="activity-bar"] [data-activity="explain"]');
      await expect.poll(() => row.textContent(), { timeout: 30_000 }).toMatch(/step \d+ of 1000/);
      const first = (await row.getAttribute('data-id'))!;
      const third = predictionButtons().nth(2);
      const label = (await third.locator('.label').textContent())!.trim();
      await page.locator('input[aria-label="Steps"]').fill('5');
      await third.click();
      await idle();
      await expect.poll(() => page.locator('[data-testid="explained-class"]').textContent(), { timeout: 30_000 }).toBe(label);
      expect(await page.locator('[data-testid="explanation"] code[data-option="steps"]').textContent()).toBe('5');
      // The first run was superseded, not left running.
      expect((await api<JobStatus>('job', { id: first })).state).toBe('cancelled');
      await shot('13-class-picked-mid-run');
      await page.locator('input[aria-label="Steps"]').fill('');
    });
  });

  describe('issue 16: the option form is the schema\'s', () => {
    it('each method shows the fields of the options it reads, with the schema\'s ranges and choices, and SmoothGrad\'s nt_type and abs reach the method', async () => {
      await openImageInPage();
      const catalogue = await api<MethodCatalogue>('listMethods');
      const fields = page.locator('#panel-explain .options label');
      let checked = 0;
      for (const id of ['smoothgrad', 'cp-lrp', 'integrated-gradients', 'transformer-attribution', 'occlusion', 'raw-attention']) {
        await page.selectOption('select[aria-label="Method"]', id);
        const reads = catalogue.methods.find((m) => m.id === id)!.options;
        const names = OPTION_NAMES.filter((n) => reads.includes(n));
        expect(await fields.locator('input, select').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))), id).toEqual(names.map((n) => METHOD_OPTIONS[n].label));
        for (const name of names) {
          const spec: OptionSpec = METHOD_OPTIONS[name];
          const field = page.locator(`#panel-explain [aria-label="${spec.label}"]`);
          if (spec.kind === 'integer' || spec.kind === 'number') {
            expect(await field.getAttribute('type')).toBe('number');
            expect(await field.getAttribute('min')).toBe(String(spec.min));
            expect(await field.getAttribute('max')).toBe(spec.max === undefined ? null : String(spec.max));
            expect(await field.getAttribute('step')).toBe(String(spec.kind === 'number' ? spec.step : 1));
          } else if (spec.kind === 'enum') {
            expect(await field.locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value))).toEqual(['', ...spec.values.filter((v) => v !== spec.default)]);
          } else if (spec.kind === 'boolean') {
            expect(await field.isChecked()).toBe(spec.default);
          } else {
            expect(await field.locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value))).toEqual(['', ...catalogue.ruleSets.map((r) => r.id)]);
          }
          checked++;
        }
      }
      expect(checked).toBe(5 + 2 + 1 + 2 + 1);
      // Options the form did not have before: they reach the method and come back in what it used.
      await page.selectOption('select[aria-label="Method"]', 'smoothgrad');
      await page.locator('input[aria-label="Samples"]').fill('3');
      await page.selectOption('select[aria-label="NoiseTunnel type"]', 'vargrad');
      await page.locator('input[aria-label="Absolute gradient"]').setChecked(false);
      await page.getByRole('button', { name: 'Explain', exact: true }).click();
      await idle();
      const scope = page.locator('[data-testid="explanation"]');
      await expect.poll(() => scope.locator('code[data-option="ntType"]').textContent(), { timeout: 30_000 }).toBe('vargrad');
      expect(await scope.locator('code[data-option="abs"]').textContent()).toBe('false');
      expect(await scope.locator('code[data-option="samples"]').textContent()).toBe('3');
      await shot('16-options-smoothgrad');
      await page.locator('input[aria-label="Samples"]').fill('');
      await page.selectOption('select[aria-label="NoiseTunnel type"]', '');
      await page.locator('input[aria-label="Absolute gradient"]').setChecked(true);
    });
  });

  describe('17: accessibility', () => {
    it('tabs by arrow keys, heatmaps as described images, a favicon, AA contrast in the dark theme', async () => {
      const explainTab = page.getByRole('tab', { name: 'Explain' });
      await explainTab.click();
      await explainTab.focus();
      await page.keyboard.press('ArrowRight');
      expect(await page.getByRole('tab', { name: 'Compare' }).getAttribute('aria-selected')).toBe('true');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-compare');
      await page.keyboard.press('End');
      expect(await page.getByRole('tab', { name: 'Evaluate' }).getAttribute('aria-selected')).toBe('true');
      await page.keyboard.press('Home');
      expect(await page.getByRole('tab', { name: 'Explain' }).getAttribute('aria-selected')).toBe('true');
      expect(await page.locator('[role="tabpanel"]:not([hidden])').getAttribute('aria-labelledby')).toBe('tab-explain');
      const canvas = page.locator('[data-testid="explanation"] canvas');
      expect(await canvas.getAttribute('role')).toBe('img');
      expect(await canvas.getAttribute('aria-label')).toMatch(/map, from -?\d.* to -?\d.*highest at row \d+, column \d+/);
      expect(await page.locator('link[rel="icon"]').getAttribute('href')).toMatch(/^data:image\/svg\+xml,/);

      await page.emulateMedia({ colorScheme: 'dark' });
      const ratios = await page.locator('button:visible').evaluateAll((els) => {
        const rgb = (s: string) => (s.match(/[\d.]+/g) ?? []).slice(0, 4).map(Number);
        const lum = ([r, g, b]: number[]) => {
          const f = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
        };
        const bgOf = (el: Element | null): number[] => {
          for (; el; el = el.parentElement) {
            const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3]! > 0.5)) return c;
          }
          return rgb(getComputedStyle(document.body).backgroundColor);
        };
        return els
          .filter((e) => !(e as HTMLButtonElement).disabled)
          .map((e) => {
            const a = lum(rgb(getComputedStyle(e).color));
            const b = lum(bgOf(e));
            return { text: (e.textContent ?? '').trim().slice(0, 30), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
          });
      });
      expect(ratios.length).toBeGreaterThan(5);
      for (const r of ratios) expect(r.ratio, r.text).toBeGreaterThanOrEqual(4.5);
      await shot('17-dark-theme');
      await page.emulateMedia({ colorScheme: 'light' });
      expect(consoleProblems).toEqual([]);
    });
  });
});
