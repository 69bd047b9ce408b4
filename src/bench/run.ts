/**
 * `npm run bench`: milliseconds per explanation for every method, on the golden tiny ViT and on a
 * randomly initialised ViT-B/16 (224², 12 × 768), with peak tensor memory and a leak check.
 *
 *   npm run bench -- [--models golden,vit-b16] [--methods a,b] [--runs N] [--vitb-runs N] [--json FILE]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../core/tf.js';
import { ensureBackend } from '../core/backend.js';
import { loadModel } from '../core/models/load.js';
import { randomViT, VIT_B16 } from '../core/models/random.js';
import { explain } from '../core/explain.js';
import { listMethods } from '../core/methods/registry.js';
import type { ClassifierModel } from '../core/models/types.js';

interface Row {
  model: string;
  method: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  peakMB: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Peak memory: on wasm the heap only grows, so its size is the high-water mark of everything tfjs
 * allocated (tf.profile would also tell, but it keeps a record of every kernel call, which itself
 * exhausts memory over an integrated-gradients run on ViT-B). Elsewhere, bytes held after the run.
 */
function memoryMB(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return (backend.wasm ? backend.wasm.HEAPU8.length : tf.memory().numBytes) / 2 ** 20;
}

async function timeMethod(model: ClassifierModel, pixels: tf.Tensor4D, method: string, runs: number, warmup: boolean): Promise<Row> {
  const request = { method, target: 1 };
  if (warmup) await explain(model, { kind: 'image', pixels }, request);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await explain(model, { kind: 'image', pixels }, request);
    times.push(performance.now() - t0);
  }
  return { model: model.name, method, runs, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), peakMB: memoryMB() };
}

async function leakCheck(model: ClassifierModel, pixels: tf.Tensor4D, n: number): Promise<number> {
  const methods = listMethods();
  const before = tf.memory().numTensors;
  for (let i = 0; i < n; i++) await explain(model, { kind: 'image', pixels }, { method: methods[i % methods.length]!.id, target: 0, steps: 8 });
  return tf.memory().numTensors - before;
}

async function main(): Promise<void> {
  const backend = await ensureBackend(arg('backend'));
  const models = (arg('models') ?? 'golden,vit-b16').split(',');
  const methods = arg('methods')?.split(',') ?? listMethods().map((m) => m.id);
  const runs = Number(arg('runs') ?? 5);
  const vitbRuns = Number(arg('vitb-runs') ?? 1);
  const rows: Row[] = [];
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.error(`relprop bench: backend ${backend}, ${os.cpus().length} × ${cpu}, Node ${process.version}`);

  for (const which of models) {
    let model: ClassifierModel;
    let pixels: tf.Tensor4D;
    let n: number;
    if (which === 'golden') {
      model = await loadModel(path.join(root, 'test', 'fixtures', 'golden', 'vit-tiny-a'));
      pixels = tf.randomNormal([1, 3, 32, 32], 0, 1, 'float32', 1) as tf.Tensor4D;
      n = runs;
    } else if (which === 'vit-b16') {
      model = randomViT(VIT_B16, { seed: 1 });
      pixels = tf.randomNormal([1, 3, 224, 224], 0, 1, 'float32', 1) as tf.Tensor4D;
      n = vitbRuns;
      // One forward to warm the kernels; per-method warm-ups would double a long run.
      const f = model.forward({ kind: 'image', pixels });
      f.logits.dataSync();
      tf.dispose(f.logits);
    } else {
      throw new Error(`unknown bench model '${which}' (golden, vit-b16)`);
    }
    for (const method of methods) {
      const row = await timeMethod(model, pixels, method, n, which === 'golden');
      rows.push({ ...row, model: which });
      console.error(`  ${which.padEnd(8)} ${method.padEnd(24)} ${row.medianMs.toFixed(1).padStart(10)} ms  (heap ${row.peakMB.toFixed(0)} MB)`);
    }
    if (which === 'golden') {
      const leaked = await leakCheck(model, pixels, 20);
      console.error(`  golden: tensors leaked after 20 explanations: ${leaked}`);
      if (leaked !== 0) process.exitCode = 1;
    }
    pixels.dispose();
    model.dispose();
  }

  const lines = [
    `| model | method | runs | median ms | min ms | max ms | wasm heap MB (high-water) |`,
    `|---|---|---:|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${r.model} | ${r.method} | ${r.runs} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)} | ${r.maxMs.toFixed(1)} | ${r.peakMB.toFixed(0)} |`),
  ];
  console.log(`Backend ${backend}; ${os.cpus().length} × ${cpu}; Node ${process.version}\n\n${lines.join('\n')}`);
  const out = arg('json');
  if (out) await fs.writeFile(out, JSON.stringify({ backend, cpu, rows }, null, 2));
}

await main();
