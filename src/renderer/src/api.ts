import { API_METHODS, ApiError, unwrapEnvelope, type ApiMethod, type RelpropApi } from '../../shared/api';
import { noteCall } from './lib/activity.svelte';

const CLIENT_KEY = 'relprop-client';

/**
 * Web mode: this tab's name for the service (jobs belong to it; see attach/detach). Kept in
 * sessionStorage, so a reload is the same client and the service can cancel what the page's
 * earlier life left running; another tab is another client.
 */
function clientId(): string {
  try {
    let id = window.sessionStorage.getItem(CLIENT_KEY);
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      id = crypto.randomUUID();
      window.sessionStorage.setItem(CLIENT_KEY, id);
    }
    return id;
  } catch {
    // Storage disabled: a name for this page's life only.
    return crypto.randomUUID();
  }
}

let client: string | null = null;

function headers(): Record<string, string> {
  client ??= clientId();
  return { 'content-type': 'application/json', accept: 'application/json', 'x-relprop-client': client };
}

async function post(method: ApiMethod, request: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`/api/${method}`, {
      method: 'POST',
      headers: headers(),
      body: request === undefined ? '' : JSON.stringify(request),
    });
  } catch {
    throw new ApiError('the relprop server cannot be reached (is `relprop serve` still running?)', 'unavailable');
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`${method}: the server answered HTTP ${res.status} without a JSON body`);
  }
  return unwrapEnvelope(body, method);
}

// Web mode: the same contract over HTTP (`relprop serve`), so components never
// care which transport they run on. Errors arrive as envelopes in both modes
// and are thrown here as ApiError with the service's own message.
const httpApi = Object.fromEntries(API_METHODS.map((m) => [m, (request?: unknown) => post(m, request)])) as unknown as RelpropApi;

/** True in the Electron app (the preload provides the API), false in a browser. */
export function isDesktop(): boolean {
  return window.relprop !== undefined;
}

/** Polls, which say nothing about whether the page is waiting for work. */
const POLLS = new Set<ApiMethod>(['activity', 'attach', 'detach', 'job', 'evaluation', 'version']);

let wrapped: RelpropApi | null = null;

/** The API, each call noted for the activity bar (it polls the service faster while the page waits). */
export function getApi(): RelpropApi {
  if (wrapped) return wrapped;
  const raw = window.relprop ?? httpApi;
  wrapped = Object.fromEntries(
    API_METHODS.map((m) => {
      const fn = raw[m] as (request?: unknown) => Promise<unknown>;
      return [m, (request?: unknown) => (POLLS.has(m) ? fn(request) : noteCall(fn(request)))];
    }),
  ) as unknown as RelpropApi;
  return wrapped;
}

/**
 * The page is going away (closed or reloaded): the service cancels its explanations, which nobody
 * would read. keepalive lets the request outlive the page; the desktop app learns it from the
 * window itself, and a reloaded page's attach() catches any that did not arrive.
 */
export function detachOnLeave(): void {
  if (isDesktop()) return;
  window.addEventListener('pagehide', () => {
    try {
      void fetch('/api/detach', { method: 'POST', headers: headers(), body: '', keepalive: true }).catch(() => undefined);
    } catch {
      // Nothing to do: attach() at the next load covers it.
    }
  });
}
