import type { RelpropApi, VersionInfo } from '../../shared/api';

function isVersionInfo(value: unknown): value is VersionInfo {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['app'] === 'string' && typeof v['electron'] === 'string' && typeof v['node'] === 'string';
}

async function getJson(path: string): Promise<unknown> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET ${path} failed: HTTP ${res.status}`);
  return res.json();
}

// Web mode: the same contract over HTTP, so components never care which
// transport they are running on. Responses are checked because, unlike the
// preload, the server is a separate program that can drift.
const httpApi: RelpropApi = {
  async version() {
    const body = await getJson('/api/version');
    if (!isVersionInfo(body)) throw new Error('GET /api/version returned an unexpected body');
    return body;
  },
};

export function getApi(): RelpropApi {
  return window.relprop ?? httpApi;
}
