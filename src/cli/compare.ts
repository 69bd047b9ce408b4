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
import { readRunFile, writeAtomic } from '../core/eval/run-config.js';
import { modelSource } from '../core/provenance.js';
import { encodePng } from '../core/image/io.js';
import type { RunProvenance } from '../core/eval/report.js';
import type { ImageRemoval, TextRemoval } from '../core/eval/perturb-model.js';
import { addMethodOptionFlags, integer } from './options.js';
import { METHOD_OPTIONS, pickOptions, type OptionName, type OptionValues } from '../core/methods/options.js';

/** The method options compare takes (SmoothGrad's; the other methods run at their defaults), as the schema defines them. */
const COMPARE_OPTIONS = ['samples', 'noise', 'seed'] as const satisfies readonly OptionName[];

interface CompareFlags extends Pick<OptionValues, (typeof COMPARE_OPTIONS)[number]> {
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

/**
 * `--shard k/n`, or `auto` (`auto/n`): the index and count from the scheduler that started this
 * task — a Slurm job array (SLURM_ARRAY_TASK_ID from SLURM_ARRAY_TASK_MIN in steps of
 * SLURM_ARRAY_TASK_STEP, SLURM_ARRAY_TASK_COUNT tasks), a Kubernetes Indexed Job
 * (JOB_COMPLETION_INDEX; the count is the Job's completions, which the pod cannot read: `auto/n` or
 * RELPROP_SHARD_COUNT), or RELPROP_SHARD_INDEX and RELPROP_SHARD_COUNT for any other scheduler.
 */
export function parseShard(s: string, env: NodeJS.ProcessEnv = process.env): { k: number; n: number } {
  const auto = /^auto(?:\/(\d+))?$/.exec(s);
  if (auto) return autoShard(auto[1] === undefined ? undefined : Number(auto[1]), env);
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard must be k/n with 0 ≤ k < n, or auto, got '${s}'`);
  return { k: Number(m[1]), n: Number(m[2]) };
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`--shard auto: ${name}='${v}' is not a non-negative integer`);
  return Number(v);
}

function autoShard(count: number | undefined, env: NodeJS.ProcessEnv): { k: number; n: number } {
  const check = (k: number, n: number, from: string) => {
    if (count !== undefined && count !== n) throw new UsageError(`--shard auto/${count}: ${from} says ${n} tasks`);
    if (!(n >= 1 && k >= 0 && k < n)) throw new UsageError(`--shard auto: ${from} gives index ${k} of ${n}, outside 0…${n - 1}`);
    return { k, n };
  };
  const id = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (id !== undefined) {
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    const n = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (n === undefined) throw new UsageError('--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not');
    const max = envInt(env, 'SLURM_ARRAY_TASK_MAX');
    // An array with gaps (--array=0,3,7) has no k/n reading: some shards would never run.
    if (step < 1 || (id - min) % step !== 0 || (max !== undefined && (max - min) / step + 1 !== n)) {
      throw new UsageError(`--shard auto: the Slurm array (tasks ${min}…${max ?? '?'} step ${step}, ${n} tasks) is not an evenly stepped range; use --array=0-${n - 1}`);
    }
    return check((id - min) / step, n, `the Slurm array (task ${id}, min ${min}, step ${step}, count ${n})`);
  }
  const index = envInt(env, 'JOB_COMPLETION_INDEX') ?? envInt(env, 'RELPROP_SHARD_INDEX');
  if (index !== undefined) {
    const from = env['JOB_COMPLETION_INDEX'] !== undefined ? 'the Kubernetes Indexed Job' : 'RELPROP_SHARD_INDEX';
    const n = count ?? envInt(env, 'RELPROP_SHARD_COUNT');
    if (n === undefined) throw new UsageError(`--shard auto: ${from} gives the index (${index}) but not the count; use --shard auto/COUNT or set RELPROP_SHARD_COUNT`);
    return check(index, n, `${from} (index ${index})`);
  }
  throw new UsageError('--shard auto: no scheduler index found (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or RELPROP_SHARD_INDEX); run it as a Slurm array task or a Kubernetes Indexed Job, or give --shard k/n');
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
  const images: Record<string, Uint8Array> = {};
  for (const ex of summary.examples) {
    const v = ex.example.view;
    if (v) images[ex.id] = await encodePng({ width: v.width, height: v.height, data: new Uint8Array(Buffer.from(v.rgb, 'base64')) });
  }
  const provenance = await fs.readFile(path.join(out, 'provenance.json'), 'utf8').then((t) => JSON.parse(t) as RunProvenance, () => undefined);
  const html = compareReportHtml(summary, { title: `relprop compare: ${summary.model}`, images, ...(provenance ? { provenance } : {}) });
  await writeAtomic(path.join(out, 'report.html'), html);
  if (pdf) await htmlToPdf(html, path.join(out, 'report.pdf'));
}

function tableOf(s: CompareSummary): string {
  const cols: Array<[string, (m: string) => number | undefined]> = [];
  if (s.metrics.includes('perturbation')) {
    cols.push(['pos. AUC ↓', (m) => s.perturbation[m]?.['positive']?.aucAccuracy], ['neg. AUC ↑', (m) => s.perturbation[m]?.['negative']?.aucAccuracy]);
    if (s.methods.some((m) => s.perMethod[m]?.['eraser.comprehensiveness'])) {
      cols.push(['compr. ↑', (m) => s.perMethod[m]?.['eraser.comprehensiveness']?.mean], ['suff. ↓', (m) => s.perMethod[m]?.['eraser.sufficiency']?.mean]);
    }
  }
  if (s.metrics.includes('localisation')) {
    for (const [k, t] of [['miou', 'mIoU'], ['pointing_game', 'pointing'], ['relevance_mass', 'mass'], ['relevance_rank', 'rank']] as const) {
      cols.push([t, (m) => s.perMethod[m]?.[`localisation.${k}`]?.mean]);
    }
  }
  cols.push(['ms', (m) => s.timing[m]]);
  const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));
  const head = `| method | ${cols.map(([t]) => t).join(' | ')} |`;
  const rule = `|---|${cols.map(() => '---:').join('|')}|`;
  const lines = [head, rule, ...s.methods.map((m) => `| ${m} | ${cols.map(([, f]) => fmt(f(m))).join(' | ')} |`)];
  const notes = undefinedTau(s);
  return [...lines, ...(notes ? ['', notes] : []), ...(s.complete ? [] : ['', incompleteLine(s)])].join('\n');
}

/** "τ undefined for k of n inputs" per pair where a map was constant. */
function undefinedTau(s: CompareSummary): string {
  const a = s.agreement;
  if (!a) return '';
  const parts: string[] = [];
  a.names.forEach((x, i) => a.names.forEach((y, j) => {
    const u = a.undefined[i]![j]!;
    if (j > i && u > 0) parts.push(`${x} vs ${y}: undefined for ${u} of ${u + a.n[i]![j]!} inputs`);
  }));
  return parts.length ? `Kendall τ (left out of the medians where a map is constant): ${parts.join('; ')}` : '';
}

function incompleteLine(s: CompareSummary): string {
  const shards = s.missingShards?.length ? `shards ${s.missingShards.join(', ')} missing; ` : '';
  const inputs = s.missing.length ? `${s.missing.length} input(s) not evaluated (${s.missing.slice(0, 3).join(', ')}${s.missing.length > 3 ? ', …' : ''}); ` : '';
  return `INCOMPLETE: ${shards}${inputs}these numbers are not those of the whole data set`;
}

/** Exit status and final words for a finished (or stopped) run. */
function finish(out: string, summary: CompareSummary, interrupted: boolean, pdf: boolean, what = 'wrote'): void {
  process.stdout.write(`${tableOf(summary)}\n\n${what} ${path.join(out, 'results.csv')}, summary.json, provenance.json, report.html${pdf ? ', report.pdf' : ''}\n`);
  if (summary.errors.length) process.stderr.write(`relprop: ${summary.errors.length} input(s) skipped: ${summary.errors.slice(0, 3).map((e) => `${e.id}: ${e.error}`).join('; ')}\n`);
  if (interrupted) {
    process.stderr.write(`\ninterrupted; the outputs are marked incomplete. Run the same command again to continue from the journal in ${out}\n`);
    process.exitCode = 130;
    return;
  }
  if (summary.inputs === 0 && summary.missing.length === 0 && !summary.missingShards?.length) {
    process.stderr.write(`relprop: no input could be evaluated (${summary.errors.length} failed); see ${path.join(out, 'summary.json')}\n`);
    process.exitCode = 1;
  } else if (!summary.complete) {
    process.stderr.write(`relprop: ${incompleteLine(summary)}\n`);
    process.exitCode = 1;
  }
}

/**
 * Before N workers start: a folder holding a run of another model, data or method list is refused
 * now rather than after all the work (the merge checks the whole configuration).
 */
async function refuseOtherRun(flags: CompareFlags, spec: string, count: number): Promise<void> {
  const existing = await readRunFile(flags.out);
  if (!existing) return;
  const c = existing.config;
  const files = (await fs.readdir(flags.model)).filter((f) => f.endsWith('.safetensors')).sort().map((f) => path.join(flags.model, f));
  const source = await modelSource(flags.model, path.join(flags.model, 'config.json'), files);
  const diffs: string[] = [];
  const cmp = (what: string, a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b) && diffs.push(`${what}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);
  cmp('model.weightsSha256', c.model.weightsSha256, source.weightsSha256);
  cmp('model.configSha256', c.model.configSha256, source.configSha256);
  cmp('data.spec', c.data.spec, spec);
  cmp('data.count', c.data.count, count);
  cmp('methods', c.methods, flags.methods.split(','));
  cmp('metrics', c.metrics, flags.metrics.split(',').map((x) => x.trim()));
  if (diffs.length) throw new UsageError(`${path.join(flags.out, 'run.json')}: this folder holds a run with another configuration (${diffs.join('; ')}); use --restart to discard its results, or another --out`);
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
    ...COMPARE_OPTIONS.flatMap((k) => (flags[k] !== undefined ? [METHOD_OPTIONS[k].flag, String(flags[k])] : [])),
    ...(flags.restart ? ['--restart'] : []),
  ];
  const t0 = performance.now();
  const dataset = await openDataset(flags.data, { masks: flags.masks });
  const total = dataset.items.length;
  if (!flags.restart) await refuseOtherRun(flags, dataset.spec, total);
  if (total === 0) throw new UsageError(`--data '${flags.data}' holds no inputs`);
  if (n > total) throw new UsageError(`--workers ${n} is more than the ${total} inputs`);
  const count = async () => {
    let done = 0;
    for (const d of dirs) done += (await fs.readFile(path.join(d, 'journal.jsonl'), 'utf8').catch(() => '')).split('\n').filter((l) => l.trim()).length;
    return done;
  };
  const timer = setInterval(async () => printProgress(progressLine(await count(), total, (performance.now() - t0) / 1000, `(${n} workers)`)), 1000);
  const children: ReturnType<typeof spawn>[] = [];
  let interrupted = false;
  // Ctrl-C reaches the workers from the terminal; a signal sent to this process alone is passed on,
  // so each worker closes its journal and writes its outputs (marked incomplete) before the merge.
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = true;
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const failures: string[] = [];
  try {
    await Promise.all(
      dirs.map(
        (_, k) =>
          new Promise<void>((resolve) => {
            // The cores are shared out: each process's products (ONNX Runtime's pool, or the second
            // matmul thread) get cores ÷ workers threads, so N workers do not oversubscribe them.
            const threads = String(Math.max(1, Math.floor(availableParallelism() / n)));
            const child = spawn(process.execPath, args(k), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RELPROP_THREADS: process.env['RELPROP_THREADS'] ?? threads } });
            children.push(child);
            let err = '';
            child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
            child.on('exit', (code, signal) => {
              if (code === 130) interrupted = true;
              else if (code !== 0) {
                failures.push(`worker ${k} failed (${signal ?? `exit ${code}`}): ${err.split('\n').filter((l) => l.startsWith('relprop:')).pop() ?? err.trim()}`);
                // One worker's error (a bad option, another configuration in its folder) is every worker's: stop them.
                for (const c of children) if (c !== child && c.exitCode === null) c.kill('SIGTERM');
              }
              resolve();
            });
          }),
      ),
    );
  } finally {
    clearInterval(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const real = failures.filter((f) => !/\(exit 130\)|SIGTERM/.test(f));
  if (real.length || (failures.length && !interrupted)) throw new UsageError((real.length ? real : failures).join('; '));
  printProgress(progressLine(await count(), total, (performance.now() - t0) / 1000, `(${n} workers)`), true);
  const summary = await mergeRuns(dirs, flags.out, { workers: n, seconds: (performance.now() - t0) / 1000 }, { restart: !!flags.restart });
  await writeReport(flags.out, summary, !!flags.pdf);
  finish(flags.out, summary, interrupted, !!flags.pdf);
}

export function compareCommand(): Command {
  const command = new Command('compare')
    .description('Compare explanation methods on a data set with perturbation, localisation and agreement measures; writes results.csv, summary.json and report.html. Interrupted runs resume from the journal in --out.')
    .requiredOption('--model <dir|name>', 'model folder, or a shipped model name (image-softmax, text-entmax15, …)')
    .requiredOption('--data <spec>', 'FOLDER of images, FILE.txt (a sentence a line), FILE.jsonl, or task:image|image-pair|text|text-pair:COUNT')
    .option('--methods <list>', "comma-separated method ids, or 'all'", 'all')
    .option('--metrics <list>', `comma-separated: ${METRICS.join(', ')}`, 'perturbation,localisation,agreement')
    .option('--out <dir>', 'output folder', 'relprop-compare')
    .option('--workers <n>', 'parallel worker processes (each one core)', integer('--workers', 1), 1)
    .option('--shard <k/n|auto>', 'only inputs with index mod n = k (several machines; join with relprop merge); auto: k and n from a Slurm job array or a Kubernetes Indexed Job (auto/n: n given)')
    .option('--masks <dir>', 'ground-truth masks for a folder of images: DIR/NAME.png, non-black = foreground')
    .addOption(new Option('--removal <how>', 'perturbation removal: zero|mean|blur (images; default zero), mask|unk|delete (text; default mask, delete for gpt2, which has no [MASK])').choices(['zero', 'mean', 'blur', 'mask', 'unk', 'delete']));
  addMethodOptionFlags(command, METHOD_OPTIONS, COMPARE_OPTIONS);
  return command
    .option('--restart', 'discard the results already in --out (also when they were made with another configuration) instead of resuming them')
    .option('--pdf', 'also print the report to report.pdf (Debian chromium)')
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: CompareFlags) => {
      const methods = flags.methods === 'all' ? listMethods().map((m) => m.id) : flags.methods.split(',').map((s) => s.trim());
      const metrics = flags.metrics.split(',').map((s) => s.trim()) as MetricName[];
      for (const m of metrics) if (!METRICS.includes(m)) throw new UsageError(`unknown metric '${m}' (choose from ${METRICS.join(', ')})`);
      const modelDir = resolveModel(flags.model);
      // Resolved before any work, so a bad scheduler environment fails fast.
      const shard = flags.shard ? parseShard(flags.shard) : undefined;
      if (flags.workers > 1) {
        if (flags.shard) throw new UsageError('--workers and --shard do not combine: workers shard the data themselves');
        return runWorkers({ ...flags, model: modelDir, methods: methods.join(',') }, flags.workers);
      }
      await ensureBackend(flags.backend);
      const dataset = await openDataset(flags.data, { masks: flags.masks });
      const model = await loadModel(modelDir);
      const stop = new AbortController();
      const onInt = () => stop.abort();
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onInt);
      try {
        const removal = flags.removal;
        const summary = await runCompare(
          model,
          dataset,
          {
            methods,
            metrics,
            out: flags.out,
            ...(shard ? { shard } : {}),
            ...(removal && ['zero', 'mean', 'blur'].includes(removal) ? { imageRemoval: removal as ImageRemoval } : {}),
            ...(removal && ['mask', 'unk', 'delete'].includes(removal) ? { textRemoval: removal as TextRemoval } : {}),
            methodOptions: pickOptions(Object.fromEntries(COMPARE_OPTIONS.map((k) => [k, flags[k]]))),
            restart: !!flags.restart,
          },
          (p) => printProgress(progressLine(p.done, p.total, p.seconds, `${p.skipped ? `(${p.skipped} resumed) ` : ''}${p.errors ? `${p.errors} skipped as bad ` : ''}${p.current}`), p.done === p.total),
          stop.signal,
        );
        await writeReport(flags.out, summary, !!flags.pdf && !stop.signal.aborted);
        finish(flags.out, summary, stop.signal.aborted, !!flags.pdf && !stop.signal.aborted);
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
      const summary = await mergeRuns(shards, flags.out, { mergedBy: 'relprop merge' });
      await writeReport(flags.out, summary, !!flags.pdf);
      finish(flags.out, summary, false, !!flags.pdf, `merged ${shards.length} shard(s) into`);
    });
}
