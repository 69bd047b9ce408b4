/** `relprop serve`: the desktop app's interface in a browser, on 127.0.0.1, for machines without Electron. */
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_CHOICES } from '../core/backend.js';
import { UsageError } from '../core/errors.js';
import { createApiHandler } from '../main/dispatch.js';
import { startHttpServer } from '../main/http-server.js';
import { RelpropService } from '../main/service.js';
import { integer } from './options.js';

interface ServeFlags {
  port?: number;
  backend?: string;
}

/** The package's own folder (models/ and out/renderer live there), wherever the command runs from. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

async function run(flags: ServeFlags): Promise<void> {
  if (flags.port !== undefined && flags.port > 65535) throw new UsageError(`--port must be at most 65535, got ${flags.port}`);
  const root = packageRoot();
  const rendererDir = path.join(root, 'out', 'renderer');
  if (!existsSync(path.join(rendererDir, 'index.html'))) {
    throw new UsageError(`the app's interface is not built (${path.join(rendererDir, 'index.html')} is missing); run \`npm run build:app\` in ${root} first`);
  }
  // The worker thread inherits the environment, and picks its backend from it.
  if (flags.backend) process.env['RELPROP_BACKEND'] = flags.backend;
  const log = (m: string) => process.stderr.write(`relprop: ${m}\n`);
  const service = new RelpropService({ packageRoot: root, log });
  const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? '';
  const handler = createApiHandler(service, { version: () => ({ app: version, electron: '', node: process.versions.node }) }, log);
  const server = await startHttpServer({ rendererDir, handler, port: flags.port ?? 0 });
  // Start the compute worker now, so the first click does not wait for TensorFlow.js to load.
  service.listMethods().catch((err: Error) => log(`the compute worker did not start: ${err.message}`));
  process.stdout.write(`relprop: serving the app at ${server.url} (127.0.0.1 only; Ctrl-C to stop)\n`);
  process.stdout.write(`relprop: the token in that URL is new at every start and is what lets a page use the app; do not share it\n`);
  process.stdout.write(`relprop: settings (added models) in ${service.settingsFile}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await service.close();
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Serve the app in a browser at http://127.0.0.1:PORT/ (the same interface and API as the desktop app; needs `npm run build:app` once)')
    .option('--port <n>', 'port to listen on (default: a free one)', integer('--port', 0))
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: ServeFlags) => run(flags));
}
