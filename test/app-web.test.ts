/**
 * The app in web mode: `relprop serve` (the real CLI, built by pretest) driven by Debian's Chromium
 * through playwright-core (the scenarios in helpers/app-scenarios.ts, shared with the Electron run),
 * plus the server's guards checked with raw HTTP. Screenshots of each screen go to
 * $RELPROP_SHOTS (default: the temp folder)/relprop-app-*.png.
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
import { appScenarios } from './helpers/app-scenarios.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`app-web.test.ts: skipped, ${CHROMIUM} is missing (apt-get install -y chromium to run the app's browser tests)`);

const IMAGES = path.join(FIXTURES, 'images');
const SHOTS = process.env['RELPROP_SHOTS'] ?? os.tmpdir();

let tmp: string;
let server: ChildProcess;
let base: string;
/** The URL relprop serve printed: base with ?token=, which the page trades for its cookie. */
let printed: string;
let token: string;
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

/** Raw HTTP, so tests can send the headers a browser would not let a page forge (Host). */
function request(options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: { authorization: `Bearer ${token}`, ...options.headers } }, (res) => {
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
  const res = await fetch(`${base}api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: body === undefined ? '' : JSON.stringify(body) });
  const envelope = (await res.json()) as { ok: boolean; value?: T; error?: string };
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value as T;
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
    printed = started.url;
    base = `${new URL(printed).origin}/`;
    token = new URL(printed).searchParams.get('token') ?? '';
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

    it('explains a contrast: gradient × input of logit(A) − logit(B) is the difference of the two maps', async () => {
      const opened = await api<{ inputId: string }>('openText', { modelId: 'text-softmax', text: 'the food was not bad but the service was awful' });
      type Status = { state: string; results: Array<{ map: { data: number[] }; contrast?: { classId: number; label: string } }> };
      const run = async (body: Record<string, unknown>) => {
        const { jobId } = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'text-softmax', method: 'gradient-input', ...body });
        let s: Status;
        do s = await api<Status>('job', { id: jobId });
        while (s.state === 'queued' || s.state === 'running');
        expect(s.state).toBe('done');
        return s.results[0]!;
      };
      const a = await run({ target: 1 });
      const b = await run({ target: 0 });
      const ab = await run({ target: 1, contrast: 0 });
      expect(ab.contrast).toEqual({ classId: 0, label: 'negative' });
      expect(a.contrast).toBeUndefined();
      const scale = Math.max(...a.map.data.map(Math.abs));
      ab.map.data.forEach((v, i) => expect(Math.abs(v - (a.map.data[i]! - b.map.data[i]!))).toBeLessThan(1e-4 * scale));
      // The paper's renormalised Add is not linear in its start: a contrast is refused with the reason.
      const { jobId } = await api<{ jobId: string }>('explain', { inputId: opened.inputId, modelId: 'text-softmax', method: 'lrp', target: 1, contrast: 0 });
      let s: { state: string; error?: string };
      do s = await api<{ state: string; error?: string }>('job', { id: jobId });
      while (s.state === 'queued' || s.state === 'running');
      expect(s.state).toBe('failed');
      expect(s.error).toMatch(/contrast/);
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
    it('loads the page', async () => {
      await page.goto(printed);
    });
    appScenarios({
      page: () => page,
      tmp: () => tmp,
      taskImage: () => taskImage,
      async download(trigger) {
        const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), trigger()]);
        const file = path.join(tmp, `download-${Date.now()}-${download.suggestedFilename()}`);
        await download.saveAs(file);
        return { name: download.suggestedFilename(), file };
      },
      shot: (name) => page.screenshot({ path: path.join(SHOTS, `relprop-app-${name}.png`), fullPage: true }).then(() => undefined),
      consoleProblems: () => consoleProblems,
    });
  });
});
