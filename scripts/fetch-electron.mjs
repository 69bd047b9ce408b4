#!/usr/bin/env node
// Runs from npm's `prepare`. Electron's own postinstall is disabled
// ("allowScripts": {"electron": false}) because its download host is not
// reachable everywhere and a failed download would fail `npm install` for
// people who only want the CLI. So we try the download here, on our terms:
// bounded in time, and never fatal. Whatever happens, this exits 0.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const isSet = (name) => {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
};

// CI machines often have no route to the host and nobody waiting on the app,
// so they get a short try rather than none (some CI does need the binary).
const TIMEOUT_S = Number(process.env.RELPROP_ELECTRON_TIMEOUT_S) || (isSet('CI') ? 20 : 120);

function notice(reason) {
  process.stderr.write(
    `relprop: the Electron binary could not be downloaded (${reason}); ` +
      'the CLI, `relprop serve` and the tests work without it; ' +
      'run `node node_modules/electron/install.js` where its host is reachable to use the desktop app\n',
  );
}

function electronDir() {
  try {
    return dirname(createRequire(join(ROOT, 'package.json')).resolve('electron/package.json'));
  } catch {
    return undefined;
  }
}

// Same test as electron's index.js: path.txt names the executable under dist/.
function binaryPresent(dir) {
  try {
    const exe = readFileSync(join(dir, 'path.txt'), 'utf8').trim();
    return exe !== '' && existsSync(join(dir, 'dist', exe));
  } catch {
    return false;
  }
}

// install.js prints the error's stack; its first line is the useful part
// (e.g. "RequestError: getaddrinfo ENOTFOUND github.com").
function firstErrorLine(text) {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.find((l) => /error/i.test(l)) ?? lines[0];
  if (!line) return undefined;
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

function runInstall(dir) {
  return new Promise((resolve) => {
    let stderr = '';
    let timedOut = false;
    const child = spawn(process.execPath, [join(dir, 'install.js')], {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'pipe'],
      env: process.env,
    });
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_S * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `could not start install.js: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ ok: false, reason: `no answer within ${TIMEOUT_S} s` });
      else if (code === 0) resolve({ ok: true });
      else
        resolve({
          ok: false,
          reason: firstErrorLine(stderr) ?? `install.js exited with ${code ?? signal}`,
        });
    });
  });
}

async function main() {
  if (isSet('RELPROP_SKIP_ELECTRON') || isSet('ELECTRON_SKIP_BINARY_DOWNLOAD')) return;
  const dir = electronDir();
  // Not installed (e.g. --omit=dev): nothing to fetch, and nothing missing.
  if (!dir || !existsSync(join(dir, 'install.js'))) return;
  if (binaryPresent(dir)) return;

  const result = await runInstall(dir);
  if (!result.ok) return notice(result.reason);
  // install.js can exit 0 without installing (e.g. an unsupported platform
  // check it skips), so trust the files, not the exit code.
  if (!binaryPresent(dir)) return notice('install.js finished but no binary is in node_modules/electron/dist');
}

try {
  await main();
} catch (err) {
  notice(err instanceof Error ? err.message : String(err));
}
process.exit(0);
