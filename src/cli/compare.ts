/**
 * `relprop compare` (methods × measures over a data set, resumable, shardable, parallel) and
 * `relprop merge` (join shard outputs).
 */
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBackend, BACKEND_CHOICES } from '../core/backend.js';
import { UsageError } from '../core/errors.js';
import { loadModel } from '../core/models/load.js';
import { listMethods } from '../core/methods/registry.js';
import { openDataset } from '../core/eval/datasets.js';
import { METRICS, mergeRuns, runCompare, type CompareSummary, type MetricName } from '../core/eval/compare.js';
import { compareReportHtml } from '../core/eval/report.js';
import { htmlToPdf } from '../core/eval/report-pdf.js';
import type { ImageRemoval, TextRemoval } from '../core/eval/perturb-model.js';
import { integer, number } from './options.js';

interface CompareFlags {
  model: string;
  data: string;
  methods: string;
  metrics: string;
  out: string;
  workers: number;
  shard?: string;
  masks?: string;
  removal?: string;
  pdf?: boolean;
  backend?: string;
  samples?: number;
  noise?: number;
  seed?: number;
  restart?: boolean;
}

const packageRoot = () => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A folder, or the name of a shipped model (models/NAME). */
export function resolveModel(spec: string): string {
  if (existsSync(spec)) return spec;
  const shipped = path.join(packageRoot(), 'models', spec);
  if (existsSync(path.join(shipped, 'config.json'))) return shipped;
  throw new UsageError(`--model '${spec}' is neither a folder nor a shipped model (${path.join(packageRoot(), 'models')})`);
}

function parseShard(s: string): { k: number; n: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard must be k/n with 0 ≤ k < n, got '${s}'`);
  return { k: Number(m[1]), n: Number(m[2]) };
}

const eta = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`);

