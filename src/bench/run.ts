/**
 * `npm run bench`: milliseconds per explanation for every method (median, min and max over --runs
 * timed runs after --warmup untimed ones) with peak tensor memory, on the golden tiny ViT and BERT,
 * the six shipped models, and randomly initialised ViT-B/16 and BERT-base shapes, on each backend
 * present; a compare-grid row per model (all its methods sharing one ExplainContext); a leak check
 * (100 explanations cycling the methods, tf.memory().numTensors equal before and after); and, when
 * a python3 with torch is found, the PyTorch reference (bench/torch_reference.py) run in the same
 * process tree, each big-shape time also given as a multiple of PyTorch's forward.
 *
 *   npm run bench -- [--models all|tiny,shipped,big,ID,...] [--methods a,b] [--big-methods a,b|all]
 *                    [--runs 5] [--big-runs 5] [--warmup 1] [--backends wasm,cpu,tensorflow]
 *                    [--torch auto|off|PYTHON] [--torch-runs N] [--leak 100] [--no-grid]
 *                    [--no-load-memory] [--json FILE] [--markdown FILE]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { tf } from '../core/tf.js';
import { ensureBackend } from '../core/backend.js';
import { setProductEngine } from '../core/ort-products.js';
import { explain } from '../core/explain.js';
import { ExplainContext } from '../core/context.js';
import { gradientsAt } from '../core/gradients.js';
import { getMethod, listMethods } from '../core/methods/registry.js';
import { disposeInput, type ClassifierModel, type ModelInput } from '../core/models/types.js';
import { BENCH_MODELS, resolveModels, type BenchModelSpec } from './models.js';
import { installPeakTracker, liveBytes, peakBytes, resetPeak, wasmHeapBytes } from './memory.js';
import { argValue, formatDuration, formatMB, formatMs, formatRatio, intOption, markdownTable, summarise, type Summary } from './stats.js';
import { findTorchPython, runTorchReference, type TorchReference } from './torch.js';
import { describeLoadMemory, measureLoadMemory, type LoadMemory } from './load-memory.js';

/** The wasm backend with its products on ONNX Runtime: a backend of its own in the tables. */
const ORT_BACKEND = 'wasm+onnxruntime';

function ortInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
}

const USAGE = `npm run bench -- [options]

  --models LIST       models or groups: tiny (golden-vit, golden-bert), shipped (the six in models/),
                      big (vit-b16, bert-base), all (default)
  --methods LIST      methods on tiny and shipped models (default: all registered)
  --big-methods LIST  methods on vit-b16 and bert-base (default: the main ones, see README; 'all' for every one)
  --runs N            timed runs per method on tiny/shipped models (default 5), after --warmup N (default 1;
                      fast methods go on warming up until 0.25 s have passed, 50 runs at most)
  --big-runs N        timed runs per method on the big shapes (default 5; each run takes seconds)
  --slow-runs N       also run the other methods (integrated-gradients, smoothgrad, occlusion: minutes each
                      there) on the big shapes, N runs without warm-up (default 0: not run, an estimate is given)
  --backends LIST     wasm+onnxruntime, wasm, cpu, tensorflow (default: wasm+onnxruntime when onnxruntime-node is
                      installed, else wasm; and tensorflow when @tensorflow/tfjs-node is installed);
                      cpu runs tiny and shipped models only
  --torch auto|off|PYTHON   the PyTorch reference (default auto: python3 or /usr/bin/python3 if it imports torch)
  --torch-runs N      PyTorch timed runs (default: --big-runs, at least 5)
  --torch-threads L   PyTorch thread counts (default 2,1: the reference with this machine's 2 cores, then 1,
                      as Node's wasm has; the × columns use the first, and 1 when timed)
  --leak N            leak check: N explanations cycling the methods on models/image-softmax (default 100; 0 skips)
  --no-grid           skip the compare-grid rows
  --no-load-memory    skip the load-memory check (peak RSS loading a 346 MB ViT-B/16 checkpoint, in a child process)
  --json FILE         write every row, sample and setting as JSON
  --markdown FILE     write the printed report (markdown) to a file too`;

/** The methods run on ViT-B/BERT-base by default. The others repeat a whole forward or gradient
 *  pass per step, sample or occluded unit; they are not run there unless asked for. */
