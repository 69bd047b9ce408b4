/**
 * ONNX Runtime's CPU kernels (MLAS) under tfjs-wasm, when `onnxruntime-node` is installed (an
 * optional dependency: its npm package carries the Linux, macOS and Windows binaries): matrix
 * products, the transcendental elementwise kernels, and whole passes traced by engine/trace.ts (onnx/run.ts).
 *
 * Why: every explanation here is dominated by 2-D products (ViT-B/16 transformer attribution: 85 % of
 * its time), and tfjs-wasm's single-threaded XNNPACK build does ~19 GFLOP/s on this machine where
 * MLAS does ~85 per core and ~150 on two — the same BLAS class as PyTorch's OpenBLAS. tfjs-wasm's
 * Erf, Exp and Tanh are scalar libm loops (6–30 ns an element against MLAS's ~1). The rest of an
 * explanation (relevance rules, LayerNorm, normalisers) stays on tfjs-wasm, so results, tensors and
 * memory accounting are tfjs's as before; on small models whole passes go to one graph instead.
 *
 * How: tfjs-wasm's BatchMatMul kernel is replaced by one that hands float32 products to a small ONNX
 * graph (`MatMul` with symbolic dimensions, a `Transpose` in front of a flagged operand; built with
 * onnx/proto.ts, no file), and Erf, Exp and Tanh by one-node graphs, reading operands straight from
 * the wasm heap and writing the result into the output tensor's heap slot. The native session's
 * `run` is synchronous, so tfjs's synchronous ops stay synchronous. Anything else (int32,
 * broadcasting batches) goes to the stock kernel.
 *
 * Off with RELPROP_ORT=0, or setProductEngine('wasm'); Node only (the renderer keeps its backend).
 */
import { createRequire } from 'node:module';
import { tf } from './tf.js';
import { CancelledError } from './errors.js';
import { GraphBuilder } from './onnx/proto.js';

/**
 * ONNX Runtime (1.30 on Linux and macOS) starts Microsoft's 1DS telemetry when its environment is
 * created: it writes a device id and an event database under ~/.cache/Microsoft/DeveloperTools/
 * (or $XDG_CACHE_HOME) and uploads events. The 1DS SDK also reads /proc/self/cmdline and matches it
 * with std::regex "(.*)[ ]*.*[\n]*" to name the app; libstdc++'s regex executor recurses once per
 * character, so a command line of ~29 KB (a long `--text`) overflows the 8 MB main stack: SIGSEGV
 * inside initOrt. ORT_DISABLE_TELEMETRY=1, read from the C environment when the environment is
 * created, skips all of it. Setting process.env on the main thread calls setenv(), so it reaches
 * native code, and worker threads started later share that C environment; hence this runs when the
 * module is first imported (the app's main process imports it too), before any binding loads.
 * RELPROP_ORT_TELEMETRY=1 leaves ONNX Runtime's own setting alone.
 */
export function disableOrtTelemetry(): void {
  if (typeof process === 'undefined' || !process.versions?.node || !process.env) return;
  if (process.env['RELPROP_ORT_TELEMETRY'] === '1') return;
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
}
disableOrtTelemetry();

interface OrtTensorCtor {
  new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]): unknown;
}
interface NativeSession {
  dispose?(): void;
  loadModel(buffer: ArrayBuffer, offset: number, length: number, options: Record<string, unknown>): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, { dims: number[]; cpuData: Float32Array }>;
}
interface Engine {
  Tensor: OrtTensorCtor;
  /**
   * The session for a product: per transpose flags, single-threaded for small products (a thread
   * pool's wake-up costs more than it saves there) or with the machine's threads. Made on first use.
   */
  session(transposeA: boolean, transposeB: boolean, threaded: boolean): NativeSession;
  /** The single-threaded session of a one-input elementwise op (Erf, Exp, Tanh). */
  unary(op: UnaryOp): NativeSession;
  /** A session of any model, with the machine's threads. */
  make(model: Uint8Array): NativeSession;
  threads: number;
  version: string;
}
interface HeapBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData?(dataId: object): boolean;
}

