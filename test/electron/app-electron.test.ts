/**
 * The app's scenarios (helpers/app-scenarios.ts, the same ones app-web.test.ts runs in a browser)
 * in the real Electron window, through playwright-core's Electron launcher: `npm run test:electron`.
 *
 * Skipped, with the reason printed, where the Electron binary is absent: its download host is not
 * reachable everywhere (npm install does not fail for it), and this machine has none.
 */
import { describe, beforeAll, afterAll } from 'vitest';
import { existsSync, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { _electron as electron, type ElectronApplication, type Page } from 'playwright-core';
import { ROOT } from '../helpers/cli.js';
import { appScenarios } from '../helpers/app-scenarios.js';
import { imageTask } from '../../src/core/tasks/image-task.js';

/** The binary's path, or why there is none. */
function electronBinary(): { path: string } | { missing: string } {
  try {
    // The electron package's main export is the path of its binary; it throws when the download never happened.
    const p = createRequire(import.meta.url)('electron') as unknown;
    if (typeof p !== 'string') return { missing: 'the electron package did not give a binary path' };
    return existsSync(p) ? { path: p } : { missing: `${p} does not exist` };
  } catch (err) {
    return { missing: (err as Error).message.split('\n')[0]! };
  }
}

const binary = electronBinary();
const MAIN = path.join(ROOT, 'out', 'main', 'index.js');
const reason = 'missing' in binary ? `the Electron binary is not installed (${binary.missing}); run \`node node_modules/electron/install.js\` where its download host is reachable` : !existsSync(MAIN) ? `${MAIN} is missing: run \`npm run build:app\`` : null;
if (reason) console.warn(`app-electron.test.ts: skipped, ${reason}. The same scenarios run in a browser in test/app-web.test.ts.`);

let app: ElectronApplication;
let page: Page;
let tmp: string;
let downloads: string;
let taskImage: string;
const problems: string[] = [];

describe.skipIf(reason !== null)('the desktop app (Electron)', () => {
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-electron-'));
    downloads = path.join(tmp, 'downloads');
    await fs.mkdir(downloads);
    const sample = imageTask(7_000_001, { variant: 'single', patchSize: 8 }).sample(2_000_003);
    taskImage = path.join(tmp, `task-${sample.labelName}.png`);
    await sharp(Buffer.from(sample.rgb), { raw: { width: sample.width, height: sample.height, channels: 3 } }).png().toFile(taskImage);
    app = await electron.launch({
      executablePath: (binary as { path: string }).path,
      args: [MAIN, ...(process.env['CI'] ? ['--no-sandbox'] : [])],
      env: { ...process.env, RELPROP_SETTINGS: path.join(tmp, 'settings.json') } as Record<string, string>,
    });
    // Downloads would open a save dialog nobody can answer: save them into the test's folder instead.
    await app.evaluate(({ session }, dir) => {
      session.defaultSession.on('will-download', (_event, item) => item.setSavePath(`${dir}/${item.getFilename()}`));
    }, downloads);
    page = await app.firstWindow();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.waitForLoadState('domcontentloaded');
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  appScenarios({
    page: () => page,
    tmp: () => tmp,
    taskImage: () => taskImage,
    async download(trigger) {
      const before = new Set(await fs.readdir(downloads));
      await trigger();
      for (let waited = 0; waited < 120_000; waited += 100) {
        const fresh = (await fs.readdir(downloads)).filter((f) => !before.has(f) && !f.endsWith('.crdownload'));
        if (fresh.length) return { name: fresh[0]!, file: path.join(downloads, fresh[0]!) };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no download arrived in 120 s');
    },
    shot: (name) => page.screenshot({ path: path.join(process.env['RELPROP_SHOTS'] ?? os.tmpdir(), `relprop-electron-${name}.png`) }).then(() => undefined),
    consoleProblems: () => problems,
  });
});