export const BIG_METHODS = [
  'transformer-attribution',
  'lrp',
  'partial-lrp',
  'attnlrp',
  'cp-lrp',
  'attention-gradcam',
  'raw-attention',
  'rollout',
  'generic-attention',
  'saliency',
  'gradient-input',
  'random',
  'attention-flow',
];

type RowKind = 'forward' | 'gradient' | 'method' | 'grid';

interface Row extends Summary {
  backend: string;
  model: string;
  kind: RowKind;
  /** Method id; for other kinds a label. */
  method: string;
  samples: number[];
  /** Untimed runs before the timed ones. */
  warmup: number;
  /** Peak bytes of live tensor buffers during any timed run, weights included. */
  peakBytes: number;
  /** Median ÷ the PyTorch forward of the same shape, measured in this run (big shapes): 2 threads, the reference. */
  xTorchForward: number | null;
  /** The same against PyTorch on one thread (Node's wasm backend has one). */
  xTorchForward1: number | null;
  error?: string;
  /** Grid rows: the methods and the ratio to transformer-attribution alone. */
  gridMethods?: string[];
  gridRatio?: number | null;
}

interface NotMeasured {
  backend: string;
  model: string;
  method: string;
  reason: string;
}

interface ModelInfo {
  backend: string;
  id: string;
  describe: string;
  input: string;
  weightsBytes: number;
  target: number;
  wasmHeapBytes: number | null;
  seconds: number;
  /** 1-minute load average when the model's runs started and ended (other processes on the same cores show here). */
  load: [number, number];
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const arg = (name: string) => argValue(argv, name);
const log = (s: string) => process.stderr.write(`${s}\n`);

async function nativeAvailable(): Promise<boolean> {
  for (const p of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(/* @vite-ignore */ p);
      return true;
    } catch {
      /* not installed */
    }
  }
  return false;
}

/**
 * Warm-up runs, then timed runs of `fn`, each with its own peak of live tensor bytes. The warm-up is
 * `warmup` runs, continued (up to 50) until it has taken WARMUP_MS: a 2 ms method needs more than
 * one call before V8 has compiled its code paths, a 10 s one does not.
 */
const WARMUP_MS = 250;
async function measure(fn: () => Promise<void>, runs: number, warmup: number): Promise<{ samples: number[]; peakBytes: number }> {
  const w0 = performance.now();
  for (let i = 0; i < warmup || (warmup > 0 && i < 50 && performance.now() - w0 < WARMUP_MS); i++) await fn();
  const samples: number[] = [];
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    resetPeak();
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
    peak = Math.max(peak, peakBytes());
  }
  return { samples, peakBytes: peak };
}

function predicted(model: ClassifierModel, input: ModelInput): number {
  const logits = model.predict(input);
  const row = Array.from(logits.dataSync());
  logits.dispose();
  return row.indexOf(Math.max(...row));
}

/** The token count of the shipped text models' bench input (the PyTorch small text shape takes it); 12 if none is selected. */
async function shippedTextLength(specs: readonly BenchModelSpec[]): Promise<number> {
  const text = specs.find((x) => x.torchModel?.startsWith('bert-small'));
  if (!text) return 12;
  await ensureBackend('wasm');
  const { model, input } = await text.load(root);
  const T = input.kind === 'tokens' ? input.ids.shape[1] : 12;
  disposeInput(input);
  model.dispose();
  return T;
}

