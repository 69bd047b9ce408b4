/**
 * The app's service seen from a browser (`relprop serve`, the real CLI, driven by Debian's Chromium
 * through playwright-core): the per-launch secret, what a page may read (no links out of the folders
 * the user chose), the activity bar, and what becomes of a page's work when it reloads or closes.
 * Screenshots go to test-results/app-service/ (gitignored).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`app-service.test.ts: skipped, ${CHROMIUM} is missing`);
const SHOTS = process.env['RELPROP_SHOTS'] ? path.join(process.env['RELPROP_SHOTS'], 'app-service') : path.join(ROOT, 'test-results', 'app-service');
const RENDERER = path.join(ROOT, 'out', 'renderer');
/** What the linked files hold: it must never come back in a message or a report. */
const SECRET = 'PRIVATE-KEY-d41d8cd98f00b204';

let tmp: string;
let server: ChildProcess;
/** The URL relprop serve printed (with its token, once it has one). */
let printed: string;
let base: string;
let port: number;
let browser: Browser;
let page: Page;
const cleanups: string[] = [];

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

function token(): string {
  return new URL(printed).searchParams.get('token') ?? '';
}

/** Raw HTTP, with whatever headers a test wants (the page's cookie, or none). */
function request(options: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: { host: `127.0.0.1:${port}`, ...options.headers } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** An API call as a script holding the token would make it; `client` names the window it stands for. */
async function api<T>(method: string, body?: unknown, client = 'script'): Promise<T> {
  const res = await fetch(`${base}api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}`, 'x-relprop-client': client },
    body: body === undefined ? '' : JSON.stringify(body),
  });
  const envelope = (await res.json()) as { ok: boolean; value?: T; error?: string };
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value as T;
}

const IMAGE = path.join(ROOT, 'test', 'fixtures', 'images', 'halves-32x16.jpg');
const bar = () => page.locator('[data-testid="activity-bar"]');
const idle = () => page.locator('[data-testid="activity-bar"][data-busy="false"]').waitFor({ state: 'attached', timeout: 60_000 });
type Job = { state: string; done: number; total: number; step?: { done: number; total: number } };

async function openInPage(file: string): Promise<void> {
  await page.locator('[data-testid="image-file"]').setInputFiles(file);
  await expect.poll(() => page.locator('ol[aria-label="Top classes"] button').count(), { timeout: 30_000 }).toBe(4);
}

/** Starts integrated gradients with 1000 steps (far longer than any test waits) in the page; its job id. */
async function startLongJob(): Promise<string> {
  await page.getByRole('tab', { name: 'Explain' }).click();
  await page.selectOption('select[aria-label="Method"]', 'integrated-gradients');
  await page.locator('input[aria-label="Steps"]').fill('1000');
  await page.getByRole('button', { name: 'Explain', exact: true }).click();
  const row = bar().locator('[data-activity="explain"]');
  await expect.poll(() => row.textContent(), { timeout: 30_000 }).toMatch(/step \d+ of 1000/);
  return (await row.getAttribute('data-id'))!;
}

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** A copy of a shipped model whose `file` is replaced by a link to `target`. */
async function modelWithLink(name: string, file: string, target: string): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir);
  const from = path.join(ROOT, 'models', 'text-softmax');
  for (const f of await fs.readdir(from)) if (f !== file) await fs.copyFile(path.join(from, f), path.join(dir, f));
  await fs.symlink(target, path.join(dir, file));
  return dir;
}

