/**
 * `relprop compare`: every chosen method on every input of a data set, scored with the chosen
 * measures, written as results.csv (one row per input × method × metric), summary.json and a report.
 *
 * A run is a journal: each finished input appends one JSON line to `journal.jsonl` (fsync'd), and a
 * restarted run skips the inputs already there. results.csv is rebuilt from the journal in input
 * order and holds no timings, so an interrupted and resumed run writes the same bytes as one that
 * never stopped. `shard` splits the inputs (index mod n = k) across machines; `mergeRuns` joins them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ClassifierModel, ModelInput } from '../models/types.js';
import { disposeInput } from '../models/types.js';
import { ViTModel } from '../models/vit.js';
import { BertModel } from '../models/bert.js';
import { GPT2Model } from '../models/gpt2.js';
import { ExplainContext } from '../context.js';
import { getMethod } from '../methods/registry.js';
import type { Explanation, MethodOptions } from '../methods/types.js';
import { imageToInput } from '../inputs.js';
import { encodeText } from '../text-inputs.js';
import type { Encoding } from '../text/tokenizer.js';
import { upsampleBilinear } from '../image/overlay.js';
import { RelpropError, UsageError } from '../errors.js';
import type { Dataset, GroundTruth } from './datasets.js';
import { DEFAULT_FRACTIONS, ERASER_BINS, comprehensiveness, perturbationAuc, sufficiency } from './perturbation.js';
import { perturbImage, perturbText, textRemovalFor, type ImageRemoval, type TextRemoval } from './perturb-model.js';
import { pointingGame, relevanceMassAccuracy, relevanceRankAccuracy, segmentationScores } from './localisation.js';
import { kendallTau } from './agreement.js';
import { summarise, type Summary } from './stats.js';
import { adversarialAttention, attentionPermutation } from './attention-tests.js';
import { coIndexedAttribution } from './token-identity.js';
import { RUN_FILE, configDifferences, idsSha256, readRunFile, runConfig, writeRunFile, type RunConfig, type RunFile } from './run-config.js';

export const METRICS = ['perturbation', 'localisation', 'agreement', 'attention', 'identity'] as const;

/** Rows of measures of the model itself, not of a method (attention tests, token identity). */
export const MODEL_ROWS = '(model)';
export type MetricName = (typeof METRICS)[number];

export interface CompareOptions {
  readonly methods: readonly string[];
  readonly metrics: readonly MetricName[];
  readonly out: string;
  readonly shard?: { readonly k: number; readonly n: number };
  readonly imageRemoval?: ImageRemoval;
  readonly textRemoval?: TextRemoval;
  /** Inputs whose heatmaps the report shows. */
  readonly examples?: number;
  /** Options for the methods (each reads its own; e.g. SmoothGrad's samples, noise, seed); defaults otherwise. */
  readonly methodOptions?: MethodOptions;
  /** Discard what the folder holds (journal and outputs) instead of resuming it, also when it was made with another configuration. */
  readonly restart?: boolean;
}

export interface ResultRow {
  readonly input: string;
  readonly method: string;
  readonly metric: string;
  readonly value: number;
}

/** One journal line: everything an input produced. */
interface JournalEntry {
  readonly id: string;
  readonly index: number;
  readonly rows?: ResultRow[];
  readonly error?: string;
  readonly ms?: Record<string, number>;
  readonly example?: { readonly maps: Record<string, { shape: number[]; data: number[] }>; readonly label: number | null; readonly prediction: number; readonly tokens?: string[] };
}

export interface CompareProgress {
  readonly done: number;
  readonly total: number;
  readonly skipped: number;
  readonly errors: number;
  readonly seconds: number;
  readonly current: string;
}

