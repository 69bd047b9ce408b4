/**
 * The PyTorch reference (bench/torch_reference.py), run from `npm run bench` when a python3 with
 * torch is found: `--python` or RELPROP_PYTHON, else `python3` on the PATH, else Debian's
 * /usr/bin/python3 (where `apt-get install python3-torch` puts torch when the PATH's python3 is
 * another one, e.g. pyenv's).
 */
import { spawnSync, spawn } from 'node:child_process';

export interface TorchTiming {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
  readonly samples: number[];
}

export interface TorchBlas {
  readonly matmul: string;
  readonly gflops: number;
  readonly libraries: string[];
  readonly openblas: boolean;
  readonly reference_like: boolean;
}

/** A multi-pass method batched into one pass (the small shapes only): its timing and how many passes it batches. */
export type TorchMethodTiming = TorchTiming & { readonly passes: number };

export type TorchModels = Record<
  string,
  {
    shape: string;
    params: number;
    forward_ms: TorchTiming;
    forward_backward_ms: TorchTiming;
    /** The shipped shapes: integrated-gradients, smoothgrad and occlusion run as relprop runs them. */
    methods_ms?: Record<string, TorchMethodTiming>;
  }
>;

export interface TorchReference {
  /** The interpreter that ran the script (set by the bench). */
  readonly interpreter?: string;
  /** Its Python version. */
  readonly python: string;
  readonly torch: string;
  /** The reference thread count (the first of --threads); `models` and `blas` are its. */
  readonly threads: number;
  readonly runs: number;
  readonly blas: TorchBlas;
  readonly models: TorchModels;
  /** Every thread count timed (2, then 1 by default). */
  readonly by_threads?: Record<string, { threads: number; blas: TorchBlas; models: TorchModels }>;
  /** Models on which the reference thread count was slower than fewer threads: the cores were busy. */
  readonly contended?: string[];
  /** The 1-minute load average before and after the script ran (another process competing for the 2 cores shows here). */
  readonly load?: { before: number; after: number };
}

/** The first candidate interpreter that imports torch, or null. */
export function findTorchPython(explicit?: string): string | null {
  const candidates = explicit ? [explicit] : [process.env['RELPROP_PYTHON'], 'python3', '/usr/bin/python3'].filter((x): x is string => !!x);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return null;
}

/** Run the reference script; its stderr (progress, BLAS warnings) passes through. */
export function runTorchReference(python: string, script: string, args: readonly string[]): Promise<TorchReference> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${python} ${script} exited with ${code}`));
      try {
        resolve(JSON.parse(out) as TorchReference);
      } catch (err) {
        reject(new Error(`${script} printed no JSON: ${(err as Error).message}`));
      }
    });
  });
}
