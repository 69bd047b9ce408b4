import { API_METHODS, ApiError, unwrapEnvelope, type ApiMethod, type RelpropApi } from '../../shared/api';

async function post(method: ApiMethod, request: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`/api/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
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

export function getApi(): RelpropApi {
  return window.relprop ?? httpApi;
}