/**
 * Elementwise kernels taken over as well: tfjs-wasm computes them with scalar libm calls (Erf ~6–30
 * ns an element, Exp ~11, Tanh ~20) where MLAS's vectorised ones take ~1 ns. GELU's Erf (and, in a
 * hand-written backward, its Exp) ran on every MLP activation of every pass.
 */
const UNARY_OPS = ['Erf', 'Exp', 'Tanh'] as const;
type UnaryOp = (typeof UNARY_OPS)[number];

/** Products with fewer multiply-adds per row (k·n) than this stay on tfjs-wasm. */
const MIN_KN = 8192;
/** Products below this many multiply-adds go to the single-threaded session. */
const THREADED_MACS = 2e6;

let engine: Engine | null | undefined;
/** The thread count backend.ts asked for, kept for a later setProductEngine('onnxruntime'). */
let requestedThreads = 2;
let enabled = true;
let stock: tf.KernelConfig | undefined;
export const ortStats = { products: 0, elementwise: 0, graphs: 0 };
let guard: Int32Array | null = null;

/** Slots of the guard shared with the thread that may stop this one. */
export const GUARD = {
  /** A request id to stop (products of that request throw CancelledError), or −1 for all; 0 none. */
  stop: 0,
  /** 1 while this thread is inside ONNX Runtime. */
  inside: 1,
  /** The request this thread is working on. */
  current: 2,
  length: 3,
} as const;

/**
 * Share a guard with the thread that may stop this one (the app's compute worker). ONNX Runtime's
 * binding aborts the whole process when a worker thread is terminated in the middle of a run, so a
 * stop goes through the guard: products of the request named in `stop` throw CancelledError before
 * entering ONNX Runtime — a method stops within one product — and the stopping thread waits for
 * `inside` to be 0 before it terminates this one (see waitOutsideOrt).
 */
export function setProductGuard(shared: Int32Array | null): void {
  guard = shared;
}

/**
 * For the stopping thread: ask the worker with this guard to stop everything, and resolve once it is
 * outside ONNX Runtime (it cannot enter again), so terminating it is safe. Gives up after `timeoutMs`.
 */
export async function stopOutsideOrt(shared: Int32Array, timeoutMs = 5000): Promise<void> {
  Atomics.store(shared, GUARD.stop, -1);
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(shared, GUARD.inside) !== 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 2));
}

/**
 * y = MatMul(a, b) on [B, ·, ·] operands (a 2-D product goes as B = 1); with `transposeA` /
 * `transposeB` the operand is given with its last two axes swapped (a Transpose node in front).
 */
function matMulModel(transposeA: boolean, transposeB: boolean): Uint8Array {
  const g = new GraphBuilder('relprop_matmul');
  const a = g.input('a', 'float', ['B', ...(transposeA ? ['K', 'M'] : ['M', 'K'])]);
  const b = g.input('b', 'float', ['B', ...(transposeB ? ['N', 'K'] : ['K', 'N'])]);
  const swap = (x: string) => g.op('Transpose', [x], { perm: [0, 2, 1] });
  g.node('MatMul', [transposeA ? swap(a) : a, transposeB ? swap(b) : b], {}, ['y']);
  g.output('y', 'float', ['B', 'M', 'N']);
  // Opset 13: MatMul has not changed since.
  return g.model(13);
}

/** y = op(x) on a flat float tensor of symbolic length. */
function unaryModel(op: UnaryOp): Uint8Array {
  const g = new GraphBuilder(`relprop_${op.toLowerCase()}`);
  g.node(op, [g.input('x', 'float', ['N'])], {}, ['y']);
  g.output('y', 'float', ['N']);
  return g.model(13);
}

