/**
 * The app's service seen from a browser (`relprop serve`, the real CLI, driven by Debian's Chromium
 * through playwright-core): what a page may read (no links out of the folders the user chose).
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
const SHOTS = path.join(ROOT, 'test-results', 'app-service');
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

/** An API call as a script holding the token would make it. */
async function api<T>(method: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
    body: body === undefined ? '' : JSON.stringify(body),
  });
  const envelope = (await res.json()) as { ok: boolean; value?: T; error?: string };
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value as T;
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

  describe('no reading through links', () => {
    it('refuses a model folder whose config.json links outside it, in the page, without echoing the file', async () => {
      const dir = await modelWithLink('linked-config', 'config.json', path.join(tmp, 'private', 'id_rsa'));
      await page.goto(printed);
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
      expect(existsSync(runs) ? await fs.readdir(runs) : []).toEqual([]);
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
