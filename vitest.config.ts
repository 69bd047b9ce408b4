import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The Electron run is its own command (npm run test:electron, vitest.electron.config.ts).
    exclude: ['test/electron/**', '**/node_modules/**'],
    // tfjs-wasm is single-threaded per process; two forks use both cores.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
