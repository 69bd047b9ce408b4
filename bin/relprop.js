#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm install` (the `prepare` script). If that step was skipped,
// say how to fix it rather than failing with a module-not-found trace.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const entry = path.join(root, 'dist', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(`relprop: ${entry} is missing; run \`npm run build:node\` (or \`npm install\`) in ${root} first.`);
  process.exit(1);
}
// Whatever escapes the commands (an error in a callback, a rejected promise nobody awaited) is still
// one line on the terminal; RELPROP_DEBUG=1 shows the stack.
const last = (err) => {
  const debug = process.env.RELPROP_DEBUG === '1';
  const msg = err instanceof Error ? (debug ? err.stack ?? err.message : err.message) : String(err);
  process.stderr.write(`relprop: unexpected error: ${debug ? msg : msg.split('\n')[0]}\n`);
  process.exit(1);
};
process.on('uncaughtException', last);
process.on('unhandledRejection', last);
let main;
try {
  ({ main } = await import(pathToFileURL(entry).href));
} catch (err) {
  last(err);
}
process.exitCode = await main(process.argv);