async function benchModel(
  backend: string,
  spec: BenchModelSpec,
  methods: readonly string[],
  opts: { runs: number; warmup: number; grid: boolean; torch: TorchReference | null; slow: readonly string[]; slowRuns: number },
  rows: Row[],
  infos: ModelInfo[],
): Promise<void> {
  const t0 = performance.now();
  const load0 = os.loadavg()[0]!;
  const before = liveBytes();
  const { model, input, note } = await spec.load(root);
  const weightsBytes = liveBytes() - before;
  const target = predicted(model, input);
  log(`\n[${backend}] ${spec.id}: ${spec.describe}; ${note}; weights ${formatMB(weightsBytes)} MB; target ${target} (the prediction)`);
  const torchFwd = spec.torchModel && opts.torch ? (opts.torch.models[spec.torchModel]?.forward_ms.median ?? null) : null;
  const torchFwd1 = spec.torchModel && opts.torch ? (opts.torch.by_threads?.['1']?.models[spec.torchModel]?.forward_ms.median ?? null) : null;
  const add = async (kind: RowKind, method: string, fn: () => Promise<void>, extra: Partial<Row> = {}, runs = opts.runs, warmup = opts.warmup): Promise<Row> => {
    let row: Row;
    try {
      const { samples, peakBytes: peak } = await measure(fn, runs, warmup);
      const s = summarise(samples);
      row = { backend, model: spec.id, kind, method, ...s, samples, peakBytes: peak, xTorchForward: torchFwd ? s.median / torchFwd : null, xTorchForward1: torchFwd1 ? s.median / torchFwd1 : null, warmup, ...extra };
    } catch (err) {
      row = { backend, model: spec.id, kind, method, ...summarise([]), samples: [], peakBytes: NaN, xTorchForward: null, xTorchForward1: null, warmup, error: (err as Error).message.split('\n')[0]!, ...extra };
    }
    rows.push(row);
    const ratio = row.xTorchForward ? `  ${formatRatio(row.xTorchForward)} torch fwd${row.xTorchForward1 ? `, ${formatRatio(row.xTorchForward1)} 1-thread torch fwd` : ''}` : '';
    log(
      `  ${method.padEnd(26)} ${row.error ? `ERROR ${row.error}` : `median ${formatMs(row.median).padStart(8)} ms  [${formatMs(row.min)}–${formatMs(row.max)}]  peak ${formatMB(row.peakBytes)} MB${ratio}`}`,
    );
    return row;
  };

  try {
    await add('forward', '(forward)', async () => {
      const logits = model.predict(input);
      logits.dataSync();
      logits.dispose();
    });
    await add('gradient', '(forward+backward)', async () => {
      const g = gradientsAt(model, input, [target], true);
      tf.dispose([g.input, ...g.attention]);
    });
    const single = new Map<string, Row>();
    for (const id of methods) {
      single.set(id, await add('method', id, async () => void (await explain(model, input, { method: id, target }))));
    }
    if (opts.grid && methods.length > 1) {
      const ta = single.get('transformer-attribution');
      const row = await add('grid', `(compare grid, ${methods.length} methods)`, async () => {
        const ctx = new ExplainContext(model, input);
        try {
          for (const id of methods) await getMethod(id).attribute(ctx, [target], {});
        } finally {
          ctx.dispose();
        }
      }, { gridMethods: [...methods] });
      row.gridRatio = ta && !ta.error && !row.error ? row.median / ta.median : null;
      if (row.gridRatio) log(`  ${''.padEnd(26)} = ${formatRatio(row.gridRatio)} transformer-attribution alone`);
    }
    // The slow methods on big shapes, when asked for: fewer runs, no warm-up, outside the grid.
    for (const id of opts.slowRuns > 0 ? opts.slow : []) {
      await add('method', id, async () => void (await explain(model, input, { method: id, target })), {}, opts.slowRuns, 0);
    }
  } finally {
    disposeInput(input);
    model.dispose();
  }
  infos.push({ backend, id: spec.id, describe: spec.describe, input: note, weightsBytes, target, wasmHeapBytes: wasmHeapBytes(), seconds: (performance.now() - t0) / 1000, load: [load0, os.loadavg()[0]!] });
}

/** N explanations cycling the methods on one shipped model; tensors (and bytes) must be equal before and after. */
async function leakCheck(n: number, methods: readonly string[]) {
  const spec = BENCH_MODELS.find((m) => m.id === 'image-softmax')!;
  const { model, input } = await spec.load(root);
  try {
    await explain(model, input, { method: methods[0]!, target: 0 }); // lazily built caches (e.g. transposed weights) first
    const before = tf.memory();
    for (let i = 0; i < n; i++) await explain(model, input, { method: methods[i % methods.length]!, target: i % model.numClasses });
    const after = tf.memory();
    return { model: spec.id, explanations: n, methods: methods.length, tensorsBefore: before.numTensors, tensorsAfter: after.numTensors, bytesBefore: before.numBytes, bytesAfter: after.numBytes };
  } finally {
    disposeInput(input);
    model.dispose();
  }
}