function progressLine(done: number, total: number, seconds: number, extra: string): string {
  const width = 24;
  const filled = total ? Math.round((done / total) * width) : width;
  const rate = done > 0 ? seconds / done : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} inputs ${extra} ETA ${eta(rate * (total - done))}`;
}

function printProgress(line: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
  else process.stderr.write(`${line}\n`);
}

async function writeReport(out: string, summary: CompareSummary, pdf: boolean): Promise<void> {
  const html = compareReportHtml(summary, { title: `relprop compare: ${summary.model}` });
  await fs.writeFile(path.join(out, 'report.html'), html);
  if (pdf) await htmlToPdf(html, path.join(out, 'report.pdf'));
}

function tableOf(s: CompareSummary): string {
  const cols: Array<[string, (m: string) => number | undefined]> = [];
  if (s.metrics.includes('perturbation')) {
    cols.push(['pos. AUC ↓', (m) => s.perturbation[m]?.['positive']?.aucAccuracy], ['neg. AUC ↑', (m) => s.perturbation[m]?.['negative']?.aucAccuracy]);
  }
  if (s.metrics.includes('localisation')) {
    for (const [k, t] of [['miou', 'mIoU'], ['pointing_game', 'pointing'], ['relevance_mass', 'mass'], ['relevance_rank', 'rank']] as const) {
      cols.push([t, (m) => s.perMethod[m]?.[`localisation.${k}`]?.mean]);
    }
  }
  cols.push(['ms', (m) => s.timing[m]]);
  const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));
  const head = `| method | ${cols.map(([t]) => t).join(' | ')} |`;
  const rule = `|---|${cols.map(() => '---:').join('|')}|`;
  return [head, rule, ...s.methods.map((m) => `| ${m} | ${cols.map(([, f]) => fmt(f(m))).join(' | ')} |`)].join('\n');
}

async function runWorkers(flags: CompareFlags, n: number): Promise<void> {
  // Each worker is a process of its own on one shard: tfjs runs one thread per process, so N
  // processes use N cores for everything that is not a product.
  const bin = path.join(packageRoot(), 'bin', 'relprop.js');
  const dirs = Array.from({ length: n }, (_, k) => path.join(flags.out, 'workers', `shard-${k}-of-${n}`));
  const args = (k: number) => [
    bin, 'compare', '--model', flags.model, '--data', flags.data, '--methods', flags.methods, '--metrics', flags.metrics,
    '--out', dirs[k]!, '--shard', `${k}/${n}`,
    ...(flags.masks ? ['--masks', flags.masks] : []), ...(flags.removal ? ['--removal', flags.removal] : []), ...(flags.backend ? ['--backend', flags.backend] : []),
    ...(['samples', 'noise', 'seed'] as const).flatMap((k) => (flags[k] !== undefined ? [`--${k}`, String(flags[k])] : [])),
    ...(flags.restart ? ['--restart'] : []),
  ];
  const t0 = performance.now();
  const dataset = await openDataset(flags.data, { masks: flags.masks });
  const total = dataset.items.length;
  const count = async () => {
    let done = 0;
    for (const d of dirs) done += (await fs.readFile(path.join(d, 'journal.jsonl'), 'utf8').catch(() => '')).split('\n').filter((l) => l.trim()).length;
    return done;
  };
  const timer = setInterval(async () => printProgress(progressLine(await count(), total, (performance.now() - t0) / 1000, `(${n} workers)`)), 1000);
  try {
    await Promise.all(
      dirs.map(
        (_, k) =>
          new Promise<void>((resolve, reject) => {
            // The cores are shared out: each process's products (ONNX Runtime's pool, or the second
            // matmul thread) get cores ÷ workers threads, so N workers do not oversubscribe them.
            const threads = String(Math.max(1, Math.floor(availableParallelism() / n)));
            const child = spawn(process.execPath, args(k), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RELPROP_THREADS: process.env['RELPROP_THREADS'] ?? threads } });
            let err = '';
            child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
            child.on('exit', (code) => (code === 0 ? resolve() : reject(new UsageError(`worker ${k} failed (exit ${code}): ${err.split('\n').filter((l) => l.startsWith('relprop:')).pop() ?? err}`))));
          }),
      ),
    );
  } finally {
    clearInterval(timer);
  }
  printProgress(progressLine(total, total, (performance.now() - t0) / 1000, `(${n} workers)`), true);
  const summary = await mergeRuns(dirs, flags.out);
  await writeReport(flags.out, summary, !!flags.pdf);
  process.stdout.write(`${tableOf(summary)}\n\nwrote ${path.join(flags.out, 'results.csv')}, summary.json, report.html${flags.pdf ? ', report.pdf' : ''}\n`);
}

export function compareCommand(): Command {
  return new Command('compare')
    .description('Compare explanation methods on a data set with perturbation, localisation and agreement measures; writes results.csv, summary.json and report.html. Interrupted runs resume from the journal in --out.')
    .requiredOption('--model <dir|name>', 'model folder, or a shipped model name (image-softmax, text-entmax15, …)')
    .requiredOption('--data <spec>', 'FOLDER of images, FILE.txt (a sentence a line), FILE.jsonl, or task:image|image-pair|text|text-pair:COUNT')
    .option('--methods <list>', "comma-separated method ids, or 'all'", 'all')
    .option('--metrics <list>', `comma-separated: ${METRICS.join(', ')}`, 'perturbation,localisation,agreement')
    .option('--out <dir>', 'output folder', 'relprop-compare')
    .option('--workers <n>', 'parallel worker processes (each one core)', integer('--workers', 1), 1)
    .option('--shard <k/n>', 'only inputs with index mod n = k (several machines; join with relprop merge)')
    .option('--masks <dir>', 'ground-truth masks for a folder of images: DIR/NAME.png, non-black = foreground')
    .addOption(new Option('--removal <how>', 'perturbation removal: zero|mean|blur (images; default zero), mask|unk|delete (text; default mask, delete for gpt2, which has no [MASK])').choices(['zero', 'mean', 'blur', 'mask', 'unk', 'delete']))
    .option('--samples <n>', 'noisy copies averaged by smoothgrad (default 16)', integer('--samples', 1))
    .option('--noise <level>', 'smoothgrad noise σ as a fraction of the input\'s value range (default 0.15 for images, 0.01 for text)', number('--noise', 0))
    .option('--seed <n>', 'seed of smoothgrad\'s noise (default 0)', integer('--seed', 0))
    .option('--restart', 'discard the results already in --out (also when they were made with another configuration) instead of resuming them')
    .option('--pdf', 'also print the report to report.pdf (Debian chromium)')
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: CompareFlags) => {
      const methods = flags.methods === 'all' ? listMethods().map((m) => m.id) : flags.methods.split(',').map((s) => s.trim());
      const metrics = flags.metrics.split(',').map((s) => s.trim()) as MetricName[];
      for (const m of metrics) if (!METRICS.includes(m)) throw new UsageError(`unknown metric '${m}' (choose from ${METRICS.join(', ')})`);
      const modelDir = resolveModel(flags.model);
      if (flags.workers > 1) {
        if (flags.shard) throw new UsageError('--workers and --shard do not combine: workers shard the data themselves');
        return runWorkers({ ...flags, model: modelDir, methods: methods.join(',') }, flags.workers);
      }
      await ensureBackend(flags.backend);
      const dataset = await openDataset(flags.data, { masks: flags.masks });
      const model = await loadModel(modelDir);
      const stop = new AbortController();
      const onInt = () => stop.abort();
      process.once('SIGINT', onInt);
      process.once('SIGTERM', onInt);
      try {
        const removal = flags.removal;
        const summary = await runCompare(
          model,
          dataset,
          {
            methods,
            metrics,
            out: flags.out,
            ...(flags.shard ? { shard: parseShard(flags.shard) } : {}),
            ...(removal && ['zero', 'mean', 'blur'].includes(removal) ? { imageRemoval: removal as ImageRemoval } : {}),
            ...(removal && ['mask', 'unk', 'delete'].includes(removal) ? { textRemoval: removal as TextRemoval } : {}),
            methodOptions: { samples: flags.samples, noise: flags.noise, seed: flags.seed },
            restart: !!flags.restart,
          },
          (p) => printProgress(progressLine(p.done, p.total, p.seconds, `${p.skipped ? `(${p.skipped} resumed) ` : ''}${p.errors ? `${p.errors} skipped as bad ` : ''}${p.current}`), p.done === p.total),
          stop.signal,
        );
        if (stop.signal.aborted) {
          process.stderr.write(`\ninterrupted; run the same command again to continue from the journal in ${flags.out}\n`);
          process.exitCode = 130;
          return;
        }
        await writeReport(flags.out, summary, !!flags.pdf);
        if (summary.errors.length) process.stderr.write(`relprop: ${summary.errors.length} input(s) skipped: ${summary.errors.slice(0, 3).map((e) => `${e.id}: ${e.error}`).join('; ')}\n`);
        process.stdout.write(`${tableOf(summary)}\n\nwrote ${path.join(flags.out, 'results.csv')}, summary.json, report.html${flags.pdf ? ', report.pdf' : ''}\n`);
      } finally {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onInt);
        model.dispose();
      }
    });
}

export function mergeCommand(): Command {
  return new Command('merge')
    .description('Join the outputs of `relprop compare --shard k/n` runs into one results.csv, summary.json and report.html.')
    .requiredOption('--out <dir>', 'output folder')
    .argument('<shards...>', 'the shard output folders')
    .option('--pdf', 'also print the report to report.pdf')
    .action(async (shards: string[], flags: { out: string; pdf?: boolean }) => {
      const summary = await mergeRuns(shards, flags.out);
      await writeReport(flags.out, summary, !!flags.pdf);
      process.stdout.write(`${tableOf(summary)}\n\nmerged ${shards.length} shard(s) into ${flags.out}\n`);
    });
}
