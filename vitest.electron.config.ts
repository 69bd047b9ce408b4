import { defineConfig } from 'vitest/config';

// `npm run test:electron`: the app's scenarios in the Electron window (skipped, saying why, without the binary).
export default defineConfig({
  test: {
    include: ['test/electron/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
