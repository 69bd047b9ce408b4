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
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv);