function load(threads: number): Engine | null {
  if (typeof process === 'undefined' || !process.versions?.node) return null;
  try {
    disableOrtTelemetry();
    const require = createRequire(import.meta.url);
    const ort = require('onnxruntime-node') as { Tensor: OrtTensorCtor };
    const { binding, initOrt } = require('onnxruntime-node/dist/binding') as { binding: { InferenceSession: new () => NativeSession }; initOrt: () => void };
    const version = (require('onnxruntime-node/package.json') as { version: string }).version;
    initOrt();
    const sessions = new Map<string, NativeSession>();
    /**
     * `whole`: a whole-model graph (onnx/run.ts), whose arena keeps buffers across runs of the same
     * shapes (IG on image-softmax: 78 → 68 ms). Pool threads never spin: each session has its own
     * pool, and a predict session's spinning threads took a core from the gradient session after it
     * (IG 57 → 82 ms once its logits came from predict).
     */
    const make = (model: Uint8Array, n: number, whole = false) => {
      const s = new binding.InferenceSession();
      s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
        intraOpNumThreads: n,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // Shapes change from product to product: an arena would keep the largest of each.
        enableCpuMemArena: whole,
        // Idle pool threads sleep instead of spinning (tfjs, or another session, runs next).
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      return s;
    };
    const session = (transposeA: boolean, transposeB: boolean, threaded: boolean) => {
      const n = threaded ? threads : 1;
      const key = `${+transposeA}${+transposeB}${n}`;
      let s = sessions.get(key);
      if (!s) sessions.set(key, (s = make(matMulModel(transposeA, transposeB), n)));
      return s;
    };
    // Elementwise work is memory-bound at these sizes: a second thread measured slower, not faster.
    const unary = (op: UnaryOp) => {
      let s = sessions.get(op);
      if (!s) sessions.set(op, (s = make(unaryModel(op), 1)));
      return s;
    };
    session(false, false, false); // fails here, not mid-explanation, if the binding cannot run
    return { Tensor: ort.Tensor, session, unary, make: (model: Uint8Array) => make(model, threads, true), threads, version };
  } catch {
    return null;
  }
}

function wanted(): boolean {
  const env = typeof process !== 'undefined' ? process.env['RELPROP_ORT'] : undefined;
  return enabled && env !== '0' && env !== 'off';
}

/**
 * Replace tfjs-wasm's BatchMatMul by the ONNX Runtime one, if onnxruntime-node loads. Called by
 * backend.ts when wasm becomes active. Returns whether products now run on ONNX Runtime.
 */
export function installOrtProducts(threads: number): boolean {
  requestedThreads = threads;
  if (!wanted()) return false;
  if (engine === undefined) engine = load(threads);
  if (!engine) return false;
  if (stock) return true;
  stock = tf.getKernel('BatchMatMul', 'wasm');
  if (!stock) return false;
  const fallback = stock;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const e = engine;
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (!e || !enabled || a.dtype !== 'float32' || b.dtype !== 'float32') return fallback.kernelFunc(args);
      const shape = product(a.shape, b.shape, !!transposeA, !!transposeB);
      if (!shape) return fallback.kernelFunc(args);
      // Small products stay on tfjs-wasm, where a call costs ~5 µs against ~20 µs here (a 65×16·16×65
      // head product: 12 µs there, 23 µs here). For the 2-D products of the per-sample paths the rule
      // looks at k·n only, never at the row count m: a sample's rows must go to the same engine alone
      // and in a batch, as the two round differently. Batched 3-D products (heads × samples at once,
      // taped gradients of several samples) count their batch too; wasm's 3-D kernel is slow.
      const [batch, m, k, n] = shape;
      if ((a.shape.length === 2 ? k * n : batch * k * n) < MIN_KN) return fallback.kernelFunc(args);
      return run(e, args.backend as unknown as HeapBackend, a, b, batch, m, k, n, !!transposeA, !!transposeB);
    },
  });
  for (const op of UNARY_OPS) {
    const own = tf.getKernel(op, 'wasm');
    if (!own) continue;
    tf.unregisterKernel(op, 'wasm');
    tf.registerKernel({
      kernelName: op,
      backendName: 'wasm',
      // Every size goes to ONNX Runtime (only tiny ones would be quicker on wasm): MLAS's result for an
      // element does not depend on where it sits in the tensor, so a sample gets the same bits alone
      // and in a batch only if no size rule sends the two to different engines.
      kernelFunc: (args) => {
        const e = engine;
        const { x } = args.inputs as { x: tf.TensorInfo };
        if (!e || !enabled || x.dtype !== 'float32') return own.kernelFunc(args);
        return runUnary(e, args.backend as unknown as HeapBackend, op, x);
      },
    });
  }
  return true;
}

