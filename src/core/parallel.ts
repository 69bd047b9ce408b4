/**
 * A second thread for the large 2-D products, in Node on wasm when ONNX Runtime does not take them
 * (ort-products.ts): on by default where the machine has a second core (RELPROP_THREADS=1 turns it
 * off; startParallelMatmul() starts it at once). The worker starts on the first product large
 * enough to split, so small models never pay for it. tfjs-wasm is single-threaded in Node, so the
 * worker runs its own tfjs-wasm instance, and a product above a size threshold is split in two:
 * this thread computes one half while the worker computes the other, and the call stays synchronous
 * (the operands go through a SharedArrayBuffer, the wait is Atomics.wait).
 *
 * Nothing stays resident in the worker: each split ships the worker's half of the operands through
 * the shared buffer (a few milliseconds against tens for the product), so memory does not grow by a
 * copy of the weights, and the forward pass's x·W splits as well as the products made on the fly
 * (W⁺, W⁻, |W| in the relevance rules, the weight as the left operand of dy·Wᵀ = (W·dyᵀ)ᵀ).
 *
 * The split is by rows of the left operand or columns of the right one, so every output element is
 * computed exactly as the single-threaded product computes it: results are bit for bit the same.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { tf, type Tensor2D } from './tf.js';
import { ortActive } from './ort-products.js';

/** Products below this many multiply-adds stay on one thread (the split costs ~1 ms of copies). */
const MIN_MACS = 40e6;
/** Shared buffer for one job: both operands' parts and the worker's result, in floats. */
const CAPACITY = 8 * 2 ** 20;
const HEADER = 16;
/** How long a product waits for the worker's share before computing it itself. */
const WORKER_TIMEOUT_MS = 30_000;

interface HeapBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
}

let pool: { worker: Worker; ctrl: Int32Array; data: Float32Array } | null = null;
let starting: Promise<boolean> | null = null;
/** Set by stopParallelMatmul: no lazy restart after an explicit stop (until startParallelMatmul). */
let stopped = false;
/** A worker started but not yet ready (its tfjs-wasm instance takes ~0.2 s to load). */
let booting: { worker: Worker; ctrl: Int32Array; data: Float32Array } | null = null;

/**
 * Threads for products: RELPROP_THREADS when set (1 turns the second thread off), else 2 where the
 * machine has a second core. More than two are not used: the split is in halves.
 */
export function wantedThreads(): number {
  const env = typeof process !== 'undefined' ? process.env['RELPROP_THREADS'] : undefined;
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env);
    return Number.isFinite(n) && n >= 1 ? Math.floor(n) : 1;
  }
  try {
    return Math.min(2, availableParallelism());
  } catch {
    return 1;
  }
}
/** Products split so far, and large products left on one thread because splitting was not paying. */
export const parallelStats = { split: 0, single: 0 };

/**
 * Whether splitting pays, measured as it goes: the worker helps only when a core is idle for it (on
 * a machine shared with other work it can be slower than one thread). Per kind of split, the time
 * per multiply-add of split and of one-thread products is averaged; each large product takes the
 * faster way, and every PROBE-th takes the other, to keep both estimates current.
 */
const PROBE = 32;
type Estimate = { split: number; single: number; calls: number };
const judge: Record<'rows' | 'columns', Estimate> = { rows: { split: NaN, single: NaN, calls: 0 }, columns: { split: NaN, single: NaN, calls: 0 } };

function decide(e: Estimate): boolean {
  e.calls++;
  if (Number.isNaN(e.split)) return true;
  if (Number.isNaN(e.single)) return false;
  const better = e.split < e.single;
  return e.calls % PROBE === 0 ? !better : better;
}

