// The built renderer (out/renderer) as files for a URL path: one lookup for
// both ways the page is served, `relprop serve`'s HTTP server and the desktop
// app's app:// protocol, so the two cannot differ in what they hand out.
// Nothing outside the renderer folder is ever read, whatever the path says and
// wherever a link inside the folder points.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isInside } from './paths.js';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
};

export type RendererFile =
  | { readonly status: 200; readonly data: Buffer; readonly contentType: string; readonly cacheControl: string }
  | { readonly status: 400 | 404; readonly message: string };

/** The file for `pathname` (as it came in the URL, still percent-encoded), or why there is none. */
export async function readRendererFile(rendererDir: string, pathname: string): Promise<RendererFile> {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return { status: 400, message: 'bad path' };
  }
  if (rel.includes('\u0000')) return { status: 400, message: 'bad path' };
  if (rel === '/' || rel === '') rel = '/index.html';
  const root = path.resolve(rendererDir);
  const file = path.resolve(root, '.' + rel);
  if (!isInside(root, file) || file === root) return { status: 404, message: 'not found' };
  let data: Buffer;
  try {
    // Links are followed only where they stay inside the folder.
    const [realRoot, real] = await Promise.all([fs.realpath(root), fs.realpath(file)]);
    if (!isInside(realRoot, real)) return { status: 404, message: 'not found' };
    const st = await fs.stat(real);
    if (!st.isFile()) return { status: 404, message: 'not found' };
    data = await fs.readFile(real);
  } catch {
    return { status: 404, message: 'not found' };
  }
  const contentType = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  // Built assets have content hashes in their names; the page itself must always be fresh.
  const cacheControl = file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache';
  return { status: 200, data, contentType, cacheControl };
}