export interface CompareSummary {
  readonly model: string;
  readonly data: string;
  readonly methods: readonly string[];
  readonly metrics: readonly MetricName[];
  readonly inputs: number;
  readonly errors: ReadonlyArray<{ id: string; error: string }>;
  /** Per method, per metric: the distribution over inputs. */
  readonly perMethod: Record<string, Record<string, Summary>>;
  /** Per method: the mean perturbation curves and their AUC × 100 (as Chefer et al. report). */
  readonly perturbation: Record<string, Record<string, { fractions: number[]; accuracy: number[]; probability: number[]; aucAccuracy: number; aucProbability: number }>>;
  /** Median Kendall τ between methods (rows × columns, in `methods` order plus occlusion). */
  readonly agreement: { readonly names: string[]; readonly median: number[][]; readonly iqr: number[][] } | null;
  /** Mean milliseconds per explanation. */
  readonly timing: Record<string, number>;
  /** Measures of the model itself over the inputs: attention tests and per-layer token identity. */
  readonly model_tests?: Record<string, Summary>;
  readonly examples: JournalEntry[];
}

const JOURNAL = 'journal.jsonl';
const DEFAULT_EXAMPLES = 6;

async function readJournal(out: string): Promise<Map<string, JournalEntry>> {
  const done = new Map<string, JournalEntry>();
  let text = '';
  try {
    text = await fs.readFile(path.join(out, JOURNAL), 'utf8');
  } catch {
    return done;
  }
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      done.set(e.id, e);
    } catch {
      // A line cut short by a kill: that input simply runs again.
    }
  }
  return done;
}

/** Each unit's ground truth in the map's space: pixels of the model's view, or real tokens. */
function groundTruthUnits(truth: GroundTruth, model: ClassifierModel, encoding: Encoding | null): Float32Array | null {
  if (truth.kind === 'pixels' && model instanceof ViTModel) {
    const [h, w] = model.config.imageSize;
    if (truth.width === w && truth.height === h) return truth.mask;
    // Nearest-neighbour to the model's input size: the mask follows the image's resize.
    const out = new Float32Array(h * w);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) out[y * w + x] = truth.mask[Math.floor(((y + 0.5) * truth.height) / h) * truth.width + Math.floor(((x + 0.5) * truth.width) / w)]!;
    return out;
  }
  if (truth.kind === 'spans' && encoding) {
    return Float32Array.from(encoding.offsets, ([s, e], t) => (!encoding.special[t] && truth.spans.some(([a, b]) => s < b && a < e) ? 1 : 0));
  }
  return null;
}

/** A map in the units localisation and agreement use: pixels of the model's view, or tokens. */
function unitsOf(e: Explanation, model: ClassifierModel): Float32Array {
  if (e.space === 'token') return e.map;
  const [h, w] = (model as ViTModel).config.imageSize;
  if (e.shape[0] === h && e.shape[1] === w) return e.map;
  return upsampleBilinear(e.map, [e.shape[0]!, e.shape[1]!], h, w);
}

/** Text maps are compared over the real tokens only ([CLS], [SEP] and padding are not units). */
function realTokens(encoding: Encoding | null, length: number): number[] {
  if (!encoding) return Array.from({ length }, (_, i) => i);
  return encoding.special.flatMap((s, i) => (s ? [] : [i]));
}

const pick = (xs: ArrayLike<number>, idx: readonly number[]) => idx.map((i) => xs[i]!);

function prepare(model: ClassifierModel, content: Awaited<ReturnType<Dataset['items'][number]['load']>>['content']): { input: ModelInput; encoding: Encoding | null } {
  if (content.kind === 'image') {
    if (!(model instanceof ViTModel)) throw new UsageError(`model '${model.name}' takes text, but the data holds images`);
    return { input: imageToInput(model, content.image).input, encoding: null };
  }
  // Encoder classifiers and decoders alike; a decoder's explained class is its next-token prediction.
  if (!(model instanceof BertModel || model instanceof GPT2Model)) throw new UsageError(`model '${model.name}' takes images, but the data holds text`);
  const loaded = encodeText(model, content.text);
  return { input: loaded.input, encoding: loaded.encoding };
}

