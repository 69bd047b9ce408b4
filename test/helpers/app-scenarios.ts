/**
 * What a user does in the app, as tests that run on any page showing it: the browser against
 * `relprop serve` (test/app-web.test.ts) and the Electron window (test/electron/app-electron.test.ts,
 * `npm run test:electron`). Only the way a page is obtained and a download is caught differs.
 */
import { it, expect } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { FIXTURES } from './golden.js';

export interface AppDriver {
  page(): Page;
  /** A folder the scenarios may write to. */
  tmp(): string;
  /** An image of the image model's own task (its class decided by the red shape). */
  taskImage(): string;
  /** Clicks via `trigger` and returns the file the app offered for download, saved. */
  download(trigger: () => Promise<void>): Promise<{ name: string; file: string }>;
  /** Where screenshots go; their names say which screen. */
  shot(name: string): Promise<void>;
  /** Console errors and uncaught exceptions seen on the page so far. */
  consoleProblems(): readonly string[];
}

const IMAGES = path.join(FIXTURES, 'images');
const COMPARED = ['transformer-attribution', 'lrp', 'rollout', 'gradient-input'];

export function appScenarios(d: AppDriver): void {
  const page = () => d.page();
  const predictionButtons = () => page().locator('ol[aria-label="Top classes"] button');
  const openImageFile = (file: string) => page().locator('[data-testid="image-file"]').setInputFiles(file);
  /** Waits until no work is running (the activity bar lists nothing and the page waits for nothing). */
  const idle = () => page().locator('[data-testid="activity-bar"][data-busy="false"]').waitFor({ state: 'attached', timeout: 60_000 });

  async function explainWith(methodId: string): Promise<void> {
    await page().selectOption('select[aria-label="Method"]', methodId);
    await page().getByRole('button', { name: 'Explain', exact: true }).click();
    await idle();
    const title = await page().locator(`select[aria-label="Method"] option[value="${methodId}"]`).textContent();
    await expect.poll(() => page().locator('[data-testid="explanation"] h3').textContent()).toContain(title);
  }

  /** Distinct colours on a canvas: a drawn heatmap has many, a blank canvas one. */
  async function canvasColours(selector: string): Promise<number> {
    return page()
      .locator(selector)
      .first()
      .evaluate((el) => {
        const c = el as HTMLCanvasElement;
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        for (let i = 0; i < data.length; i += 4 * 7) seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
        return seen.size;
      });
  }

  async function tickOnly(fieldset: string, titles: string[]): Promise<void> {
    const boxes = page().locator(`${fieldset} input[type="checkbox"]`);
    for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).setChecked(false);
    for (const t of titles) await page().locator(`${fieldset} label`).filter({ hasText: t }).first().locator('input').setChecked(true);
  }

  /** Method titles by id, read from the Explain tab's list once it is loaded (other tabs show titles only). */
  const titles = new Map<string, string>();
  const methodTitle = (id: string): string => {
    const t = titles.get(id);
    if (!t) throw new Error(`no method '${id}' in the app's list`);
    return t;
  };

  it('starts with the shipped models and the method list', async () => {
    await expect.poll(() => page().locator('select[aria-label="Model"] option').allTextContents(), { timeout: 30_000 }).toEqual(
      expect.arrayContaining(['image-softmax (image)', 'text-softmax (text)']),
    );
    await expect.poll(() => page().locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
    for (const o of await page().locator('select[aria-label="Method"] option').all()) titles.set((await o.getAttribute('value'))!, (await o.textContent())!.trim());
    expect([...titles.keys()]).toEqual(expect.arrayContaining(['transformer-attribution', 'lrp', 'attnlrp', 'cp-lrp', 'generic-attention', 'smoothgrad', 'attention-flow', 'random']));
    expect(await page().locator('select[aria-label="Model"]').inputValue()).toBe('image-softmax');
    await d.shot('01-start');
  });

  it('opens an image, shows the top classes and explains it with two methods', async () => {
    await openImageFile(path.join(IMAGES, 'halves-32x16.jpg'));
    await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
    await expect(page().locator('img.preview').getAttribute('src')).resolves.toMatch(/^data:image\/png;base64,/);

    await explainWith('transformer-attribution');
    const predicted = (await predictionButtons().first().locator('.label').textContent())!.replace('predicted', '').trim();
    expect(await page().locator('[data-testid="explained-class"]').textContent()).toBe(predicted);
    expect(await canvasColours('[data-testid="explanation"] canvas')).toBeGreaterThan(20);
    // The paper's rules conserve relevance down to the first block.
    expect(await page().locator('[data-testid="explanation"] .ledger').textContent()).toMatch(/✓ conserved to 1e-3/);
    await d.shot('02-explain-transformer-attribution');

    await explainWith('lrp');
    expect(await page().locator('[data-testid="explanation"] .ledger').textContent()).toMatch(/boundaries/);
    await d.shot('03-explain-lrp');
  });

  it('switches the explained class by clicking another class', async () => {
    const second = predictionButtons().nth(1);
    const label = (await second.locator('.label').textContent())!.trim();
    await second.click();
    await expect.poll(() => page().locator('[data-testid="explained-class"]').textContent(), { timeout: 30_000 }).toBe(label);
    await idle();
    expect(await second.getAttribute('aria-pressed')).toBe('true');
    await page().selectOption('select[aria-label="Colormap"]', 'viridis');
    await page().locator('input[aria-label="Overlay opacity"]').fill('0.7');
    await d.shot('04-other-class-viridis');
  });

  it('exports the overlay as a PNG', async () => {
    const { name, file } = await d.download(() => page().getByRole('button', { name: 'Export PNG' }).click());
    expect(name).toMatch(/^relprop-halves-32x16-lrp-.+-explain\.png$/);
    const meta = await sharp(file).metadata();
    expect(meta.format).toBe('png');
    // 32×16 enlarged by a whole factor to at most 512 px, with the legend's 96 px strip under it.
    expect([meta.width, meta.height]).toEqual([512, 256 + 96]);
    // What made it travels inside the file (PNG tEXt).
    const comments = Object.fromEntries((meta.comments ?? []).map((c) => [c.keyword, c.text]));
    const prov = JSON.parse(comments['relprop-provenance'] ?? '{}') as { method?: string; model?: { name?: string } };
    expect(prov.method).toBe('lrp');
    expect(comments['Description']).toMatch(/^relprop \S+/);
  });

  it('shows progress while it works, and the Cancel button stops the job', async () => {
    await page().selectOption('select[aria-label="Method"]', 'integrated-gradients');
    // 1000 steps take far longer than the test waits: only a working cancel ends the job in time.
    await page().locator('input[aria-label="Steps"]').fill('1000');
    await page().getByRole('button', { name: 'Explain', exact: true }).click();
    const row = page().locator('[data-testid="activity-bar"] [data-activity="explain"]');
    const cancel = row.getByRole('button', { name: 'Cancel' });
    await cancel.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toMatch(/Explaining halves-32x16\.jpg with Integrated gradients/);
    // The steps of the integral, not an indeterminate bar.
    await expect.poll(() => row.textContent(), { timeout: 30_000 }).toMatch(/step \d+ of 1000/);
    expect(Number(await row.locator('progress').getAttribute('max'))).toBe(1000);
    await d.shot('05-working');
    await cancel.click();
    await idle();
    expect(await page().getByRole('status').filter({ hasText: 'Cancelled.' }).count()).toBe(1);
    // What was on screen before stays there.
    expect(await page().locator('[data-testid="explanation"] h3').textContent()).toMatch(/LRP/);
    await page().locator('input[aria-label="Steps"]').fill('');
  });

  it('compares several methods on one input and class, each with its conservation status and time', async () => {
    await openImageFile(d.taskImage());
    await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
    await page().getByRole('tab', { name: 'Compare' }).click();
    await tickOnly('fieldset.method-choice', COMPARED.map(methodTitle));
    await page().getByRole('button', { name: 'Compare', exact: true }).click();
    await idle();
    const cards = page().locator('[data-testid="compare-grid"] article');
    await expect.poll(() => cards.count(), { timeout: 60_000 }).toBe(COMPARED.length);
    expect(await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-method')))).toEqual(COMPARED);
    for (let i = 0; i < COMPARED.length; i++) {
      const footer = (await cards.nth(i).locator('footer').textContent())!;
      expect(footer).toMatch(/✓ conserved to 1e-3|✗ drift \d|— no ledger/);
      expect(footer).toMatch(/\d+ ms|\d\.\d+ s/);
      expect(await canvasColours(`[data-testid="compare-grid"] article:nth-child(${i + 1}) canvas`)).toBeGreaterThan(5);
    }
    // Relevance methods carry a ledger, attention rollout does not.
    expect(await cards.nth(0).locator('footer').textContent()).toMatch(/conserved|drift/);
    expect(await cards.nth(2).locator('footer').textContent()).toMatch(/no ledger/);
    await d.shot('06-compare');
  });

  it('exports the compare grid as an HTML report and a PDF', async () => {
    const html = await d.download(() => page().getByRole('button', { name: 'Export report (HTML)' }).click());
    expect(html.name).toMatch(/^relprop-task-.+\.html$/);
    const text = await fs.readFile(html.file, 'utf8');
    expect([...text.matchAll(/<article class="card" data-method="([^"]+)"/g)].map((m) => m[1])).toEqual(COMPARED);
    // Every picture is inline (input + one overlay per method); the page loads nothing.
    const imgs = [...text.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!);
    expect(imgs).toHaveLength(1 + COMPARED.length);
    expect(imgs.every((s) => s.startsWith('data:image/png;base64,'))).toBe(true);
    expect(text).toContain("default-src 'none'");
    // The ledger of each relevance method, charted.
    expect((text.match(/<svg /g) ?? []).length).toBe(2);

    const pdf = await d.download(() => page().getByRole('button', { name: 'Export report (PDF)' }).click());
    expect(pdf.name).toMatch(/\.pdf$/);
    const bytes = await fs.readFile(pdf.file);
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.length).toBeGreaterThan(10_000);
  });

  it('traces relevance through the layers: the ledger chart and one map per block', async () => {
    await page().getByRole('tab', { name: 'Layers' }).click();
    await page().selectOption('select[aria-label="Layers method"]', 'transformer-attribution');
    await page().getByRole('button', { name: 'Show layers' }).click();
    await idle();
    const view = page().locator('[data-testid="layers"]');
    await view.waitFor({ timeout: 30_000 });
    // image-softmax has 4 blocks: head, pooling, final norm, 4 blocks on the chart, and the input end.
    const figures = view.locator('[data-testid="layer-maps"] figure');
    expect(await figures.count()).toBe(4);
    expect(await figures.evaluateAll((els) => els.map((e) => e.getAttribute('data-layer')))).toEqual(['0', '1', '2', '3']);
    for (let i = 0; i < 4; i++) expect(await figures.nth(i).locator('img').getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    const totals = (await figures.locator('.num').allTextContents()).map(Number);
    expect(totals.every((t) => Number.isFinite(t))).toBe(true);
    const svg = view.locator('[data-testid="ledger-chart"] svg');
    expect(Number(await svg.getAttribute('data-points'))).toBeGreaterThanOrEqual(7);
    // Conserved to the first block: no point marked as drifting.
    expect(await svg.locator('circle[data-status="drift"]').count()).toBe(0);
    expect(await svg.locator('circle[data-status="ok"]').count()).toBeGreaterThanOrEqual(7);
    await d.shot('07-layers');

    // A method without a relevance pass says so instead of drawing an empty chart.
    await page().selectOption('select[aria-label="Layers method"]', 'rollout');
    await page().getByRole('button', { name: 'Show layers' }).click();
    await idle();
    await expect.poll(() => view.textContent(), { timeout: 30_000 }).toMatch(/has no relevance pass/);
  });

  it('runs an evaluation on the task with progress, shows its tables, resumes and exports the report', async () => {
    await page().getByRole('tab', { name: 'Evaluate' }).click();
    await page().locator('input[aria-label="Number of samples"]').fill('6');
    await tickOnly('.evaluate fieldset.checks:nth-of-type(2)', [methodTitle('transformer-attribution'), methodTitle('random')]);
    await page().getByRole('button', { name: 'Run evaluation' }).click();
    const results = page().locator('[data-testid="eval-results"]');
    await results.waitFor({ timeout: 120_000 });
    expect(await page().locator('[data-testid="eval-progress"]').getAttribute('data-state')).toBe('done');
    expect(await page().locator('[data-testid="eval-progress"]').textContent()).toMatch(/6 \/ 6 inputs/);
    const rows = results.locator('table.results-table').first().locator('tbody tr');
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-method')))).toEqual(['transformer-attribution', 'random']);
    for (const method of ['transformer-attribution', 'random']) {
      const row = results.locator(`tr[data-method="${method}"]`);
      const pos = Number(await row.locator('td[data-key="pos"]').textContent());
      const pointing = Number(await row.locator('td[data-key="localisation.pointing_game"]').textContent());
      expect(pos).toBeGreaterThanOrEqual(0);
      expect(pos).toBeLessThanOrEqual(100);
      expect(pointing).toBeGreaterThanOrEqual(0);
      expect(pointing).toBeLessThanOrEqual(1);
    }
    // Both perturbation charts, one curve per method.
    expect(await results.locator('svg polyline').count()).toBe(4);
    await d.shot('08-evaluate');

    // The same evaluation again resumes from its journal: nothing is recomputed.
    await page().getByRole('button', { name: 'Run evaluation' }).click();
    await expect.poll(() => page().locator('[data-testid="eval-progress"]').textContent(), { timeout: 60_000 }).toMatch(/6 resumed from the journal.*done/s);

    const report = await d.download(() => results.getByRole('button', { name: 'Export report (HTML)' }).click());
    const text = await fs.readFile(report.file, 'utf8');
    expect(text).toContain('<h2>Results</h2>');
    expect(text).toContain('transformer-attribution');
  });

  it('classifies a sentence with text-softmax, shades its words and traces them through the layers', async () => {
    await page().getByRole('tab', { name: 'Explain' }).click();
    await page().selectOption('select[aria-label="Model"]', 'text-softmax');
    await page().locator('textarea[aria-label="Sentence"]').fill('the staff said "awful" but the food was not bad and the view was wonderful');
    await page().getByRole('button', { name: 'Classify' }).click();
    await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(2);
    await explainWith('transformer-attribution');
    const words = page().locator('[data-testid="text-highlight"] span.word');
    expect(await words.count()).toBeGreaterThan(10);
    const colours = await words.evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
    expect(colours.every((c) => /^rgb/.test(c))).toBe(true);
    expect(colours.some((c) => c !== 'rgb(255, 255, 255)')).toBe(true);
    expect(await words.first().getAttribute('title')).toMatch(/^the: -?\d/);
    const wordCount = await words.count();
    await d.shot('09-text');

    // Rather than the other class: the map explains the difference of the two logits.
    const other = (await predictionButtons().nth(1).locator('.label').textContent())!.trim();
    await page().selectOption('select[aria-label="Contrast class"]', { label: other });
    await explainWith('gradient-input');
    expect(await page().locator('[data-testid="contrast-class"]').textContent()).toBe(other);
    await page().selectOption('select[aria-label="Contrast class"]', { label: '— (explain the class alone)' });

    await page().getByRole('tab', { name: 'Layers' }).click();
    await page().selectOption('select[aria-label="Layers method"]', 'transformer-attribution');
    await page().getByRole('button', { name: 'Show layers' }).click();
    await idle();
    const figures = page().locator('[data-testid="layer-maps"] figure');
    await expect.poll(() => figures.count(), { timeout: 30_000 }).toBe(4);
    // Each block's row put back on the same words as the explanation.
    expect(await figures.nth(3).locator('span.word').count()).toBe(wordCount);
    await d.shot('10-text-layers');
  });

  it('shows an error for a corrupt image and keeps working', async () => {
    await page().getByRole('tab', { name: 'Explain' }).click();
    await page().selectOption('select[aria-label="Model"]', 'image-softmax');
    await openImageFile(path.join(IMAGES, 'corrupt.png'));
    const alert = page().getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    expect(await alert.textContent()).toMatch(/corrupt or truncated PNG/);
    await d.shot('11-corrupt-image');

    await openImageFile(path.join(IMAGES, 'halves-32x16.webp'));
    await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
    expect(await page().getByRole('alert').count()).toBe(0);
    await explainWith('rollout');
    expect(await canvasColours('[data-testid="explanation"] canvas')).toBeGreaterThan(5);
    await d.shot('12-after-error');
    expect(d.consoleProblems()).toEqual([]);
  });
}
