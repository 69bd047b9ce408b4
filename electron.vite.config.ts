import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'electron-vite';
import type { Plugin } from 'vite';
import { contentSecurityPolicy, META_CONTENT_SECURITY_POLICY, withoutFrameAncestors } from './src/shared/csp';

const CSP_META = /(<meta\s+http-equiv="Content-Security-Policy"\s+content=")([^"]*)("\s*\/?>)/i;

// Production: fail the build if index.html's <meta> CSP has drifted from the
// one main sends as a header (web mode will serve the page without main).
// Dev: the page comes from Vite's server, whose HMR WebSocket the production
// policy would block, so the meta is widened to that one origin.
function cspMeta(): Plugin {
  return {
    name: 'relprop:csp-meta',
    transformIndexHtml: {
      order: 'pre',
      handler(html, ctx) {
        const match = CSP_META.exec(html);
        if (!match) throw new Error('relprop: index.html has no Content-Security-Policy <meta> tag');
        if (!ctx.server) {
          if (match[2] !== META_CONTENT_SECURITY_POLICY) {
            throw new Error(
              'relprop: the CSP <meta> in index.html differs from src/shared/csp.ts\n' +
                `  index.html: ${match[2]}\n  csp.ts:     ${META_CONTENT_SECURITY_POLICY}`,
            );
          }
          return html;
        }
        const devUrl = process.env['ELECTRON_RENDERER_URL'] ?? ctx.server.resolvedUrls?.local[0];
        return html.replace(CSP_META, (_m, head: string, _old: string, tail: string) =>
          `${head}${withoutFrameAncestors(contentSecurityPolicy(devUrl))}${tail}`,
        );
      },
    },
  };
}

export default defineConfig({
  // ESM (package.json has "type": "module"), node_modules dependencies left
  // external -> out/main/index.js. The compute worker is a second entry because
  // the service starts it by file path (out/main/worker.js), not by import.
  main: {
    build: {
      rolldownOptions: {
        input: { index: 'src/main/index.ts', worker: 'src/main/worker.ts', 'eval-worker': 'src/main/eval-worker.ts' },
      },
    },
  },
  preload: {
    build: {
      // A sandboxed preload can require('electron') and nothing else: no ESM
      // imports and no node_modules. So emit one self-contained CommonJS file
      // (index.cjs, as the package is "type": "module") with every dependency
      // bundled in.
      externalizeDeps: false,
      rolldownOptions: {
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    // Defaults: root src/renderer, input src/renderer/index.html -> out/renderer.
    plugins: [svelte({ configFile: false }), cspMeta()],
  },
});