async function evaluateItem(
  model: ClassifierModel,
  dataset: Dataset,
  index: number,
  o: CompareOptions,
  wantExample: boolean,
): Promise<JournalEntry> {
  const item = dataset.items[index]!;
  let loaded;
  try {
    loaded = await item.load();
  } catch (err) {
    if (err instanceof RelpropError) return { id: item.id, index, error: err.message };
    throw err;
  }
  let prepared: { input: ModelInput; encoding: Encoding | null };
  try {
    prepared = prepare(model, loaded.content);
  } catch (err) {
    if (err instanceof RelpropError && !(err instanceof UsageError)) return { id: item.id, index, error: err.message };
    throw err;
  }
  const { input, encoding } = prepared;
  const ctx = new ExplainContext(model, input);
  const rows: ResultRow[] = [];
  const ms: Record<string, number> = {};
  try {
    const prediction = ctx.predictions()[0]!;
    // Explain the predicted class, as Chefer et al.; correctness is against the label when known.
    const target = prediction;
    const reference = loaded.label ?? prediction;
    const maps: Record<string, Explanation> = {};
    const methods = [...o.methods];
    if (o.metrics.includes('agreement') && !methods.includes('occlusion')) methods.push('occlusion');
    for (const id of methods) {
      const t0 = performance.now();
      const [e] = await getMethod(id).attribute(ctx, [target], o.methodOptions ?? {});
      ms[id] = performance.now() - t0;
      maps[id] = e!;
    }
    const truth = loaded.truth ? groundTruthUnits(loaded.truth, model, encoding) : null;
    const text = input.kind === 'tokens' && o.metrics.includes('perturbation') ? textRemovalFor(model, o.textRemoval) : null;
    for (const id of o.methods) {
      const e = maps[id]!;
      const units = unitsOf(e, model);
      const row = (metric: string, value: number) => rows.push({ input: item.id, method: id, metric, value });
      if (o.metrics.includes('perturbation')) {
        for (const test of ['positive', 'negative'] as const) {
          const run =
            input.kind === 'image'
              ? perturbImage(model, input, e.map, e.shape, target, test, o.imageRemoval ?? 'zero')
              : perturbText(model, input, e.map, target, test, text!.removal, text!.special);
          run.fractions.forEach((f, s) => {
            row(`perturbation.${test}.correct@${f}`, run.predictions[s] === reference ? 1 : 0);
            row(`perturbation.${test}.probability@${f}`, run.probabilities[s]!);
          });
        }
      }
      if (text && input.kind === 'tokens') {
        // ERASER (DeYoung et al.): drop of the explained class's probability when the top k % of the
        // tokens is removed (comprehensiveness) or is all that is kept (sufficiency), k in ERASER's bins.
        const { special, removal } = text;
        const full = perturbText(model, input, e.map, target, 'positive', removal, special, [0]).probabilities[0]!;
        const without = perturbText(model, input, e.map, target, 'positive', removal, special, ERASER_BINS).probabilities;
        const only = perturbText(model, input, e.map, target, 'negative', removal, special, ERASER_BINS.map((k) => 1 - k)).probabilities;
        row('eraser.comprehensiveness', comprehensiveness(full, without));
        row('eraser.sufficiency', sufficiency(full, only));
      }
      if (o.metrics.includes('localisation') && truth) {
        const idx = input.kind === 'tokens' ? realTokens(encoding, units.length) : Array.from({ length: units.length }, (_, i) => i);
        const m = pick(units, idx);
        const g = pick(truth, idx);
        if (g.some((v) => v > 0.5)) {
          const seg = segmentationScores(m, g);
          row('localisation.pixel_accuracy', seg.pixelAccuracy);
          row('localisation.miou', seg.mIoU);
          row('localisation.ap', seg.ap);
          const shape = input.kind === 'image' ? ((model as ViTModel).config.imageSize as [number, number]) : undefined;
          row('localisation.pointing_game', pointingGame(m, g, shape ? { shape } : {}));
          row('localisation.relevance_mass', relevanceMassAccuracy(m, g));
          row('localisation.relevance_rank', relevanceRankAccuracy(m, g));
        }
      }
      if (o.metrics.includes('agreement')) {
        const idx = input.kind === 'tokens' ? realTokens(encoding, units.length) : null;
        for (const other of methods) {
          if (other === id) continue;
          const a = idx ? pick(units, idx) : units;
          const b = unitsOf(maps[other]!, model);
          row(`agreement.tau.${other}`, kendallTau(a, idx ? pick(b, idx) : b));
        }
      }
    }
    const modelRow = (metric: string, value: number) => rows.push({ input: item.id, method: MODEL_ROWS, metric, value });
    if (o.metrics.includes('attention')) {
      // Jain & Wallace on the last layer: permutation (median TVD over 32 shuffles) and adversarial attention (ε = 0.01).
      modelRow('attention.permutation_median_tvd', attentionPermutation(model, input, { permutations: 32, seed: index }).median);
      const adv = adversarialAttention(model, input, { epsilon: 0.01, steps: 40, lr: 0.1 });
      modelRow('attention.adversarial_jsd', adv.jsd);
    }
    if (o.metrics.includes('identity')) {
      // Meister et al.: the co-indexed unit's share of each layer's representation.
      coIndexedAttribution(model, input).layers.forEach((v, l) => modelRow(`identity.layer${l}`, v));
    }
    const example = wantExample
      ? {
          maps: Object.fromEntries(o.methods.map((id) => [id, { shape: [...maps[id]!.shape], data: Array.from(maps[id]!.map) }])),
          label: loaded.label,
          prediction,
          ...(encoding ? { tokens: encoding.tokens } : {}),
        }
      : undefined;
    return { id: item.id, index, rows, ms, ...(example ? { example } : {}) };
  } finally {
    ctx.dispose();
    disposeInput(input);
  }
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Writes results.csv and summary.json from the journal entries (in input order). */
export async function writeOutputs(out: string, entries: JournalEntry[], meta: { model: string; data: string; methods: readonly string[]; metrics: readonly MetricName[] }): Promise<CompareSummary> {
  entries.sort((a, b) => a.index - b.index);
  const rows = entries.flatMap((e) => e.rows ?? []);
  const csv = ['input,method,metric,value', ...rows.map((r) => `${csvField(r.input)},${csvField(r.method)},${r.metric},${Number.isNaN(r.value) ? 'NaN' : r.value}`)].join('\n') + '\n';
  await fs.writeFile(path.join(out, 'results.csv'), csv);

  const perMethod: CompareSummary['perMethod'] = {};
  const perturbation: CompareSummary['perturbation'] = {};
  for (const m of meta.methods) {
    const mine = rows.filter((r) => r.method === m);
    const byMetric = new Map<string, number[]>();
    for (const r of mine) if (!Number.isNaN(r.value)) (byMetric.get(r.metric) ?? byMetric.set(r.metric, []).get(r.metric)!).push(r.value);
    perMethod[m] = Object.fromEntries([...byMetric].filter(([k]) => !k.startsWith('perturbation.')).map(([k, v]) => [k, summarise(v)]));
    if (meta.metrics.includes('perturbation')) {
      perturbation[m] = {};
      for (const test of ['positive', 'negative']) {
        const mean = (kind: string) => DEFAULT_FRACTIONS.map((f) => {
          const v = byMetric.get(`perturbation.${test}.${kind}@${f}`) ?? [];
          return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
        });
        const accuracy = mean('correct');
        const probability = mean('probability');
        perturbation[m]![test] = {
          fractions: [...DEFAULT_FRACTIONS],
          accuracy,
          probability,
          aucAccuracy: perturbationAuc(DEFAULT_FRACTIONS, accuracy),
          aucProbability: perturbationAuc(DEFAULT_FRACTIONS, probability),
        };
      }
    }
  }
  let agreement: CompareSummary['agreement'] = null;
  if (meta.metrics.includes('agreement')) {
    const names = [...meta.methods, ...(meta.methods.includes('occlusion') ? [] : ['occlusion'])];
    const cell = (a: string, b: string, f: (s: Summary) => number) => {
      if (a === b) return 1;
      const v = rows.filter((r) => r.method === a && r.metric === `agreement.tau.${b}` && !Number.isNaN(r.value)).map((r) => r.value);
      return v.length ? f(summarise(v)) : NaN;
    };
    const known = names.filter((n) => meta.methods.includes(n));
    agreement = {
      names,
      median: names.map((a) => names.map((b) => (known.includes(a) ? cell(a, b, (s) => s.median) : known.includes(b) ? cell(b, a, (s) => s.median) : a === b ? 1 : NaN))),
      iqr: names.map((a) => names.map((b) => (a === b ? 0 : known.includes(a) ? cell(a, b, (s) => s.iqr) : known.includes(b) ? cell(b, a, (s) => s.iqr) : NaN))),
    };
  }
  const timing: Record<string, number> = {};
  for (const m of meta.methods) {
    const v = entries.flatMap((e) => (e.ms?.[m] !== undefined ? [e.ms[m]!] : []));
    timing[m] = v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
  }
  const modelRows = new Map<string, number[]>();
  for (const r of rows) if (r.method === MODEL_ROWS && !Number.isNaN(r.value)) (modelRows.get(r.metric) ?? modelRows.set(r.metric, []).get(r.metric)!).push(r.value);
  const summary: CompareSummary = {
    ...meta,
    model_tests: Object.fromEntries([...modelRows].map(([k, v]) => [k, summarise(v)])),
    inputs: entries.filter((e) => !e.error).length,
    errors: entries.filter((e) => e.error).map((e) => ({ id: e.id, error: e.error! })),
    perMethod,
    perturbation,
    agreement,
    timing,
    examples: entries.filter((e) => e.example),
  };
  await fs.writeFile(path.join(out, 'summary.json'), JSON.stringify(summary, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  return summary;
}

export async function runCompare(
  model: ClassifierModel,
  dataset: Dataset,
  o: CompareOptions,
  onProgress?: (p: CompareProgress) => void,
  signal?: AbortSignal,
): Promise<CompareSummary> {
  for (const m of o.methods) getMethod(m);
  if (o.methods.length === 0) throw new UsageError('no methods to compare');
  // A text removal the model has no token for ([MASK] on GPT-2) stops the run before any work.
  if (dataset.kind === 'text' && o.metrics.includes('perturbation') && (model instanceof BertModel || model instanceof GPT2Model)) textRemovalFor(model, o.textRemoval);
  await fs.mkdir(o.out, { recursive: true });
  const config = runConfigOf(model, dataset, o);
  await claimFolder(o.out, config, o.shard ?? null, !!o.restart);
  const done = await readJournal(o.out);
  const mine = dataset.items.map((_, i) => i).filter((i) => !o.shard || i % o.shard.n === o.shard.k);
  const journal = await fs.open(path.join(o.out, JOURNAL), 'a');
  const start = performance.now();
  let skipped = 0;
  let errors = [...done.values()].filter((e) => e.error).length;
  const examples = o.examples ?? DEFAULT_EXAMPLES;
  try {
    for (const [n, i] of mine.entries()) {
      if (signal?.aborted) break;
      const id = dataset.items[i]!.id;
      if (done.has(id)) {
        skipped++;
        continue;
      }
      onProgress?.({ done: n, total: mine.length, skipped, errors, seconds: (performance.now() - start) / 1000, current: id });
      const entry = await evaluateItem(model, dataset, i, o, n < examples);
      if (entry.error) errors++;
      await journal.write(JSON.stringify(entry) + '\n');
      await journal.sync();
      done.set(id, entry);
    }
  } finally {
    await journal.close();
  }
  onProgress?.({ done: mine.length, total: mine.length, skipped, errors, seconds: (performance.now() - start) / 1000, current: '' });
  const entries = mine.flatMap((i) => {
    const e = done.get(dataset.items[i]!.id);
    return e ? [e] : [];
  });
  return writeOutputs(o.out, entries, { model: model.name, data: dataset.description, methods: o.methods, metrics: o.metrics });
}

function runConfigOf(model: ClassifierModel, dataset: Dataset, o: CompareOptions): RunConfig {
  let removal: RunConfig['removal'] = null;
  if (o.metrics.includes('perturbation')) {
    removal = dataset.kind === 'image' ? (o.imageRemoval ?? 'zero') : model instanceof BertModel || model instanceof GPT2Model ? textRemovalFor(model, o.textRemoval).removal : (o.textRemoval ?? null);
  }
  return runConfig(model, {
    data: {
      spec: dataset.spec,
      description: dataset.description,
      kind: dataset.kind,
      count: dataset.items.length,
      idsSha256: idsSha256(dataset.items.map((x) => x.id)),
      ...(dataset.seeds ? { seeds: dataset.seeds } : {}),
      ...(dataset.masks ? { masks: dataset.masks } : {}),
    },
    methods: [...o.methods],
    metrics: [...o.metrics],
    removal,
    methodOptions: o.methodOptions ?? {},
    examples: o.examples ?? DEFAULT_EXAMPLES,
  });
}

/** What a run folder may hold besides run.json; --restart removes them. */
const RUN_OUTPUTS = [JOURNAL, 'results.csv', 'summary.json', 'provenance.json', 'report.html', 'report.pdf'];

/**
 * Makes `out` this run's folder: a new folder gets run.json; one that holds a run of the same
 * configuration is resumed; one made with another configuration is refused (naming what differs),
 * unless `restart`, which discards its journal and outputs first.
 */
async function claimFolder(out: string, config: RunConfig, shard: RunFile['shard'], restart: boolean): Promise<void> {
  const existing = restart ? null : await readRunFile(out);
  const hasJournal = await fs.access(path.join(out, JOURNAL)).then(() => true, () => false);
  if (!restart && existing) {
    const diffs = configDifferences(existing.config, config);
    const s = (x: RunFile['shard']) => (x ? `${x.k}/${x.n}` : 'none');
    if (s(existing.shard) !== s(shard)) diffs.push(`shard: ${s(existing.shard)} ≠ ${s(shard)}`);
    if (diffs.length) {
      throw new UsageError(
        `${path.join(out, RUN_FILE)}: this folder holds a run with another configuration (${diffs.join('; ')}); use --restart to discard its results, or another --out`,
      );
    }
    return;
  }
  if (!restart && hasJournal) {
    throw new UsageError(`${out}: holds a journal.jsonl but no ${RUN_FILE}, so its configuration is unknown; use --restart to discard it, or another --out`);
  }
  if (restart) for (const f of RUN_OUTPUTS) await fs.rm(path.join(out, f), { force: true });
  await writeRunFile(out, { config, shard });
}

/** Join shard outputs (their journals) into one run folder. */
export async function mergeRuns(shards: readonly string[], out: string): Promise<CompareSummary> {
  const all = new Map<string, JournalEntry>();
  let meta: { model: string; data: string; methods: readonly string[]; metrics: readonly MetricName[] } | null = null;
  for (const dir of shards) {
    for (const [id, e] of await readJournal(dir)) all.set(id, e);
    const s = JSON.parse(await fs.readFile(path.join(dir, 'summary.json'), 'utf8')) as CompareSummary;
    meta ??= { model: s.model, data: s.data, methods: s.methods, metrics: s.metrics };
  }
  if (!meta) throw new UsageError('no shard folders given');
  await fs.mkdir(out, { recursive: true });
  const entries = [...all.values()];
  await fs.writeFile(path.join(out, JOURNAL), entries.sort((a, b) => a.index - b.index).map((e) => JSON.stringify(e)).join('\n') + '\n');
  return writeOutputs(out, entries, meta);
}
