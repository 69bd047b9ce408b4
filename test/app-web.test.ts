/**
 * The app in web mode: `relprop serve` (the real CLI, built by pretest) driven by Debian's Chromium
 * through playwright-core, plus the server's guards checked with raw HTTP. Screenshots of each screen
 * go to /tmp/relprop-app-*.png.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { FIXTURES } from './helpers/golden.js';
import { ROOT } from './helpers/cli.js';
import { imageTask } from '../src/core/tasks/image-task.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`app-web.test.ts: skipped, ${CHROMIUM} is missing (apt-get install -y chromium to run the app's browser tests)`);

const IMAGES = path.join(FIXTURES, 'images');
const SHOTS = os.tmpdir();

let tmp: string;
let server: ChildProcess;
let base: string;
let port: number;
let browser: Browser;
let page: Page;
let taskImage: string;
const consoleProblems: string[] = [];

async function startServer(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'relprop.js'), 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relprop serve printed no URL in 30 s\nstdout: ${out}\nstderr: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
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

/** Raw HTTP, so tests can send the headers a browser would not let a page forge (Host). */
function request(options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

async function api<T>(method: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body) });
  const envelope = (await res.json()) as { ok: boolean; value?: T; error?: string };
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value as T;
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `relprop-app-${name}.png`), fullPage: true });
}

const predictionButtons = () => page.locator('ol[aria-label="Top classes"] button');

async function openImageFile(file: string): Promise<void> {
  await page.locator('[data-testid="image-file"]').setInputFiles(file);
}

/** Waits until no work is running (the progress line is gone). */
async function idle(): Promise<void> {
  await page.locator('.progress').waitFor({ state: 'detached', timeout: 60_000 });
}

async function explainWith(methodId: string): Promise<void> {
  await page.selectOption('select[aria-label="Method"]', methodId);
  await page.getByRole('button', { name: 'Explain', exact: true }).click();
  await idle();
  await expect.poll(() => page.locator('[data-testid="explanation"] h3').textContent()).toContain(await page.locator(`select[aria-label="Method"] option[value="${methodId}"]`).textContent());
}

/** Distinct colours on the overlay canvas: a drawn heatmap has many, a blank canvas one. */
async function canvasColours(selector: string): Promise<number> {
  return page.locator(selector).first().evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i += 4 * 7) seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
    return seen.size;
  });
}