describe.skipIf(!HAVE_CHROMIUM)('relprop serve: the service behind the page', () => {
  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'main', 'worker.js'))) throw new Error('dist/main/worker.js is missing: run `npm run build:node` (npm test does it)');
    if (!existsSync(path.join(RENDERER, 'index.html'))) throw new Error('out/renderer is missing: run `npm run build:app` (npm test does it)');
    await fs.mkdir(SHOTS, { recursive: true });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-app-service-'));
    await fs.mkdir(path.join(tmp, 'private'));
    await fs.writeFile(path.join(tmp, 'private', 'id_rsa'), `${SECRET} this is not JSON\n`);
    await fs.writeFile(path.join(tmp, 'private', 'diary.txt'), `${SECRET} met the landlord today\nthe food was awful\n`);
    const started = await startServer({ ...process.env, RELPROP_SETTINGS: path.join(tmp, 'settings.json') });
    server = started.child;
    printed = started.url;
    base = `${new URL(printed).origin}/`;
    port = Number(new URL(printed).port);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    for (const f of cleanups) await fs.rm(f, { force: true });
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('the per-launch secret', () => {
    it('prints a URL with a fresh token, and refuses API calls without it', async () => {
      expect(printed).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
      const call = (headers: Record<string, string>) => request({ method: 'POST', path: '/api/listModels', headers: { 'content-type': 'application/json', ...headers }, body: '' });
      const none = await call({});
      expect(none.status).toBe(403);
      expect(JSON.parse(none.body).error).toMatch(/no valid access token: open the URL that `relprop serve` printed/);
      expect((await call({ authorization: 'Bearer wrong' })).status).toBe(403);
      expect((await call({ cookie: `relprop-token-${port}=wrong` })).status).toBe(403);
      // Another server's cookie (cookies are shared across ports) is not this one's.
      expect((await call({ cookie: `relprop-token-${port + 1}=${token()}` })).status).toBe(403);
      expect((await request({ path: '/api/version' })).status).toBe(403);
      expect((await call({ authorization: `Bearer ${token()}` })).status).toBe(200);
      expect((await call({ cookie: `other=1; relprop-token-${port}=${token()}` })).status).toBe(200);
      // The older defences still come first: a rebinding page holding the token is refused by Host.
      expect((await request({ method: 'POST', path: '/api/listModels', headers: { host: `attacker.example:${port}`, authorization: `Bearer ${token()}`, 'content-type': 'application/json' }, body: '' })).status).toBe(403);
      expect((await request({ path: `/?token=wrong` })).status).toBe(403);
    });

    it('a page opened without the token says how to get in; the printed URL sets an HttpOnly cookie and moves to the clean URL', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 700 } });
      const bare = await context.newPage();
      await bare.goto(base);
      const alert = bare.getByRole('alert');
      await alert.waitFor({ timeout: 30_000 });
      expect(await alert.textContent()).toMatch(/no valid access token: open the URL that `relprop serve` printed/);
      await bare.screenshot({ path: path.join(SHOTS, '14-no-token.png') });

      await bare.goto(printed);
      expect(bare.url()).toBe(base);
      await expect.poll(() => bare.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
      const cookies = await context.cookies(base);
      expect(cookies).toEqual([expect.objectContaining({ name: `relprop-token-${port}`, value: token(), httpOnly: true, sameSite: 'Strict', path: '/' })]);
      // The page's scripts cannot read it.
      expect(await bare.evaluate(() => document.cookie)).toBe('');
      expect(await bare.evaluate(() => location.href)).not.toContain('token');
      await bare.screenshot({ path: path.join(SHOTS, '14-with-token.png') });
      await context.close();
    });
  });

  describe('one activity bar for every long operation', () => {
    it('shows the steps and time left of a 1000-step integrated gradients, and its Cancel stops it', async () => {
      await page.goto(printed);
      await expect.poll(() => page.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
      await openInPage(IMAGE);
      const jobId = await startLongJob();
      const row = bar().locator(`[data-id="${jobId}"]`);
      expect(await row.locator('.label').textContent()).toBe('Explaining halves-32x16.jpg with Integrated gradients');
      expect(Number(await row.locator('progress').getAttribute('max'))).toBe(1000);
      await expect.poll(() => row.textContent(), { timeout: 20_000 }).toMatch(/about \d.* left/);
      const before = await api<Job>('job', { id: jobId });
      expect(before.state).toBe('running');
      expect(before.step!.total).toBe(1000);
      expect(before.step!.done).toBeGreaterThan(0);
      await shot('11-activity-steps');
      const t0 = Date.now();
      await row.getByRole('button', { name: 'Cancel' }).click();
      await row.waitFor({ state: 'detached', timeout: 10_000 });
      const gone = Date.now() - t0;
      expect((await api<Job>('job', { id: jobId })).state).toBe('cancelled');
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'Cancelled.' }).count()).toBe(1);
      console.log(`activity bar: Cancel to row gone ${gone} ms`);
      await page.locator('input[aria-label="Steps"]').fill('');
    });

    it("lists an opening queued behind another window's job, and either can be cancelled from the bar", async () => {
      // Another window (a script standing for it) starts a long job on the same input.
      const opened = await api<{ inputId: string }>('openImage', { modelId: 'image-softmax', name: 'other.jpg', bytes: (await fs.readFile(IMAGE)).toString('base64') }, 'other-window');
      const other = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'image-softmax', method: 'smoothgrad', options: { samples: 1000 } }, 'other-window');
      await expect.poll(async () => (await api<Job>('job', { id: other.jobId })).state, { timeout: 20_000 }).toBe('running');
      // This page opens an image: it waits behind that job, and says so.
      await page.locator('[data-testid="image-file"]').setInputFiles(path.join(ROOT, 'test', 'fixtures', 'images', 'halves-32x16.webp'));
      const otherRow = bar().locator(`[data-id="${other.jobId}"]`);
      const openRow = bar().locator('[data-activity="open"]');
      await openRow.waitFor({ timeout: 10_000 });
      expect(await openRow.locator('.label').textContent()).toBe('Opening halves-32x16.webp with image-softmax');
      expect(await openRow.textContent()).toMatch(/waiting for the work before it/);
      // Steps are reported after each batch of noisy copies: the first may still be running.
      await expect.poll(() => otherRow.textContent(), { timeout: 20_000 }).toMatch(/SmoothGrad.*step \d+ of 1000.*started by another window/);
      await shot('11-activity-queued-open');
      // Cancel the opening: answered at once, while the other job still runs.
      await openRow.getByRole('button', { name: 'Cancel' }).click();
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'Cancelled.' }).count(), { timeout: 5_000 }).toBe(1);
      await openRow.waitFor({ state: 'detached', timeout: 5_000 });
      expect((await api<Job>('job', { id: other.jobId })).state).toBe('running');
      // Any page may stop another's job: the worker is free again.
      await otherRow.getByRole('button', { name: 'Cancel' }).click();
      await otherRow.waitFor({ state: 'detached', timeout: 10_000 });
      expect((await api<Job>('job', { id: other.jobId })).state).toBe('cancelled');
      await openInPage(IMAGE);
      await idle();
    });

    it('lists a model being loaded, with its Cancel; a cancelled load is neither kept nor selected', async () => {
      const opened = await api<{ inputId: string }>('openImage', { modelId: 'image-softmax', name: 'other.jpg', bytes: (await fs.readFile(IMAGE)).toString('base64') }, 'other-window');
      const other = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'image-softmax', method: 'smoothgrad', options: { samples: 1000 } }, 'other-window');
      await expect.poll(async () => (await api<Job>('job', { id: other.jobId })).state, { timeout: 20_000 }).toBe('running');
      const folder = path.join(ROOT, 'test', 'fixtures', 'golden', 'vit-tiny-a');
      await page.getByRole('button', { name: 'Add model folder…' }).click();
      await page.locator('#model-path').fill(folder);
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      const loadRow = bar().locator('[data-activity="load"]');
      await loadRow.waitFor({ timeout: 10_000 });
      expect(await loadRow.locator('.label').textContent()).toBe('Loading the model in vit-tiny-a');
      expect(await loadRow.textContent()).toMatch(/waiting for the work before it/);
      expect(await loadRow.getAttribute('data-mine')).toBe('true');
      await shot('11-activity-model-load');
      await loadRow.getByRole('button', { name: 'Cancel' }).click();
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'Cancelled.' }).count(), { timeout: 5_000 }).toBe(1);
      await loadRow.waitFor({ state: 'detached', timeout: 5_000 });
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(await page.locator('select[aria-label="Model"]').inputValue()).toBe('image-softmax');
      expect((await api<Array<{ id: string }>>('listModels')).map((m) => m.id)).not.toContain('user/vit-tiny-a');
      const settings = path.join(tmp, 'settings.json');
      expect(existsSync(settings) ? JSON.parse(await fs.readFile(settings, 'utf8')).models ?? [] : []).not.toContain(folder);
      await bar().locator(`[data-id="${other.jobId}"]`).getByRole('button', { name: 'Cancel' }).click();
      await expect.poll(async () => (await api<Job>('job', { id: other.jobId })).state, { timeout: 10_000 }).toBe('cancelled');
      await idle();
    });

    it('bounds the explanations one window may queue', async () => {
      const opened = await api<{ inputId: string }>('openImage', { modelId: 'image-softmax', name: 'q.jpg', bytes: (await fs.readFile(IMAGE)).toString('base64') }, 'greedy');
      const ask = (client: string) => api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'image-softmax', method: 'integrated-gradients', options: { steps: 1000 } }, client);
      const jobs: string[] = [];
      for (let i = 0; i < 4; i++) jobs.push((await ask('greedy')).jobId);
      await expect(ask('greedy')).rejects.toThrow(/this window already has 4 explanations queued or running/);
      // Another window is not held to the first one's count.
      jobs.push((await ask('modest')).jobId);
      for (const id of jobs) await api('cancel', id);
      for (const id of jobs) await expect.poll(async () => (await api<Job>('job', { id })).state, { timeout: 10_000 }).toBe('cancelled');
      // Cancelled jobs free the window's places.
      const again = await ask('greedy');
      await api('cancel', again.jobId);
    });
  });

  describe("a page's work when the page goes away", () => {
    it('a reload cancels the explanation the page had running, so later requests do not wait behind it', async () => {
      await idle();
      const jobId = await startLongJob();
      await page.reload();
      // The reloaded page's attach() cancels what nobody follows any more.
      await expect.poll(async () => (await api<Job>('job', { id: jobId })).state, { timeout: 10_000 }).toBe('cancelled');
      await expect.poll(() => bar().locator(`[data-id="${jobId}"]`).count(), { timeout: 10_000 }).toBe(0);
      await expect.poll(() => page.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
      const t0 = Date.now();
      await openInPage(IMAGE);
      await page.selectOption('select[aria-label="Method"]', 'rollout');
      await page.getByRole('button', { name: 'Explain', exact: true }).click();
      await expect.poll(() => page.locator('[data-testid="explanation"] h3').textContent(), { timeout: 30_000 }).toContain('rollout');
      const waited = Date.now() - t0;
      // A 1000-step integral takes far longer than this; the page's new work did not wait for it.
      expect(waited).toBeLessThan(10_000);
      console.log(`after a reload: open + rollout in ${waited} ms`);
      await shot('10-after-reload');
    });

    it('closing the tab cancels its explanation too', async () => {
      const context = await browser.newContext();
      const tab = await context.newPage();
      await tab.goto(printed);
      await expect.poll(() => tab.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
      await tab.locator('[data-testid="image-file"]').setInputFiles(IMAGE);
      await expect.poll(() => tab.locator('ol[aria-label="Top classes"] button').count(), { timeout: 30_000 }).toBe(4);
      await tab.selectOption('select[aria-label="Method"]', 'integrated-gradients');
      await tab.locator('input[aria-label="Steps"]').fill('1000');
      await tab.getByRole('button', { name: 'Explain', exact: true }).click();
      const row = tab.locator('[data-testid="activity-bar"] [data-activity="explain"]');
      await row.waitFor({ timeout: 30_000 });
      const jobId = (await row.getAttribute('data-id'))!;
      await tab.close();
      await expect.poll(async () => (await api<Job>('job', { id: jobId })).state, { timeout: 10_000 }).toBe('cancelled');
      await context.close();
    });

    it('an evaluation outlives the page: the reloaded page reattaches to it, with its progress and Cancel', async () => {
      await page.getByRole('tab', { name: 'Evaluate' }).click();
      await page.locator('.evaluate input[type="radio"][value="task"]').check();
      await page.locator('input[aria-label="Number of samples"]').fill('400');
      await page.getByRole('button', { name: 'Run evaluation' }).click();
      await expect.poll(() => page.locator('[data-testid="eval-progress"]').textContent(), { timeout: 60_000 }).toMatch(/[1-9]\d* \/ 400 inputs/);
      await page.reload();
      await page.getByRole('tab', { name: 'Evaluate' }).click();
      const progress = page.locator('[data-testid="eval-progress"]');
      await expect.poll(() => progress.getAttribute('data-state'), { timeout: 30_000 }).toBe('running');
      const row = bar().locator('[data-activity="evaluate"]');
      await row.waitFor({ timeout: 10_000 });
      expect(await row.getAttribute('data-mine')).toBe('true');
      expect(await row.textContent()).toMatch(/Evaluating image-softmax on 400 samples of the image task.*\d+ \/ 400 inputs/);
      // The form shows what is running, not the page's defaults (50 samples).
      await expect.poll(() => page.locator('input[aria-label="Number of samples"]').inputValue(), { timeout: 5_000 }).toBe('400');
      // Asking again says where the running one is.
      await page.getByRole('button', { name: 'Run evaluation' }).isDisabled();
      const evalId = (await row.getAttribute('data-id'))!;
      await expect(api('evaluate', { modelId: 'image-softmax', data: { kind: 'task', task: 'image', count: 5 }, methods: ['random'], metrics: ['perturbation'] })).rejects.toThrow(/already running .*activity bar/);
      await shot('10-evaluation-reattached');
      await progress.getByRole('button', { name: 'Cancel' }).click();
      await expect.poll(() => progress.getAttribute('data-state'), { timeout: 30_000 }).toBe('cancelled');
      await row.waitFor({ state: 'detached', timeout: 10_000 });
      expect((await api<{ state: string }>('evaluation', evalId)).state).toBe('cancelled');
    });
  });

  describe('no reading through links', () => {
    it('refuses a model folder whose config.json links outside it, in the page, without echoing the file', async () => {
      const dir = await modelWithLink('linked-config', 'config.json', path.join(tmp, 'private', 'id_rsa'));
      await page.goto(printed);
      // The tab is kept across reloads (the evaluation above left the page on Evaluate).
      await page.getByRole('tab', { name: 'Explain' }).click();
      await expect.poll(() => page.locator('select[aria-label="Method"] option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(16);
      await page.getByRole('button', { name: 'Add model folder…' }).click();
      await page.locator('#model-path').fill(dir);
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor({ timeout: 30_000 });
      const text = (await alert.textContent())!;
      expect(text).toContain(`${dir}/config.json is a link that leads outside the model folder`);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('private');
      await shot('15-linked-config-refused');
      // Nothing was remembered.
      expect(existsSync(path.join(tmp, 'settings.json'))).toBe(false);
    });

    it('never echoes a broken config.json, and refuses linked weights', async () => {
      const broken = path.join(tmp, 'broken-config');
      await fs.mkdir(broken);
      await fs.copyFile(path.join(ROOT, 'models', 'text-softmax', 'model.safetensors'), path.join(broken, 'model.safetensors'));
      await fs.writeFile(path.join(broken, 'config.json'), `${SECRET} {"model_type": "bert"`);
      const err = await api('addModel', broken).catch((e: Error) => e.message);
      expect(err).toMatch(/config\.json: not valid JSON/);
      expect(err).not.toContain(SECRET);

      const weights = await modelWithLink('linked-weights', 'model.safetensors', path.join(tmp, 'private', 'id_rsa'));
      await expect(api('addModel', weights)).rejects.toThrow(/model\.safetensors is a link that leads outside the model folder/);
    });

    it('refuses evaluation data that links outside its folder, and nothing of it reaches a report', async () => {
      const data = path.join(tmp, 'data');
      await fs.mkdir(data);
      const linked = path.join(data, 'sentences.txt');
      await fs.symlink(path.join(tmp, 'private', 'diary.txt'), linked);
      await page.selectOption('select[aria-label="Model"]', 'text-softmax');
      await page.getByRole('tab', { name: 'Evaluate' }).click();
      await page.locator('.evaluate input[type="radio"][value="path"]').check();
      await page.locator('input[aria-label="Data path"]').fill(linked);
      await page.getByRole('button', { name: 'Run evaluation' }).click();
      const alert = page.locator('.evaluate [role="alert"]');
      await alert.waitFor({ timeout: 30_000 });
      expect(await alert.textContent()).toContain(`${linked} is a link that leads outside the data folder`);
      await shot('15-linked-data-refused');
      // No run folder was made for it, so no report can carry the file.
      const runs = path.join(tmp, 'evaluations');
      expect((existsSync(runs) ? await fs.readdir(runs) : []).filter((f) => f.includes('sentences'))).toEqual([]);
      // A link that stays inside the folder is fine.
      await fs.writeFile(path.join(data, 'real.txt'), 'the food was good\nthe service was awful\n');
      await fs.symlink(path.join(data, 'real.txt'), path.join(data, 'alias.txt'));
      const { jobId } = await api<{ jobId: string }>('evaluate', { modelId: 'text-softmax', data: { kind: 'path', path: path.join(data, 'alias.txt') }, methods: ['random'], metrics: ['perturbation'] });
      await expect.poll(async () => (await api<{ state: string }>('evaluation', jobId)).state, { timeout: 60_000 }).toBe('done');
    });

    it('serves no file of the renderer folder that links outside it', async () => {
      const leak = path.join(RENDERER, 'leak.txt');
      const inside = path.join(RENDERER, 'inside.html');
      cleanups.push(leak, inside);
      await fs.symlink(path.join(tmp, 'private', 'id_rsa'), leak);
      await fs.symlink(path.join(RENDERER, 'index.html'), inside);
      const r = await request({ path: '/leak.txt' });
      expect(r.status).toBe(404);
      expect(r.body).not.toContain(SECRET);
      expect((await request({ path: '/inside.html' })).status).toBe(200);
    });
  });
});
