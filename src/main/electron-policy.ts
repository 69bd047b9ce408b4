// The desktop window's rules, as plain functions with no Electron import, so
// that they are tested where the Electron binary cannot be installed:
// - the page comes from app://relprop/ (a privileged, standard scheme served
//   from out/renderer by readRendererFile, the same lookup `relprop serve`
//   uses), never from file://, where any local file is same-origin with it;
// - a dev server's URL (ELECTRON_RENDERER_URL) is honoured only when the app
//   is unpackaged and started with --relprop-dev (`npm run app` passes it), so
//   an environment variable alone cannot make the window load and trust a page;
// - production menus have no Reload and no DevTools.

import type { MenuItemConstructorOptions } from 'electron';
import { readRendererFile } from './renderer-files.js';
import { CONTENT_SECURITY_POLICY } from '../shared/csp.js';

export const RENDERER_SCHEME = 'app';
export const RENDERER_HOST = 'relprop';
export const RENDERER_ORIGIN = `${RENDERER_SCHEME}://${RENDERER_HOST}`;
export const RENDERER_ENTRY = `${RENDERER_ORIGIN}/index.html`;
export const DEV_FLAG = '--relprop-dev';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export interface DevServerDecision {
  url: URL | undefined;
  /** Why a set ELECTRON_RENDERER_URL was not used (printed once at start). */
  ignored?: string;
}

/** The dev server to load the page from, or none: only unpackaged, with the flag, over loopback http(s). */
export function devServerUrl(env: NodeJS.ProcessEnv, argv: readonly string[], isPackaged: boolean): DevServerDecision {
  const raw = env['ELECTRON_RENDERER_URL'];
  if (!raw) return { url: undefined };
  if (isPackaged) return { url: undefined, ignored: 'ELECTRON_RENDERER_URL is ignored by a packaged app' };
  if (!argv.includes(DEV_FLAG)) return { url: undefined, ignored: `ELECTRON_RENDERER_URL is ignored without ${DEV_FLAG} (npm run app passes it)` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { url: undefined, ignored: `ELECTRON_RENDERER_URL is not a URL: ${JSON.stringify(raw.slice(0, 200))}` };
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !LOOPBACK.has(url.hostname)) {
    return { url: undefined, ignored: `ELECTRON_RENDERER_URL must be an http(s) URL on this machine (localhost, 127.0.0.1), got ${url.origin}` };
  }
  return { url };
}

/** True only for our own renderer page (any path, query or hash): app://relprop/…, or the dev server's origin. */
export function isOwnRendererUrl(raw: string, dev: URL | undefined): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (dev) return url.origin === dev.origin;
  return url.protocol === `${RENDERER_SCHEME}:` && url.host === RENDERER_HOST && url.username === '' && url.password === '' && url.port === '';
}

export interface ProtocolReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** What app://relprop/<path> answers: a file of out/renderer (no link leaving it), with the strict CSP. */
export async function rendererResponse(rendererDir: string, rawUrl: string, method = 'GET'): Promise<ProtocolReply> {
  const headers = { 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff' };
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return { status: 400, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, body: 'bad URL' };
  }
  if (!isOwnRendererUrl(url.href, undefined)) return { status: 404, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, body: 'not found' };
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }, body: 'method not allowed' };
  const found = await readRendererFile(rendererDir, url.pathname);
  if (found.status !== 200) return { status: found.status, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }, body: found.message };
  return { status: 200, headers: { ...headers, 'Content-Type': found.contentType, 'Cache-Control': found.cacheControl }, body: method === 'HEAD' ? '' : found.data };
}

/** Menu roles a production build must not offer: they reload the page (losing its work) or open DevTools. */
export const DEV_ONLY_ROLES = new Set(['reload', 'forceReload', 'toggleDevTools']);

/** The application menu: edit and window roles; View (Reload, DevTools) only in development. */
export function menuTemplate(dev: boolean, platform: NodeJS.Platform = process.platform): MenuItemConstructorOptions[] {
  const menu: MenuItemConstructorOptions[] = [];
  if (platform === 'darwin') menu.push({ label: 'relprop', submenu: [{ role: 'about' }, { type: 'separator' }, { role: 'hide' }, { role: 'hideOthers' }, { role: 'unhide' }, { type: 'separator' }, { role: 'quit' }] });
  else menu.push({ label: 'File', submenu: [{ role: 'quit' }] });
  menu.push({ label: 'Edit', submenu: [{ role: 'undo' }, { role: 'redo' }, { type: 'separator' }, { role: 'cut' }, { role: 'copy' }, { role: 'paste' }, { role: 'selectAll' }] });
  if (dev) menu.push({ label: 'View', submenu: [{ role: 'reload' }, { role: 'forceReload' }, { role: 'toggleDevTools' }] });
  menu.push({ label: 'Window', submenu: [{ role: 'minimize' }, { role: 'close' }] });
  return menu;
}

/** Every role a template offers, submenus included. */
export function menuRoles(template: readonly MenuItemConstructorOptions[]): string[] {
  const out: string[] = [];
  for (const item of template) {
    if (item.role) out.push(item.role);
    if (Array.isArray(item.submenu)) out.push(...menuRoles(item.submenu as MenuItemConstructorOptions[]));
  }
  return out;
}