/** Inside the guard: throws CancelledError, having freed `out`, if this thread's request is being stopped. */
function enterOrt(backend?: HeapBackend, out?: tf.TensorInfo): Int32Array | null {
  const g = guard;
  if (!g) return null;
  // Inside first, then the stop check: a stopping thread that sets stop and then reads inside = 0
  // knows this thread will see the stop (sequentially consistent atomics).
  Atomics.store(g, GUARD.inside, 1);
  const stop = Atomics.load(g, GUARD.stop);
  if (stop === -1 || (stop !== 0 && stop === Atomics.load(g, GUARD.current))) {
    Atomics.store(g, GUARD.inside, 0);
    if (out) backend?.disposeData?.(out.dataId);
    throw new CancelledError('cancelled');
  }
  return g;
}

/** An input of a whole-model graph: float32 values or int64 ids. */
export interface GraphFeed {
  readonly data: Float32Array | BigInt64Array;
  readonly dims: readonly number[];
}

function runUnary(e: Engine, backend: HeapBackend, op: UnaryOp, x: tf.TensorInfo): tf.TensorInfo {
  const out = backend.makeOutput([...x.shape], 'float32');
  const size = x.shape.reduce((a, d) => a * d, 1);
  if (size === 0) return out;
  const g = enterOrt(backend, out);
  try {
    const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
    const from = backend.dataIdMap.get(x.dataId).memoryOffset >>> 2;
    const y = e.unary(op).run({ x: new e.Tensor('float32', heap.subarray(from, from + size), [size]) }, { y: null }, {})['y']!;
    heap.set(y.cpuData.subarray(0, size), backend.dataIdMap.get(out.dataId).memoryOffset >>> 2);
    ortStats.elementwise++;
    return out;
  } finally {
    if (g) Atomics.store(g, GUARD.inside, 0);
  }
}

/** [batch, m, k, n] for op(a)·op(b) of rank 2 or 3 with equal batches, op a transpose of the last two axes where flagged; else null. */
function product(sa: readonly number[], sb: readonly number[], tA: boolean, tB: boolean): [number, number, number, number] | null {
  if (sa.length !== sb.length || (sa.length !== 2 && sa.length !== 3)) return null;
  const r = sa.length;
  const batch = r === 3 ? sa[0]! : 1;
  if (r === 3 && sb[0] !== batch) return null;
  const [m, k] = tA ? [sa[r - 1]!, sa[r - 2]!] : [sa[r - 2]!, sa[r - 1]!];
  const [k2, n] = tB ? [sb[r - 1]!, sb[r - 2]!] : [sb[r - 2]!, sb[r - 1]!];
  return k === k2 ? [batch, m, k, n] : null;
}

