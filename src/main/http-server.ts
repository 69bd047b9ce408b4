// Web mode: the built renderer and the API over HTTP, for a browser on the
// same machine. Anything a page on the web can reach must be assumed hostile,
// so the server
//  - listens on 127.0.0.1 only;
//  - answers only requests addressed to itself by Host (a DNS-rebinding page
//    reaches 127.0.0.1 under its own host name) and, when an Origin or
//    Sec-Fetch-Site is sent, only same-origin ones (cross-site form posts);
//  - takes API calls as POST with a JSON body, which a cross-site page cannot
//    send without a preflight we never grant;
//  - caps body sizes before reading them;
//  - sends the renderer's strict CSP, and nosniff/no-referrer/frame denial,
//    on every response, errors included;
//  - answers API calls only with the per-launch secret (any local user or
//    process can reach 127.0.0.1): the printed URL carries it once as
//    ?token=, the server trades it for an HttpOnly SameSite=Strict cookie and
//    redirects to the clean URL (Jupyter's way), so it does not stay in the
//    address bar or the history; scripts may send it as a Bearer header.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { MAX_IMAGE_BYTES, MAX_TEXT_CHARS, type ApiEnvelope } from '../shared/api.js';
import { CONTENT_SECURITY_POLICY } from '../shared/csp.js';
import type { ApiHandler } from './dispatch.js';
import { readRendererFile } from './renderer-files.js';

export interface HttpServerOptions {
  /** The built renderer (out/renderer). */
  readonly rendererDir: string;
  readonly handler: ApiHandler;
  /** 0 (default): a free port chosen by the system. */
  readonly port?: number;
  /** The secret API calls must carry; default: 32 random bytes, new at every launch. */
  readonly token?: string;
}

export interface RunningServer {
  /** The URL to open: it carries the token once (the page then holds it as a cookie). */
  readonly url: string;
  /** The same without the token. */
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** base64 grows 4/3; JSON adds the field names. */
const MAX_OPEN_IMAGE_BODY = Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 64 * 1024;
/** A JSON string may escape each UTF-16 unit as \uXXXX (6 bytes). */
const MAX_OPEN_TEXT_BODY = MAX_TEXT_CHARS * 6 + 64 * 1024;
const MAX_OTHER_BODY = 256 * 1024;

const NO_ARGUMENT_METHODS = new Set(['version', 'listModels', 'listMethods']);

function bodyLimit(method: string): number {
  if (method === 'openImage') return MAX_OPEN_IMAGE_BODY;
  if (method === 'openText') return MAX_OPEN_TEXT_BODY;
  return MAX_OTHER_BODY;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // The renderer reads errors as envelopes, whatever the status.
  const envelope: ApiEnvelope<never> = { ok: false, error: message, code: status === 404 ? 'not-found' : status >= 500 ? 'failed' : 'bad-request' };
  sendJson(res, status, envelope);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new HttpError(413, `request body too large (${declared} bytes; at most ${limit})`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body too large (more than ${limit} bytes)`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function envelopeStatus(envelope: ApiEnvelope<unknown>): number {
  if (envelope.ok) return 200;
  switch (envelope.code) {
    case 'bad-request':
      return 400;
    case 'not-found':
      return 404;
    case 'unavailable':
      return 501;
    default:
      // The request was well-formed but the work failed (a corrupt image, a model that will not load).
      return 422;
  }
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningServer> {
  const rendererDir = path.resolve(options.rendererDir);
  const token = options.token ?? randomBytes(32).toString('base64url');
  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();
  /** Per port: cookies are not told apart by port, and two servers may run side by side. */
  let cookieName = 'relprop-token';

  function isToken(candidate: string | undefined): boolean {
    if (candidate === undefined) return false;
    // Equal-length digests, so the comparison takes the same time whatever the candidate.
    const digest = (t: string) => createHash('sha256').update(t).digest();
    return timingSafeEqual(digest(candidate), digest(token));
  }

  function cookie(req: IncomingMessage, name: string): string | undefined {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
    return undefined;
  }

  function checkToken(req: IncomingMessage): void {
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (isToken(cookie(req, cookieName)) || isToken(auth?.[1])) return;
    throw new HttpError(403, 'this page has no valid access token: open the URL that `relprop serve` printed (it carries ?token=…), or send it as Authorization: Bearer');
  }

  /** The printed URL's ?token=: set the cookie and send the browser on to the same URL without it. */
  function takeToken(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (!isToken(url.searchParams.get('token') ?? undefined)) throw new HttpError(403, 'wrong access token: open the URL that `relprop serve` printed at its latest start');
    url.searchParams.delete('token');
    res.setHeader('Set-Cookie', `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/`);
    res.writeHead(303, { Location: `${url.pathname}${url.search}`, 'Cache-Control': 'no-store', 'Content-Length': 0 });
    res.end();
  }

  function checkAddressedToUs(req: IncomingMessage): void {
    const host = req.headers.host;
    if (!host || !allowedHosts.has(host.toLowerCase())) throw new HttpError(403, `requests must be addressed to this server (Host ${JSON.stringify(host ?? '')} refused)`);
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) throw new HttpError(403, `cross-origin request refused (Origin ${origin})`);
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, `cross-site request refused (Sec-Fetch-Site ${site})`);
  }

  async function serveApi(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    let raw: unknown;
    if (req.method === 'GET' && NO_ARGUMENT_METHODS.has(method)) {
      raw = undefined;
    } else if (req.method === 'POST') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw new HttpError(415, 'API calls take a JSON body (Content-Type: application/json)');
      const body = await readBody(req, bodyLimit(method));
      try {
        raw = body.trim() === '' ? undefined : JSON.parse(body);
      } catch {
        throw new HttpError(400, 'the request body is not valid JSON');
      }
    } else {
      res.setHeader('Allow', NO_ARGUMENT_METHODS.has(method) ? 'GET, POST' : 'POST');
      throw new HttpError(405, `use POST for /api/${method}`);
    }
    const envelope = await options.handler(method, raw);
    sendJson(res, envelopeStatus(envelope), envelope);
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, 'method not allowed');
    }
    const found = await readRendererFile(rendererDir, pathname);
    if (found.status !== 200) throw new HttpError(found.status, found.message);
    res.writeHead(200, { 'Content-Type': found.contentType, 'Content-Length': found.data.length, 'Cache-Control': found.cacheControl });
    res.end(req.method === 'HEAD' ? undefined : found.data);
  }

  const server = createServer((req, res) => {
    securityHeaders(res);
    void (async () => {
      checkAddressedToUs(req);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const api = /^\/api\/([A-Za-z]+)$/.exec(url.pathname);
      if (url.searchParams.has('token') && !api && (req.method === 'GET' || req.method === 'HEAD')) return takeToken(req, res, url);
      if (api || url.pathname.startsWith('/api/')) checkToken(req);
      if (api) await serveApi(req, res, api[1]!);
      else if (url.pathname.startsWith('/api/')) throw new HttpError(404, `unknown API path ${url.pathname}`);
      else await serveStatic(req, res, url.pathname);
    })().catch((err: unknown) => {
      if (err instanceof HttpError) sendError(res, err.status, err.message);
      else sendError(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  // Slow or stuck clients must not hold sockets forever.
  server.requestTimeout = 120_000;
  server.headersTimeout = 20_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  allowedOrigins = new Set([...allowedHosts].map((h) => `http://${h}`));
  cookieName = `relprop-token-${port}`;
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    origin: `http://${HOST}:${port}/`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
