/**
 * Compute-backend selection, in one place.
 *
 * Order in Node: native TensorFlow (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`) when
 * installed — they are optional because their install downloads libtensorflow, which fails on
 * machines without that host — then wasm (the default here), then the pure-JS cpu backend.
 * `RELPROP_BACKEND` or an explicit name (the CLI's `--backend`) overrides the order.
 */
import { tf } from './tf.js';
import { UsageError } from './errors.js';
import { installWasmKernels } from './wasm-kernels.js';
import { startParallelMatmul, wantedThreads } from './parallel.js';
import { installOrtProducts } from './ort-products.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu', 'webgl', 'webgpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

let ready: Promise<string> | null = null;
let readyFor: BackendChoice | null = null;

async function tryImport(specifier: string): Promise<boolean> {
  try {
    // A variable specifier keeps bundlers and tsc from resolving optional packages that may be absent.
    await import(/* @vite-ignore */ specifier);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: string): Promise<boolean> {
  try {
    if (!tf.findBackendFactory(name)) return false;
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    // O(output) Slice/SplitV/Unpack in place of the stock ones, which copy their whole input each call.
    if (ok && name === 'wasm') {
      installWasmKernels();
      // Products on ONNX Runtime's kernels when onnxruntime-node is installed (ort-products.ts);
      // otherwise the second thread below.
      installOrtProducts(wantedThreads());
      // A second thread for the large products (parallel.ts) starts on the first one by default;
      // asked for explicitly (RELPROP_THREADS=2), it is ready before the first.
      if (typeof process !== 'undefined' && Number(process.env['RELPROP_THREADS'] ?? 1) >= 2) await startParallelMatmul();
    }
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function select(choice: BackendChoice): Promise<string> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  const attempts: Array<[string, () => Promise<boolean>]> = [];
  const native = async () =>
    isNode && ((await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node')));
  const wasm = () => tryImport('@tensorflow/tfjs-backend-wasm');
  switch (choice) {
    case 'auto':
      attempts.push(['tensorflow', native], ['wasm', wasm], ['cpu', async () => true]);
      break;
    case 'tensorflow':
      attempts.push(['tensorflow', native]);
      break;
    case 'wasm':
      attempts.push(['wasm', wasm]);
      break;
    case 'webgpu':
      attempts.push(['webgpu', () => tryImport('@tensorflow/tfjs-backend-webgpu')]);
      break;
    default:
      attempts.push([choice, async () => true]);
  }
  for (const [name, load] of attempts) {
    if ((await load()) && (await activate(name))) return name;
  }
  throw new UsageError(
    `backend '${choice}' is not available here` +
      (choice === 'tensorflow' ? ' (install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu)' : ''),
  );
}

function parseChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  const alias: Record<string, BackendChoice> = { node: 'tensorflow', 'tfjs-node': 'tensorflow', '': 'auto' };
  const choice = (alias[v] ?? v) as BackendChoice;
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UsageError(`unknown backend '${value}' (choose one of ${BACKEND_CHOICES.join(', ')})`);
  }
  return choice;
}

/**
 * Make sure a backend is active and return its name. Called by every public entry point, so library
 * users never have to. The first choice wins for the life of the process unless another is named.
 */
export function ensureBackend(requested?: string): Promise<string> {
  const env = typeof process !== 'undefined' ? process.env['RELPROP_BACKEND'] : undefined;
  const choice = parseChoice(requested ?? env);
  if (ready && (readyFor === choice || (requested === undefined && env === undefined))) return ready;
  readyFor = choice;
  ready = select(choice);
  ready.catch(() => {
    ready = null;
    readyFor = null;
  });
  return ready;
}
