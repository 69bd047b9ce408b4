// The evaluation worker: `relprop compare` run for the app, one evaluation per
// worker thread. It is a thread of its own, not the compute worker, because an
// evaluation takes minutes and explain requests must not queue behind it.
//
// It runs the same runCompare as the CLI, with the same journal, so a
// cancelled (or crashed) evaluation resumes where it stopped when run again,
// and writes the same results.csv, summary.json and report.html.

import { parentPort, workerData } from 'node:worker_threads';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensureBackend } from '../core/backend.js';
import { setProductGuard } from '../core/ort-products.js';
import { RelpropError } from '../core/errors.js';
import { runCompare, type CompareSummary, type MetricName } from '../core/eval/compare.js';
import { openDataset } from '../core/eval/datasets.js';
import type { ImageRemoval, TextRemoval } from '../core/eval/perturb-model.js';
import { compareReportHtml } from '../core/eval/report.js';
import { loadModel } from '../core/models/load.js';

export interface EvalJobSpec {
  readonly modelDir: string;
  readonly modelName: string;
  /** openDataset's spec: a folder, a file, or task:NAME:COUNT. */
  readonly data: string;
  readonly masks?: string;
  readonly methods: readonly string[];
  readonly metrics: readonly MetricName[];
  readonly removal?: string;
  readonly out: string;
}

export type EvalWorkerEvent =
  | { readonly type: 'progress'; readonly done: number; readonly total: number; readonly skipped: number; readonly errors: number; readonly seconds: number; readonly current: string }
  | { readonly type: 'done'; readonly summary: CompareSummary; readonly aborted: boolean }
  | { readonly type: 'failed'; readonly error: string };

const port = parentPort;
if (!port) throw new Error('relprop: eval-worker.js must be started as a worker thread');
const spec = workerData as EvalJobSpec & { guard?: SharedArrayBuffer };
// Lets the service stop this thread outside ONNX Runtime when it closes (see ort-products.ts).
if (spec.guard) setProductGuard(new Int32Array(spec.guard));
const stop = new AbortController();
port.on('message', (msg: { type: string }) => {
  if (msg.type === 'cancel') stop.abort();
});

const send = (e: EvalWorkerEvent) => port.postMessage(e);
const IMAGE_REMOVALS = ['zero', 'mean', 'blur'];

async function main(): Promise<void> {
  await ensureBackend();
  const dataset = await openDataset(spec.data, spec.masks ? { masks: spec.masks } : {});
  const model = await loadModel(spec.modelDir);
  try {
    const removal = spec.removal;
    const summary = await runCompare(
      model,
      dataset,
      {
        methods: spec.methods,
        metrics: spec.metrics,
        out: spec.out,
        ...(removal && IMAGE_REMOVALS.includes(removal) ? { imageRemoval: removal as ImageRemoval } : {}),
        ...(removal && !IMAGE_REMOVALS.includes(removal) ? { textRemoval: removal as TextRemoval } : {}),
      },
      (p) => send({ type: 'progress', ...p }),
      stop.signal,
    );
    if (!stop.signal.aborted) {
      await fs.writeFile(path.join(spec.out, 'report.html'), compareReportHtml(summary, { title: `relprop compare: ${spec.modelName}` }));
    }
    send({ type: 'done', summary, aborted: stop.signal.aborted });
  } finally {
    model.dispose();
  }
}

main().catch((err: unknown) => {
  send({ type: 'failed', error: err instanceof RelpropError ? err.message : `internal error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}` });
});