function run(e: Engine, backend: HeapBackend, a: tf.TensorInfo, b: tf.TensorInfo, batch: number, m: number, k: number, n: number, tA: boolean, tB: boolean): tf.TensorInfo {
  const rank2 = a.shape.length === 2;
  const out = backend.makeOutput(rank2 ? [m, n] : [batch, m, n], 'float32');
  if (batch * m * n === 0) return out;
  const g = enterOrt(backend, out);
  try {
    // Views after makeOutput: an allocation may have replaced the heap's buffer. ONNX Runtime does
    // not touch the wasm heap, so they stay valid through the call.
    const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
    const at = (t: tf.TensorInfo, size: number) => {
      const offset = backend.dataIdMap.get(t.dataId).memoryOffset >>> 2;
      return heap.subarray(offset, offset + size);
    };
    // MLAS takes a vector path for a single row, which rounds differently from its matrix kernel
    // (used for every M ≥ 2, where a row's result does not depend on the rows beside it). A lone row
    // gets a zero row beside it, so a sample's products are the same bits alone or in a batch.
    // A one-row a stored transposed ([k, 1]) is the same memory as [1, k].
    const transposeA = tA && m !== 1;
    let left = at(a, batch * m * k);
    let rows = m;
    if (m === 1) {
      const padded = new Float32Array(batch * 2 * k);
      for (let i = 0; i < batch; i++) padded.set(left.subarray(i * k, (i + 1) * k), i * 2 * k);
      left = padded;
      rows = 2;
    }
    const session = e.session(transposeA, tB, batch * m * k * n >= THREADED_MACS);
    const y = session.run(
      {
        a: new e.Tensor('float32', left, transposeA ? [batch, k, rows] : [batch, rows, k]),
        b: new e.Tensor('float32', at(b, batch * k * n), tB ? [batch, n, k] : [batch, k, n]),
      },
      { y: null },
      {},
    )['y']!;
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset >>> 2;
    if (rows === m) heap.set(y.cpuData.subarray(0, batch * m * n), dst);
    else for (let i = 0; i < batch; i++) heap.set(y.cpuData.subarray(i * 2 * n, i * 2 * n + n), dst + i * n);
    ortStats.products++;
    return out;
  } finally {
    if (g) Atomics.store(g, GUARD.inside, 0);
  }
}

/** Whether products run on ONNX Runtime now (then parallel.ts leaves the splitting to its threads). */
export function ortActive(): boolean {
  return !!engine && !!stock && enabled && tf.getBackend() === 'wasm';
}

/** Which engine takes the large products now: 'onnxruntime' (with its version and threads) or 'wasm'. */
export function productEngine(): { name: 'onnxruntime' | 'wasm'; version?: string; threads?: number } {
  return engine && ortActive() ? { name: 'onnxruntime', version: engine.version, threads: engine.threads } : { name: 'wasm' };
}

/**
 * Switch products between ONNX Runtime and tfjs-wasm's own kernel (for the bench, which times both,
 * and for tests). Returns whether ONNX Runtime is now in use.
 */
export function setProductEngine(name: 'onnxruntime' | 'wasm'): boolean {
  enabled = name === 'onnxruntime';
  if (enabled && !stock && tf.getBackend() === 'wasm') installOrtProducts(requestedThreads);
  return productEngine().name === 'onnxruntime';
}

/** A whole-pass session (engine/trace.ts): its runs, and its native memory's release. */
export interface NativeGraph {
  run(feeds: Readonly<Record<string, GraphFeed>>, outputs: readonly string[]): Record<string, { data: Float32Array; dims: number[] }>;
  dispose(): void;
}

/**
 * A session of a traced pass. Unlike runGraph it never falls back: the runner chose ONNX Runtime for
 * the model, so a graph it rejects is a bug to report, not a reason to switch engines mid-run.
 */
export function nativeGraph(model: Uint8Array): NativeGraph {
  const e = engine;
  if (!e) throw new Error('ONNX Runtime is not loaded');
  const session = e.make(model);
  return {
    run(feeds, outputs) {
      const g = enterOrt();
      try {
        const named = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new e.Tensor(f.data instanceof Float32Array ? 'float32' : 'int64', f.data, f.dims)]));
        const y = session.run(named, Object.fromEntries(outputs.map((o) => [o, null])), {});
        ortStats.graphs++;
        return Object.fromEntries(outputs.map((o) => [o, { data: y[o]!.cpuData, dims: y[o]!.dims }]));
      } finally {
        if (g) Atomics.store(g, GUARD.inside, 0);
      }
    },
    dispose: () => session.dispose?.(),
  };
}