describe.skipIf(!HAVE_CHROMIUM)('relprop serve: the app in a browser', () => {
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-app-'));
    if (!existsSync(path.join(ROOT, 'dist', 'main', 'worker.js'))) throw new Error('dist/main/worker.js is missing: run `npm run build:node` (npm test does it)');
    // npm test's pretest builds the CLI only; the interface is built here once when absent.
    if (!existsSync(path.join(ROOT, 'out', 'renderer', 'index.html'))) {
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: ROOT, timeout: 180_000 });
    }
    // A sample of the image model's own task: its overlay shows whether the red shape is found.
    const sample = imageTask(7_000_001, { variant: 'single', patchSize: 8 }).sample(2_000_003);
    taskImage = path.join(tmp, `task-${sample.labelName}.png`);
    await sharp(Buffer.from(sample.rgb), { raw: { width: sample.width, height: sample.height, channels: 3 } }).png().toFile(taskImage);

    const started = await startServer({ ...process.env, RELPROP_SETTINGS: path.join(tmp, 'settings.json') });
    server = started.child;
    base = started.url;
    port = Number(new URL(base).port);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) consoleProblems.push(m.text());
    });
    page.on('pageerror', (e) => consoleProblems.push(e.message));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('the server', () => {
    it('listens on 127.0.0.1 and sends the strict CSP on every response, errors included', async () => {
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      for (const p of ['/', '/api/version', '/api/nope', '/no-such-file.js']) {
        const r = await request({ path: p, headers: { host: `127.0.0.1:${port}` } });
        expect(r.headers['content-security-policy'], p).toContain("default-src 'self'");
        expect(r.headers['content-security-policy'], p).toContain("frame-ancestors 'none'");
        expect(r.headers['x-content-type-options'], p).toBe('nosniff');
      }
    });

    it('refuses requests addressed to another host name or coming from another origin (DNS rebinding, CSRF)', async () => {
      const rebinding = await request({ path: '/api/listModels', headers: { host: `attacker.example:${port}` } });
      expect(rebinding.status).toBe(403);
      expect(JSON.parse(rebinding.body).error).toMatch(/Host "attacker\.example:\d+" refused/);
      const page = await request({ path: '/', headers: { host: `attacker.example:${port}` } });
      expect(page.status).toBe(403);
      const cors = await request({ method: 'POST', path: '/api/listModels', headers: { host: `127.0.0.1:${port}`, origin: 'http://attacker.example', 'content-type': 'application/json' }, body: '{}' });
      expect(cors.status).toBe(403);
      const site = await request({ method: 'POST', path: '/api/listModels', headers: { host: `localhost:${port}`, 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }, body: '{}' });
      expect(site.status).toBe(403);
      const form = await request({ method: 'POST', path: '/api/listModels', headers: { host: `127.0.0.1:${port}`, 'content-type': 'text/plain' }, body: '{}' });
      expect(form.status).toBe(415);
      const own = await request({ method: 'POST', path: '/api/listModels', headers: { host: `localhost:${port}`, origin: `http://localhost:${port}`, 'content-type': 'application/json' }, body: '' });
      expect(own.status).toBe(200);
    });

    it('caps request bodies, stays inside the renderer folder and validates every call', async () => {
      const big = await request({ method: 'POST', path: '/api/openText', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, body: Buffer.alloc(1_000_000, 0x20) });
      expect(big.status).toBe(413);
      const traversal = await request({ path: '/..%2f..%2fpackage.json', headers: { host: `127.0.0.1:${port}` } });
      expect(traversal.status).toBe(404);
      await expect(api('explain', { inputId: 'x', modelId: 'image-softmax', method: 'no-such-method' })).rejects.toThrow(/unknown method "no-such-method"/);
      await expect(api('addModel', 'models/image-softmax')).rejects.toThrow(/must be absolute/);
      await expect(api('openText', { modelId: 'text-softmax', text: 'x'.repeat(100_001) })).rejects.toThrow(/too long/);
    });

    it('adds a model folder and remembers it in the settings file', async () => {
      const dir = path.join(FIXTURES, 'golden', 'vit-tiny-a');
      const info = await api<{ id: string; source: string; kind: string }>('addModel', dir);
      expect(info).toMatchObject({ id: 'user/vit-tiny-a', source: 'added', kind: 'image' });
      const settings = JSON.parse(await fs.readFile(path.join(tmp, 'settings.json'), 'utf8'));
      expect(settings.models).toEqual([dir]);
      await expect(api('addModel', IMAGES)).rejects.toThrow(/not a model folder \(no config\.json\)/);
    });

    it('cancels a running explanation, stopping the worker mid-method if need be, and keeps working', async () => {
      const bytes = (await fs.readFile(taskImage)).toString('base64');
      const opened = await api<{ inputId: string }>('openImage', { modelId: 'image-softmax', name: 'task.png', bytes });
      const { jobId } = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'image-softmax', method: 'integrated-gradients', options: { steps: 1000 } });
      await expect.poll(async () => (await api<{ state: string }>('job', { id: jobId })).state, { timeout: 20_000 }).toBe('running');
      const t0 = Date.now();
      expect((await api<{ state: string }>('cancel', jobId)).state).toBe('cancelled');
      // The server answers at once while the worker is busy or being replaced.
      expect((await api<{ node: string }>('version')).node).toBe(process.versions.node);
      expect(Date.now() - t0).toBeLessThan(1000);
      const again = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'image-softmax', method: 'rollout' });
      await expect.poll(async () => (await api<{ state: string }>('job', { id: again.jobId })).state, { timeout: 30_000 }).toBe('done');
      expect((await api<{ state: string }>('job', { id: jobId })).state).toBe('cancelled');
    });
  });

  describe('the interface', () => {
    it('starts with the shipped models and the method list', async () => {
      await page.goto(base);
      await expect.poll(() => page.locator('select[aria-label="Model"] option').allTextContents(), { timeout: 30_000 }).toEqual(
        expect.arrayContaining(['image-softmax (image)', 'text-softmax (text)', 'vit-tiny-a (image)']),
      );
      await expect.poll(() => page.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(10);
      expect(await page.locator('select[aria-label="Model"]').inputValue()).toBe('image-softmax');
      await shot('1-start');
    });

    it('opens an image, shows the top classes and explains it with two methods', async () => {
      await openImageFile(path.join(IMAGES, 'halves-32x16.jpg'));
      await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
      await expect(page.locator('img.preview').getAttribute('src')).resolves.toMatch(/^data:image\/png;base64,/);

      await explainWith('transformer-attribution');
      const predicted = (await predictionButtons().first().locator('.label').textContent())!.replace('predicted', '').trim();
      expect(await page.locator('[data-testid="explained-class"]').textContent()).toBe(predicted);
      expect(await canvasColours('[data-testid="explanation"] canvas')).toBeGreaterThan(20);
      expect(await page.locator('[data-testid="explanation"] .ledger').textContent()).toMatch(/✓ conserved to 1e-3|✗ drift/);
      await shot('2-explain-transformer-attribution');

      await explainWith('lrp');
      expect(await page.locator('[data-testid="explanation"] .ledger').textContent()).toMatch(/boundaries/);
      await shot('3-explain-lrp');
    });

    it('switches the explained class by clicking another class', async () => {
      const second = predictionButtons().nth(1);
      const label = (await second.locator('.label').textContent())!.trim();
      await second.click();
      await expect.poll(() => page.locator('[data-testid="explained-class"]').textContent(), { timeout: 30_000 }).toBe(label);
      await idle();
      expect(await second.getAttribute('aria-pressed')).toBe('true');
      await page.selectOption('select[aria-label="Colormap"]', 'viridis');
      await page.locator('input[aria-label="Overlay opacity"]').fill('0.7');
      await shot('4-other-class-viridis');
    });

    it('exports the overlay as a PNG', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export PNG' }).click()]);
      expect(download.suggestedFilename()).toMatch(/^relprop-lrp-.+\.png$/);
      const file = path.join(tmp, 'export.png');
      await download.saveAs(file);
      const meta = await sharp(file).metadata();
      expect(meta.format).toBe('png');
      // 32×16 enlarged by a whole factor to at most 512 px.
      expect([meta.width, meta.height]).toEqual([512, 256]);
    });

    it('shows progress while it works, and the Cancel button stops the job', async () => {
      await page.selectOption('select[aria-label="Method"]', 'integrated-gradients');
      // 1000 steps take far longer than the test waits: only a working cancel ends the job in time.
      await page.locator('input[aria-label="Steps"]').fill('1000');
      await page.getByRole('button', { name: 'Explain', exact: true }).click();
      const cancel = page.locator('.progress').getByRole('button', { name: 'Cancel' });
      await cancel.waitFor({ timeout: 30_000 });
      expect(await page.locator('.progress').textContent()).toMatch(/Explaining with Integrated gradients/);
      await shot('5-working');
      await cancel.click();
      await idle();
      expect(await page.getByRole('status').filter({ hasText: 'Cancelled.' }).count()).toBe(1);
      // What was on screen before stays there.
      expect(await page.locator('[data-testid="explanation"] h3').textContent()).toMatch(/LRP/);
      await page.locator('input[aria-label="Steps"]').fill('');
    });

    it('compares several methods on one input and class, each with its conservation status and time', async () => {
      await openImageFile(taskImage);
      await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
      await page.getByRole('tab', { name: 'Compare' }).click();
      const wanted = ['transformer-attribution', 'lrp', 'rollout', 'gradient-input'];
      const boxes = page.locator('fieldset.method-choice input[type="checkbox"]');
      for (let i = 0; i < (await boxes.count()); i++) await boxes.nth(i).setChecked(false);
      const { methods } = await api<{ methods: Array<{ id: string; title: string }> }>('listMethods');
      for (const id of wanted) {
        const title = methods.find((m) => m.id === id)!.title;
        await page.locator('fieldset.method-choice label').filter({ hasText: title }).first().locator('input').setChecked(true);
      }
      await page.getByRole('button', { name: 'Compare', exact: true }).click();
      await idle();
      const cards = page.locator('[data-testid="compare-grid"] article');
      await expect.poll(() => cards.count(), { timeout: 60_000 }).toBe(wanted.length);
      expect(await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-method')))).toEqual(wanted);
      for (let i = 0; i < wanted.length; i++) {
        const footer = (await cards.nth(i).locator('footer').textContent())!;
        expect(footer).toMatch(/✓ conserved to 1e-3|✗ drift \d|— no ledger/);
        expect(footer).toMatch(/\d+ ms|\d\.\d+ s/);
        expect(await canvasColours(`[data-testid="compare-grid"] article:nth-child(${i + 1}) canvas`)).toBeGreaterThan(5);
      }
      // Relevance methods carry a ledger, attention rollout does not.
      expect(await cards.nth(0).locator('footer').textContent()).toMatch(/conserved|drift/);
      expect(await cards.nth(2).locator('footer').textContent()).toMatch(/no ledger/);
      await shot('6-compare');
    });

    it('classifies a sentence with text-softmax and shades its words', async () => {
      await page.getByRole('tab', { name: 'Explain' }).click();
      await page.selectOption('select[aria-label="Model"]', 'text-softmax');
      await page.locator('textarea[aria-label="Sentence"]').fill('the staff said "awful" but the food was not bad and the view was wonderful');
      await page.getByRole('button', { name: 'Classify' }).click();
      await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(2);
      await explainWith('transformer-attribution');
      const words = page.locator('[data-testid="text-highlight"] span.word');
      expect(await words.count()).toBeGreaterThan(10);
      const colours = await words.evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
      expect(colours.every((c) => /^rgb/.test(c))).toBe(true);
      expect(colours.some((c) => c !== 'rgb(255, 255, 255)')).toBe(true);
      const title = await words.first().getAttribute('title');
      expect(title).toMatch(/^the: -?\d/);
      await shot('7-text');
    });

    it('shows an error for a corrupt image and keeps working', async () => {
      await page.selectOption('select[aria-label="Model"]', 'image-softmax');
      await openImageFile(path.join(IMAGES, 'corrupt.png'));
      const alert = page.getByRole('alert');
      await alert.waitFor({ timeout: 30_000 });
      expect(await alert.textContent()).toMatch(/corrupt or truncated PNG/);
      await shot('8-corrupt-image');

      await openImageFile(path.join(IMAGES, 'halves-32x16.webp'));
      await expect.poll(() => predictionButtons().count(), { timeout: 30_000 }).toBe(4);
      expect(await page.getByRole('alert').count()).toBe(0);
      await explainWith('rollout');
      expect(await canvasColours('[data-testid="explanation"] canvas')).toBeGreaterThan(5);
      await shot('9-after-error');
      expect(consoleProblems).toEqual([]);
    });
  });
});