function learn(e: Estimate, split: boolean, ms: number, macs: number): void {
  const perMac = ms / macs;
  const key = split ? 'split' : 'single';
  e[key] = Number.isNaN(e[key]) ? perMac : 0.7 * e[key] + 0.3 * perMac;
}

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const core = await import(workerData.core);
  const tf = core.setBackend ? core : core.default;
  await import(workerData.wasm);
  await tf.setBackend('wasm');
  await tf.ready();
  const ctrl = new Int32Array(workerData.sab, 0, ${HEADER});
  const data = new Float32Array(workerData.sab, ${HEADER * 4});
  // Readiness goes through shared memory too: the main thread may be busy in one long synchronous
  // explanation and never get back to its event loop to read this message.
  Atomics.store(ctrl, ${HEADER - 1}, 1);
  parentPort.postMessage('ready');
  for (;;) {
    // 0 idle, 1 job posted, 2 done, 3 failed, 9 stop.
    let state = Atomics.load(ctrl, 0);
    while (state !== 1 && state !== 9) {
      Atomics.wait(ctrl, 0, state);
      state = Atomics.load(ctrl, 0);
    }
    if (state === 9) break;
    try {
      const [, m, k, n, offA, offB, offOut] = ctrl;
      const a = tf.tensor2d(data.subarray(offA, offA + m * k), [m, k]);
      const b = tf.tensor2d(data.subarray(offB, offB + k * n), [k, n]);
      const y = tf.matMul(a, b);
      data.set(y.dataSync(), offOut);
      tf.dispose([a, b, y]);
      Atomics.store(ctrl, 0, 2);
    } catch (e) {
      Atomics.store(ctrl, 0, 3);
    }
    Atomics.notify(ctrl, 0);
  }
})();
`;

/**
 * Start the worker (once); resolves to whether products will be split. Only in Node, only on wasm.
 */
export function startParallelMatmul(): Promise<boolean> {
  stopped = false;
  if (starting) return starting;
  starting = (async () => {
    if (typeof process === 'undefined' || !process.versions?.node || tf.getBackend() !== 'wasm') return false;
    try {
      const require = createRequire(import.meta.url);
      const resolve = (name: string) => pathToFileURL(require.resolve(name)).href;
      const sab = new SharedArrayBuffer(HEADER * 4 + CAPACITY * 4);
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { sab, core: resolve('@tensorflow/tfjs-core'), wasm: resolve('@tensorflow/tfjs-backend-wasm') },
      });
      worker.unref();
      const candidate = { worker, ctrl: new Int32Array(sab, 0, HEADER), data: new Float32Array(sab, HEADER * 4) };
      booting = candidate;
      // A worker that dies later is dropped; products then run on this thread (see collect).
      const drop = () => {
        if (pool?.worker === worker) pool = null;
        if (booting?.worker === worker) booting = null;
      };
      worker.on('exit', drop);
      await new Promise<void>((ok, fail) => {
        worker.once('message', () => ok());
        worker.once('error', fail);
      });
      worker.on('error', drop);
      if (booting === candidate) promote();
      return pool === candidate;
    } catch {
      booting = null;
      return false;
    }
  })();
  return starting;
}

/** The booting worker becomes the pool once it has said, in shared memory, that it is ready. */
function promote(): void {
  if (booting && Atomics.load(booting.ctrl, HEADER - 1) === 1) {
    pool = booting;
    booting = null;
  }
}

/**
 * Stop the worker; later products run on one thread, or, with `lazy`, start a new one on the next
 * large product as after loading.
 */
export async function stopParallelMatmul(options: { lazy?: boolean } = {}): Promise<void> {
  const p = pool ?? booting;
  pool = null;
  booting = null;
  starting = null;
  stopped = !options.lazy;
  if (!p) return;
  Atomics.store(p.ctrl, 0, 9);
  Atomics.notify(p.ctrl, 0);
  await p.worker.terminate();
}

export function parallelMatmulActive(): boolean {
  return pool !== null && tf.getBackend() === 'wasm';
}

/** A float32 view of a tensor's data in the wasm heap (valid until the next allocation). */
function heapView(t: tf.Tensor, from: number, length: number): Float32Array {
  const backend = tf.backend() as unknown as HeapBackend;
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  return new Float32Array(backend.wasm.HEAPU8.buffer, offset + from * 4, length);
}

/**
 * a·b for 2-D float32 operands, split across the two threads when it is large enough and the worker
 * is running; otherwise tf.matMul. `split`: 'rows' splits a's rows (for a large left operand, e.g. a
 * weight times a few columns), 'columns' splits b's columns (for a large right operand).
 */
export function matMulSplit(a: Tensor2D, b: Tensor2D, split: 'rows' | 'columns'): Tensor2D {
  const [m, k] = a.shape;
  const n = b.shape[1];
  // ONNX Runtime's products (ort-products.ts) use both cores themselves.
  if (ortActive()) return tf.matMul(a, b);
  if (!pool && m * k * n >= MIN_MACS) {
    // Started on the first large product; this one and those until the worker is ready run here.
    if (!starting && !stopped && tf.getBackend() === 'wasm' && wantedThreads() >= 2) void startParallelMatmul();
    promote();
  }
  const p = pool;
  if (!p || m * k * n < MIN_MACS || a.dtype !== 'float32' || b.dtype !== 'float32' || tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  const estimate = judge[split];
  const macs = m * k * n;
  const t0 = performance.now();
  if (!decide(estimate)) {
    parallelStats.single++;
    const y = tf.matMul(a, b) as Tensor2D;
    learn(estimate, false, performance.now() - t0, macs);
    return y;
  }
  const y = splitProduct(p, a, b, split);
  learn(estimate, true, performance.now() - t0, macs);
  return y;
}

function splitProduct(p: NonNullable<typeof pool>, a: Tensor2D, b: Tensor2D, split: 'rows' | 'columns'): Tensor2D {
  const [m, k] = a.shape;
  const n = b.shape[1];
  return tf.tidy(() => {
    // The worker takes the second half; it pays for the copies, so it gets a little less.
    if (split === 'rows') {
      const mine = Math.ceil(m * 0.52);
      const theirs = m - mine;
      const need = theirs * k + k * n + theirs * n;
      if (theirs < 1 || need > CAPACITY) return tf.matMul(a, b);
      const offA = 0;
      const offB = theirs * k;
      const offOut = offB + k * n;
      p.data.set(heapView(a, mine * k, theirs * k), offA);
      p.data.set(heapView(b, 0, k * n), offB);
      post(p, theirs, k, n, offA, offB, offOut);
      const top = tf.matMul(tf.slice(a, [0, 0], [mine, k]), b);
      const bottom = collect(p, [theirs, n], offOut) ?? tf.matMul(tf.slice(a, [mine, 0], [theirs, k]), b);
      return tf.concat([top, bottom], 0) as Tensor2D;
    }
    const mine = Math.ceil(n * 0.52);
    const theirs = n - mine;
    const need = m * k + k * theirs + m * theirs;
    if (theirs < 1 || need > CAPACITY) return tf.matMul(a, b);
    const offA = 0;
    const offB = m * k;
    const offOut = offB + k * theirs;
    p.data.set(heapView(a, 0, m * k), offA);
    // b's right columns, row by row.
    const bv = heapView(b, 0, k * n);
    for (let r = 0; r < k; r++) p.data.set(bv.subarray(r * n + mine, (r + 1) * n), offB + r * theirs);
    post(p, m, k, theirs, offA, offB, offOut);
    const left = tf.matMul(a, tf.slice(b, [0, 0], [k, mine]));
    const right = collect(p, [m, theirs], offOut) ?? tf.matMul(a, tf.slice(b, [0, mine], [k, theirs]));
    return tf.concat([left, right], 1) as Tensor2D;
  });
}

function post(p: NonNullable<typeof pool>, m: number, k: number, n: number, offA: number, offB: number, offOut: number): void {
  parallelStats.split++;
  // The job's fields first, then the flag the worker waits on.
  p.ctrl.set([m, k, n, offA, offB, offOut], 1);
  Atomics.store(p.ctrl, 0, 1);
  Atomics.notify(p.ctrl, 0);
}

/**
 * The worker's share, or null if it failed or has not answered within WORKER_TIMEOUT_MS (then the
 * worker is dropped for good and the caller computes the share itself: a product never fails
 * because of the second thread).
 */
function collect(p: NonNullable<typeof pool>, shape: [number, number], offOut: number): Tensor2D | null {
  const deadline = performance.now() + WORKER_TIMEOUT_MS;
  while (Atomics.load(p.ctrl, 0) === 1 && performance.now() < deadline) Atomics.wait(p.ctrl, 0, 1, 1000);
  const state = Atomics.load(p.ctrl, 0);
  if (state !== 2) {
    if (pool === p) {
      pool = null;
      starting = null;
      stopped = true; // not restarted lazily: a worker that hung once may hang again
      void p.worker.terminate();
    }
    return null;
  }
  Atomics.store(p.ctrl, 0, 0);
  return tf.tensor2d(p.data.subarray(offOut, offOut + shape[0] * shape[1]), shape);
}