function machine() {
  const req = createRequire(import.meta.url);
  const version = (p: string) => {
    try {
      return (req(`${p}/package.json`) as { version: string }).version;
    } catch {
      return null;
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    tfjs: version('@tensorflow/tfjs'),
    tfjsWasm: version('@tensorflow/tfjs-backend-wasm'),
    tfjsNode: version('@tensorflow/tfjs-node'),
    onnxruntimeNode: version('onnxruntime-node'),
  };
}

function report(
  m: ReturnType<typeof machine>,
  torch: TorchReference | null,
  torchNote: string,
  rows: Row[],
  infos: ModelInfo[],
  notMeasured: NotMeasured[],
  leak: Awaited<ReturnType<typeof leakCheck>> | null,
  settings: Record<string, unknown>,
  wallSeconds: number,
): string {
  const out: string[] = [];
  const para = (...lines: string[]) => out.push('', ...lines);
  const short = (r: Row) => r.runs < 5 || r.warmup === 0;
  const cell = (r: Row | undefined) => (!r ? '' : r.error ? 'error' : `${formatMs(r.median)}${short(r) ? ' †' : ''}`);
  const label = (r: Row) => (r.kind === 'method' ? `\`${r.method}\`` : r.kind === 'grid' ? '(compare grid)' : r.method);
  const torchFwdOf = (id: string) => (torch && BENCH_MODELS.find((b) => b.id === id)?.torchModel ? torch.models[BENCH_MODELS.find((b) => b.id === id)!.torchModel!] : undefined);

  out.push(`# relprop bench, ${new Date().toISOString()}`);
  para(
    `${m.cores} × ${m.cpu}, ${m.memoryGB} GB; Node ${m.node}; tfjs ${m.tfjs} (wasm ${m.tfjsWasm}${m.tfjsNode ? `, tfjs-node ${m.tfjsNode}` : ''}); ` +
      (torch
        ? `PyTorch ${torch.torch} (python ${torch.python}${torch.interpreter ? `, ${torch.interpreter}` : ''}), ${torch.threads} threads, BLAS ${torch.blas.openblas ? 'OpenBLAS' : torch.blas.libraries.join(', ') || 'unknown'} (${torch.blas.gflops} GFLOP/s on a ${torch.blas.matmul} matmul).`
        : `PyTorch: ${torchNote}.`),
    `Settings: ${Object.entries(settings).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`).join('; ')}. Wall time ${(wallSeconds / 60).toFixed(1)} min.`,
  );

  for (const backend of [...new Set(rows.map((r) => r.backend))]) {
    const mine = rows.filter((r) => r.backend === backend);
    const models = [...new Set(mine.map((r) => r.model))];
    const labels = [...new Set(mine.map((r) => `${r.kind}|${r.kind === 'grid' ? '' : r.method}`))];
    const order = (k: string) => (k.startsWith('forward|') ? 0 : k.startsWith('gradient|') ? 1 : k.startsWith('grid|') ? 3 : 2);
    labels.sort((a, b) => order(a) - order(b));
    const find = (model: string, key: string) => mine.find((r) => r.model === model && `${r.kind}|${r.kind === 'grid' ? '' : r.method}` === key);
    para(`## ${backend}: median ms per explanation`);
    para(`† fewer than 5 timed runs, or no warm-up. Empty: not run (see "Not measured").`);
    para(
      markdownTable(
        ['method', ...models],
        labels.map((k) => {
          const any = mine.find((r) => `${r.kind}|${r.kind === 'grid' ? '' : r.method}` === k)!;
          return [label(any), ...models.map((id) => cell(find(id, k)))];
        }),
        ['l', ...models.map(() => 'r' as const)],
      ),
    );
    para(
      `## ${backend}: every row`,
      '',
      'Median, min and max over the timed runs after the warm-up; peak MB: high-water of live tensor buffers during the timed runs ' +
        '(tf.memory().numBytes, counting a buffer shared by several tensors once), model weights included; ' +
        '× torch fwd: median ÷ the PyTorch forward of the same shape measured in this run, with 2 threads (the reference) and with 1 (as Node\'s wasm has).',
    );
    para(
      markdownTable(
        ['model', 'method', 'runs', 'median ms', 'min ms', 'max ms', 'peak MB', '× torch fwd', '× 1-thread torch fwd'],
        mine.map((r) => [
          r.model,
          label(r),
          `${r.runs}${r.warmup === 0 ? ' (no warm-up)' : ''}`,
          r.error ? `error: ${r.error}` : formatMs(r.median),
          formatMs(r.min),
          formatMs(r.max),
          formatMB(r.peakBytes),
          r.xTorchForward === null ? '' : formatRatio(r.xTorchForward),
          r.xTorchForward1 === null ? '' : formatRatio(r.xTorchForward1),
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const grids = mine.filter((r) => r.kind === 'grid');
    if (grids.length) {
      para(`### ${backend}: compare grid (every method of the row above on one input, one shared ExplainContext)`);
      const taOf = (model: string) => mine.find((r) => r.model === model && r.method === 'transformer-attribution');
      para(
        markdownTable(
          ['model', 'methods', 'grid median ms', 'min', 'max', 'transformer-attribution alone', 'grid ÷ TA'],
          grids.map((g) => [g.model, String(g.gridMethods?.length ?? ''), formatMs(g.median), formatMs(g.min), formatMs(g.max), formatMs(taOf(g.model)?.median ?? NaN), g.gridRatio ? formatRatio(g.gridRatio) : '—']),
          ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
        ),
      );
    }
    const vsTorch = models.filter((id) => torchFwdOf(id));
    if (vsTorch.length && torch) {
      para(`### ${backend} against PyTorch (same shapes, batch 1, measured in this run)`);
      const counts = Object.keys(torch.by_threads ?? { [torch.threads]: null });
      const header = ['model', 'tfjs forward ms', 'tfjs forward+backward ms'];
      for (const n of counts) header.push(`PyTorch ${n}-thread forward ms`, 'tfjs ÷', `PyTorch ${n}-thread forward+backward ms`, 'tfjs ÷');
      para(
        markdownTable(
          header,
          vsTorch.map((id) => {
            const f = find(id, 'forward|(forward)')?.median ?? NaN;
            const g = find(id, 'gradient|(forward+backward)')?.median ?? NaN;
            const cells = [id, formatMs(f), formatMs(g)];
            for (const n of counts) {
              const t = (torch.by_threads?.[n]?.models ?? torch.models)[BENCH_MODELS.find((b) => b.id === id)!.torchModel!];
              cells.push(formatMs(t?.forward_ms.median ?? NaN), formatRatio(f / (t?.forward_ms.median ?? NaN)), formatMs(t?.forward_backward_ms.median ?? NaN), formatRatio(g / (t?.forward_backward_ms.median ?? NaN)));
            }
            return cells;
          }),
          header.map((_, i) => (i === 0 ? 'l' : 'r')),
        ),
      );
    }
    const passes = models.flatMap((id) =>
      Object.keys(torchFwdOf(id)?.methods_ms ?? {}).flatMap((method) => {
        const r = mine.find((x) => x.model === id && x.kind === 'method' && x.method === method);
        return r && !r.error ? [{ id, method, r }] : [];
      }),
    );
    if (passes.length && torch) {
      para(
        `### ${backend}: multi-pass methods against PyTorch running the same passes`,
        '',
        'PyTorch batches all of a method\'s passes into one (as Captum does with no internal batch size) on a model of the ' +
          'shipped shape and attention normaliser with random weights (bench/torch_reference.py; sparsemax and 1.5-entmax by their sort-based thresholds).',
      );
      const counts = Object.keys(torch.by_threads ?? { [torch.threads]: null });
      const header = ['model', 'method', 'passes', 'relprop ms'];
      for (const n of counts) header.push(`PyTorch ${n}-thread ms`, 'relprop ÷');
      para(
        markdownTable(
          header,
          passes.map(({ id, method, r }) => {
            const cells = [id, `\`${method}\``, String(torchFwdOf(id)!.methods_ms![method]!.passes), formatMs(r.median)];
            for (const n of counts) {
              const t = (torch.by_threads?.[n]?.models ?? torch.models)[BENCH_MODELS.find((b) => b.id === id)!.torchModel!]?.methods_ms?.[method];
              cells.push(formatMs(t?.median ?? NaN), formatRatio(r.median / (t?.median ?? NaN)));
            }
            return cells;
          }),
          header.map((_, i) => (i <= 1 ? 'l' : 'r')),
        ),
      );
    }
  }

  if (torch) {
    para('## PyTorch reference (bench/torch_reference.py)');
    const sets = Object.values(torch.by_threads ?? { [torch.threads]: { threads: torch.threads, blas: torch.blas, models: torch.models } });
    para(
      markdownTable(
        ['model', 'threads', 'forward ms: median', 'min', 'max', 'forward+backward ms: median', 'min', 'max', 'runs', 'BLAS GFLOP/s'],
        sets.flatMap((set) =>
          Object.entries(set.models).map(([id, r]) => [
            id,
            String(set.threads),
            formatMs(r.forward_ms.median),
            formatMs(r.forward_ms.min),
            formatMs(r.forward_ms.max),
            formatMs(r.forward_backward_ms.median),
            formatMs(r.forward_backward_ms.min),
            formatMs(r.forward_backward_ms.max),
            String(r.forward_ms.runs),
            String(set.blas.gflops),
          ]),
        ),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    para(
      `${Object.entries(torch.models).map(([id, r]) => `${id}: ${r.shape}`).join('; ')}. Random weights, batch 1. Forward under torch.no_grad(); forward+backward: gradients of the target logit ` +
        `w.r.t. the input (BERT: the word embeddings) and every layer's attention probabilities (hooks, as the authors' code). ` +
        `BLAS check: a ${torch.blas.matmul} matmul at ${torch.blas.gflops} GFLOP/s with ${torch.threads} threads (${torch.blas.libraries.join(', ') || 'no BLAS library in the process map'}).` +
        (torch.load ? ` Load average (1 min) before / after: ${torch.load.before.toFixed(2)} / ${torch.load.after.toFixed(2)}.` : ''),
    );
    if (torch.contended?.length) {
      para(
        `**Warning:** with ${torch.threads} threads PyTorch was slower than with fewer on ${torch.contended.join(', ')}: other processes held the cores ` +
          `(OpenMP's threads spin waiting for each other), so the ${torch.threads}-thread numbers, and the × torch fwd column, understate PyTorch; the 1-thread column is the robust comparison.`,
      );
    }
    if (torch.blas.reference_like) para(`**Warning:** BLAS runs at ${torch.blas.gflops} GFLOP/s, the reference BLAS's speed, not OpenBLAS's: the PyTorch numbers are meaningless (apt-get install -y libopenblas0-pthread).`);
  }

  para('## Models');
  para(
    markdownTable(
      ['backend', 'model', 'what', 'input', 'weights MB', 'wasm heap MB after', 'load avg start / end', 'time'],
      infos.map((i) => [i.backend, i.id, i.describe, i.input, formatMB(i.weightsBytes), i.wasmHeapBytes === null ? '—' : formatMB(i.wasmHeapBytes), `${i.load[0].toFixed(2)} / ${i.load[1].toFixed(2)}`, `${i.seconds.toFixed(0)} s`]),
      ['l', 'l', 'l', 'l', 'r', 'r', 'r', 'r'],
    ),
  );
  if (notMeasured.length) {
    para('## Not measured');
    para(markdownTable(['backend', 'model', 'method', 'why'], notMeasured.map((n) => [n.backend, n.model, n.method.startsWith('(') ? n.method : `\`${n.method}\``, n.reason])));
  }
  if (leak) {
    para(
      `Leak check: ${leak.explanations} explanations cycling ${leak.methods} methods on ${leak.model}: tf.memory().numTensors ${leak.tensorsBefore} before, ${leak.tensorsAfter} after` +
        ` (numBytes ${leak.bytesBefore} / ${leak.bytesAfter}): ${leak.tensorsAfter === leak.tensorsBefore && leak.bytesAfter === leak.bytesBefore ? 'no leak' : 'LEAK'}.`,
    );
  }
  return out.join('\n');
}

/** Why a method is left out on a big shape, with what it would cost from this run's own rows. */
function skipReason(method: string, model: string, rows: Row[], backend: string): string {
  const get = (m: string) => rows.find((r) => r.backend === backend && r.model === model && r.method === m && !r.error)?.median;
  const fwd = get('(forward)');
  const grad = get('(forward+backward)');
  const est = (n: number, per: number | undefined, what: string) => (per ? `${n} ${what} passes, ≈ ${formatDuration(n * per)} per explanation from this run's ${what} row` : `${n} ${what} passes`);
  const units = model === 'vit-b16' ? 196 : 126;
  switch (method) {
    case 'integrated-gradients':
      return `not in --big-methods: ${est(50, grad, 'forward+backward')} (50 steps)`;
    case 'smoothgrad':
      return `not in --big-methods: ${est(16, grad, 'forward+backward')} (16 samples)`;
    case 'occlusion':
      return `not in --big-methods: ${est(units, fwd, 'forward')} (one per ${model === 'vit-b16' ? 'patch' : 'token'}, batched by 16)`;
    default:
      return 'not in --big-methods (add it there, or --big-methods all)';
  }
}

async function main(): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const wall0 = performance.now();
  installPeakTracker();
  const all = listMethods().map((m) => m.id);
  const check = (ids: string[]) => ids.map((id) => getMethod(id).id);
  const methods = check(arg('methods')?.split(',') ?? all);
  const bigArg = arg('big-methods');
  const bigMethods = check(bigArg === 'all' ? all : (bigArg?.split(',') ?? (arg('methods') ? methods : BIG_METHODS)));
  const models = resolveModels(arg('models') ?? 'all');
  const runs = intOption(arg('runs'), 5, 'runs', 1);
  const bigRuns = intOption(arg('big-runs'), 5, 'big-runs', 1);
  const slowRuns = intOption(arg('slow-runs'), 0, 'slow-runs', 0);
  const warmup = intOption(arg('warmup'), 1, 'warmup', 0);
  const leakN = intOption(arg('leak'), 100, 'leak', 0);
  const grid = !argv.includes('--no-grid');
  const torchThreads = arg('torch-threads') ?? '2,1';
  if (!/^[1-9]\d*(,[1-9]\d*)*$/.test(torchThreads)) throw new Error(`--torch-threads takes thread counts like 2,1 (got '${torchThreads}')`);
  const ort = ortInstalled();
  const backends = arg('backends')?.split(',') ?? [...((await nativeAvailable()) ? ['tensorflow'] : []), ort ? ORT_BACKEND : 'wasm'];
  for (const b of backends) if (b === ORT_BACKEND && !ort) throw new Error(`--backends ${ORT_BACKEND}: onnxruntime-node is not installed (npm install; it is an optional dependency)`);
  const m = machine();
  log(`relprop bench: ${m.cores} × ${m.cpu}, Node ${m.node}, tfjs ${m.tfjs}; backends ${backends.join(', ')}; models ${models.map((x) => x.id).join(', ')}`);
  const load0 = os.loadavg()[0]!;
  log(`  runs ${runs} (big shapes ${bigRuns}) after ${warmup} warm-up; methods ${methods.length}, on big shapes ${bigMethods.length}; load average ${load0.toFixed(2)}`);
  if (load0 > 0.7) log(`relprop bench: WARNING: load average ${load0.toFixed(2)}: other processes are using these ${os.cpus().length} cores; timings (PyTorch's most) will be inflated`);

  // The PyTorch reference first, while this process is idle: both would compete for the same cores.
  let torch: TorchReference | null = null;
  let torchNote = 'not run';
  const torchArg = arg('torch') ?? 'auto';
  const torchModels = models.filter((x) => x.torchModel);
  if (torchArg === 'off') torchNote = 'skipped (--torch off)';
  else if (torchModels.length === 0) torchNote = 'not run (no model with a PyTorch shape selected)';
  else {
    const python = findTorchPython(torchArg === 'auto' ? undefined : torchArg);
    if (!python) {
      torchNote = 'skipped: no python3 that imports torch (apt-get install -y python3-torch libopenblas0-pthread, or --torch PYTHON)';
      log(`relprop bench: PyTorch reference ${torchNote}`);
    } else {
      const torchRuns = intOption(arg('torch-runs'), Math.max(5, bigRuns), 'torch-runs', 1);
      log(`relprop bench: PyTorch reference with ${python} (${torchRuns} runs)`);
      try {
        const script = path.join(root, 'bench', 'torch_reference.py');
        const r = await runTorchReference(python, script, [
          '--runs',
          String(torchRuns),
          '--threads',
          torchThreads,
          '--models',
          [...new Set(torchModels.map((x) => x.torchModel!))].join(','),
          '--small-seq',
          String(await shippedTextLength(torchModels)),
        ]);
        torch = { ...r, interpreter: python };
      } catch (err) {
        torchNote = `failed: ${(err as Error).message}`;
        log(`relprop bench: PyTorch reference ${torchNote}`);
      }
    }
  }

  const rows: Row[] = [];
  const infos: ModelInfo[] = [];
  const notMeasured: NotMeasured[] = [];
  let leak: Awaited<ReturnType<typeof leakCheck>> | null = null;
  for (const b of backends) {
    // 'wasm+onnxruntime': tfjs-wasm with its products on ONNX Runtime (ort-products.ts); 'wasm': tfjs-wasm's own kernels.
    const backend = b === ORT_BACKEND ? `${await ensureBackend('wasm')}+onnxruntime` : await ensureBackend(b);
    if (backend.startsWith('wasm')) setProductEngine(b === ORT_BACKEND ? 'onnxruntime' : 'wasm');
    for (const spec of models) {
      if (spec.group === 'big' && backend === 'cpu') {
        notMeasured.push({ backend, model: spec.id, method: '(all)', reason: 'the pure-JS cpu backend is for tiny models (a ViT-B forward takes minutes there)' });
        continue;
      }
      const big = spec.group === 'big';
      const list = big ? bigMethods : methods;
      const slow = big ? methods.filter((x) => !bigMethods.includes(x)) : [];
      if (slowRuns === 0) for (const id of slow) notMeasured.push({ backend, model: spec.id, method: id, reason: '' });
      await benchModel(backend, spec, list, { runs: big ? bigRuns : runs, warmup, grid, torch, slow, slowRuns }, rows, infos);
    }
    if (leakN > 0 && leak === null) {
      leak = await leakCheck(leakN, methods);
      log(`\n[${backend}] leak check: ${leak.explanations} explanations on ${leak.model}: numTensors ${leak.tensorsBefore} → ${leak.tensorsAfter}, numBytes ${leak.bytesBefore} → ${leak.bytesAfter}`);
      if (leak.tensorsAfter !== leak.tensorsBefore) process.exitCode = 1;
    }
  }
  for (const n of notMeasured) if (!n.reason) n.reason = skipReason(n.method, n.model, rows, n.backend);
  let loadMemory: LoadMemory | null = null;
  if (!argv.includes('--no-load-memory')) {
    loadMemory = await measureLoadMemory();
    log(`\n${describeLoadMemory(loadMemory)}`);
    if (loadMemory.ratio > 1.1) process.exitCode = 1;
  }

  const wallSeconds = (performance.now() - wall0) / 1000;
  const settings = { 'load average (1 min) at start / end': `${load0.toFixed(2)} / ${os.loadavg()[0]!.toFixed(2)}`, runs, 'big-runs': bigRuns, 'slow-runs': slowRuns, warmup, target: 'the predicted class, given explicitly', 'method options': 'defaults (integrated-gradients 50 steps, smoothgrad 16 samples, rules per method)' };
  const text = report(m, torch, torchNote, rows, infos, notMeasured, leak, settings, wallSeconds) + (loadMemory ? `\n\n${describeLoadMemory(loadMemory)}` : '');
  console.log(text);
  const md = arg('markdown');
  if (md) await fs.writeFile(md, `${text}\n`);
  const json = arg('json');
  if (json) {
    await fs.writeFile(
      json,
      JSON.stringify({ date: new Date().toISOString(), machine: m, loadAverage: os.loadavg(), settings, wallSeconds, torch, torchNote, models: infos, rows, notMeasured, leak, loadMemory }, null, 1),
    );
  }
  log(`relprop bench: done in ${(wallSeconds / 60).toFixed(1)} min`);
}

main().catch((err) => {
  // Usage errors read best as one line; RELPROP_DEBUG=1 shows where anything else came from.
  console.error(`relprop bench: ${process.env['RELPROP_DEBUG'] ? ((err as Error).stack ?? err) : ((err as Error).message ?? err)}`);
  process.exit(1);
});
