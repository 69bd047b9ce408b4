// One source for the renderer's Content-Security-Policy: main sends it as a
// response header, and the build checks that the <meta> tag in index.html says
// the same (see META_CONTENT_SECURITY_POLICY), so they cannot drift apart.

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The policy as index.html's <meta> tag carries it: the same, less
 * `frame-ancestors`, which browsers ignore in a <meta> and warn about in the
 * console on every load (burying real CSP violations); only a header can
 * enforce it.
 */
export const META_CONTENT_SECURITY_POLICY = withoutFrameAncestors(CONTENT_SECURITY_POLICY);

export function withoutFrameAncestors(policy: string): string {
  return policy
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '' && !d.startsWith('frame-ancestors'))
    .join('; ');
}

/**
 * The policy for a page served by the Vite dev server at `devServerUrl`
 * (or the production policy when there is none). Vite's HMR client talks to
 * the server over a WebSocket, which `connect-src 'self'` does not reliably
 * cover, so the dev origin is named explicitly, and only in dev.
 */
export function contentSecurityPolicy(devServerUrl?: string): string {
  if (!devServerUrl) return CONTENT_SECURITY_POLICY;
  const dev = new URL(devServerUrl);
  const ws = `${dev.protocol === 'https:' ? 'wss:' : 'ws:'}//${dev.host}`;
  return CONTENT_SECURITY_POLICY.replace("script-src 'self'", `script-src 'self' ${dev.origin}`).replace(
    "connect-src 'self'",
    `connect-src 'self' ${dev.origin} ${ws}`,
  );
}
