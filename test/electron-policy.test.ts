/**
 * The desktop window's rules (src/main/electron-policy.ts), tested without the Electron binary
 * (issue 17, item 16): the page's own app:// scheme served from out/renderer with no way out of it,
 * the dev server's URL only behind --relprop-dev, no Reload or DevTools in production menus. The
 * per-window bound on queued jobs is the service's, tested in app-service.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEV_FLAG, devServerUrl, isOwnRendererUrl, menuRoles, menuTemplate, RENDERER_ENTRY, rendererResponse } from '../src/main/electron-policy.js';
import { CONTENT_SECURITY_POLICY } from '../src/shared/csp.js';

let tmp: string;
let renderer: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-electron-policy-'));
  renderer = path.join(tmp, 'renderer');
  await fs.mkdir(path.join(renderer, 'assets'), { recursive: true });
  await fs.writeFile(path.join(renderer, 'index.html'), '<!doctype html><title>relprop</title>');
  await fs.writeFile(path.join(renderer, 'assets', 'app.js'), 'export {};');
  await fs.writeFile(path.join(tmp, 'secret.txt'), 'PRIVATE');
  await fs.symlink(path.join(tmp, 'secret.txt'), path.join(renderer, 'leak.txt'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('the renderer is served through app://relprop, not file://', () => {
  it('answers its files with their type and the strict CSP', async () => {
    expect(RENDERER_ENTRY).toBe('app://relprop/index.html');
    const index = await rendererResponse(renderer, 'app://relprop/');
    expect(index.status).toBe(200);
    expect(index.headers['Content-Type']).toBe('text/html; charset=utf-8');
    expect(index.headers['Content-Security-Policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(String(index.body)).toContain('<title>relprop</title>');
    const js = await rendererResponse(renderer, 'app://relprop/assets/app.js');
    expect(js.headers['Content-Type']).toBe('text/javascript; charset=utf-8');
  });

  it('reads nothing outside out/renderer: no traversal, no link leading out, no other host', async () => {
    for (const url of ['app://relprop/..%2f..%2fsecret.txt', 'app://relprop/%2e%2e/secret.txt', 'app://relprop/leak.txt', 'app://relprop/nope.js']) {
      const r = await rendererResponse(renderer, url);
      expect(r.status, url).toBeGreaterThanOrEqual(400);
      expect(String(r.body), url).not.toContain('PRIVATE');
    }
    expect((await rendererResponse(renderer, 'app://other/index.html')).status).toBe(404);
    expect((await rendererResponse(renderer, 'app://relprop/index.html', 'POST')).status).toBe(405);
  });

  it('trusts only its own page: app://relprop, or the dev server when one is in use', () => {
    expect(isOwnRendererUrl('app://relprop/index.html#x', undefined)).toBe(true);
    for (const url of ['file:///tmp/index.html', 'app://evil/index.html', 'app://user@relprop/index.html', 'http://127.0.0.1:5173/', 'not a url']) {
      expect(isOwnRendererUrl(url, undefined), url).toBe(false);
    }
    const dev = new URL('http://localhost:5173/');
    expect(isOwnRendererUrl('http://localhost:5173/src/main.ts', dev)).toBe(true);
    expect(isOwnRendererUrl('http://localhost:5174/', dev)).toBe(false);
    expect(isOwnRendererUrl('app://relprop/index.html', dev)).toBe(false);
  });
});

describe('ELECTRON_RENDERER_URL only behind an explicit dev flag', () => {
  const env = { ELECTRON_RENDERER_URL: 'http://localhost:5173/' };
  it('is ignored, with the reason, without --relprop-dev, in a packaged app, or off this machine', () => {
    expect(devServerUrl({}, [DEV_FLAG], false)).toEqual({ url: undefined });
    expect(devServerUrl(env, ['electron', '.'], false)).toEqual({ url: undefined, ignored: expect.stringContaining('without --relprop-dev') });
    expect(devServerUrl(env, [DEV_FLAG], true)).toEqual({ url: undefined, ignored: expect.stringContaining('packaged') });
    expect(devServerUrl({ ELECTRON_RENDERER_URL: 'https://attacker.example/' }, [DEV_FLAG], false).url).toBeUndefined();
    expect(devServerUrl({ ELECTRON_RENDERER_URL: 'file:///tmp/x.html' }, [DEV_FLAG], false).url).toBeUndefined();
    expect(devServerUrl({ ELECTRON_RENDERER_URL: '::' }, [DEV_FLAG], false).ignored).toMatch(/not a URL/);
  });
  it('is used unpackaged with the flag (npm run app passes it)', async () => {
    expect(devServerUrl(env, ['electron', '.', DEV_FLAG], false).url?.href).toBe('http://localhost:5173/');
    const pkg = JSON.parse(await fs.readFile(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['app']).toContain(`-- ${DEV_FLAG}`);
  });
});

describe('production menus have no Reload or DevTools', () => {
  it('offers them in development only', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      const prod = menuRoles(menuTemplate(false, platform));
      expect(prod).not.toContain('reload');
      expect(prod).not.toContain('forceReload');
      expect(prod).not.toContain('toggleDevTools');
      expect(prod).toEqual(expect.arrayContaining(['copy', 'paste', 'quit']));
      expect(menuRoles(menuTemplate(true, platform))).toEqual(expect.arrayContaining(['reload', 'toggleDevTools']));
    }
  });
});
