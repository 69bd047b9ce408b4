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
import type { RgbImage } from '../image/io.js';
import { InputError, RelpropError, UsageError } from '../errors.js';
import { engineDescription } from '../provenance.js';
import type { Dataset, GroundTruth } from './datasets.js';
import { DEFAULT_FRACTIONS, ERASER_BINS, comprehensiveness, perturbationAuc, sufficiency } from './perturbation.js';
import { perturbImage, perturbText, textRemovalFor, type ImageRemoval, type TextRemoval } from './perturb-model.js';
import { pointingGame, relevanceMassAccuracy, relevanceRankAccuracy, segmentationScores } from './localisation.js';
import { kendallTau } from './agreement.js';
import { summarise, type Summary } from './stats.js';
import { adversarialAttention, attentionPermutation } from './attention-tests.js';
import { coIndexedAttribution } from './token-identity.js';
import { RUN_FILE, configDifferences, idsSha256, readRunFile, runConfig, writeAtomic, writeRunFile, type RunConfig, type RunFile } from './run-config.js';

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
  /**
   * null: the measure is undefined for this input (Kendall τ with a constant map, which ranks no
   * pair). Left out of every mean and median and counted as `undefined` beside them; an empty
   * field in results.csv.
   */
  readonly value: number | null;
}

/** One journal line: everything an input produced. */
export interface JournalEntry {
  readonly id: string;
  readonly index: number;
  readonly rows?: ResultRow[];
  readonly error?: string;
  /** Milliseconds per method: execution detail, kept out of results.csv and summary.json. */
  readonly ms?: Record<string, number>;
  /** Per method, the options it reports having used (defaults included). */
  readonly options?: Record<string, MethodOptions>;
  readonly example?: {
    readonly maps: Record<string, { shape: number[]; data: number[] }>;
    readonly label: number | null;
    readonly prediction: number;
    readonly labelName?: string;
    readonly predictionName?: string;
    readonly tokens?: string[];
    /** The input as the model saw it (images), RGB bytes in base64, for the report. */
    readonly view?: { readonly width: number; readonly height: number; readonly rgb: string };
  };
}

/** A measure's distribution over the inputs where it is defined, and how many it was undefined for. */
export type MetricSummary = Summary & { readonly undefined: number };

export interface CompareProgress {
  readonly done: number;
  readonly total: number;
  readonly skipped: number;
  readonly errors: number;
  readonly seconds: number;
  readonly current: string;
}

export interface CompareSummary {
  /** False when inputs are missing (an interrupted run, a merge without all shards): the numbers are not those of the whole data set. */
  readonly complete: boolean;
  /** Inputs this run covers (its shard's share for a shard) and the ids of those not evaluated. */
  readonly expected: number;
  readonly missing: readonly string[];
  /** A merge: the shards (k/n) not given. */
  readonly missingShards?: readonly string[];
  /** What made these numbers (see run-config.ts); date, engine and timing are in provenance.json. */
  readonly config: RunConfig;
  /** Per method, the options it used (rule set, defaults included), as the methods report them. */
  readonly options: Record<string, MethodOptions>;
  readonly shard?: { readonly k: number; readonly n: number };
  readonly model: string;
  readonly data: string;
  readonly methods: readonly string[];
  readonly metrics: readonly MetricName[];
  readonly inputs: number;
  readonly errors: ReadonlyArray<{ id: string; error: string }>;
  /** Per method, per metric: the distribution over inputs. */
  readonly perMethod: Record<string, Record<string, MetricSummary>>;
  /** Per method: the mean perturbation curves and their AUC × 100 (as Chefer et al. report). */
  readonly perturbation: Record<string, Record<string, { fractions: number[]; accuracy: number[]; probability: number[]; aucAccuracy: number; aucProbability: number }>>;
  /**
   * Median Kendall τ between methods (rows × columns, in `methods` order plus occlusion), over the
   * inputs where τ is defined (`n`); `undefined`: inputs where it is not (a constant map).
   */
  readonly agreement: { readonly names: string[]; readonly median: number[][]; readonly iqr: number[][]; readonly n: number[][]; readonly undefined: number[][] } | null;
  /** Mean milliseconds per explanation. In memory only: written to provenance.json, not summary.json, as it depends on the machine. */
  readonly timing: Record<string, number>;
  /** Measures of the model itself over the inputs: attention tests and per-layer token identity. */
  readonly model_tests?: Record<string, MetricSummary>;
  /** The first inputs' maps (config.examples of them, by index), for the report. */
  readonly examples: ReadonlyArray<{ readonly id: string; readonly index: number; readonly example: NonNullable<JournalEntry['example']> }>;
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

interface Prepared {
  readonly input: ModelInput;
  readonly encoding: Encoding | null;
  readonly view?: RgbImage;
}

function prepare(model: ClassifierModel, content: Awaited<ReturnType<Dataset['items'][number]['load']>>['content']): Prepared {
  if (content.kind === 'image') {
    if (!(model instanceof ViTModel)) throw new UsageError(`model '${model.name}' takes text, but the data holds images`);
    const loaded = imageToInput(model, content.image);
    return { input: loaded.input, encoding: null, view: loaded.view };
  }
  // Encoder classifiers and decoders alike; a decoder's explained class is its next-token prediction.
  if (!(model instanceof BertModel || model instanceof GPT2Model)) throw new UsageError(`model '${model.name}' takes images, but the data holds text`);
  const loaded = encodeText(model, content.text);
  return { input: loaded.input, encoding: loaded.encoding };
}

/** The model's name for a class, where its config gives one (id2label). */
function className<K extends string>(model: ClassifierModel, k: number | null, key: K): Partial<Record<K, string>> {
  const name = k === null ? undefined : model.labels[k];
  return name !== undefined && name !== '' ? ({ [key]: name } as Record<K, string>) : {};
}

/** The report draws inputs at most this many pixels wide and high; larger views are averaged down. */
const THUMBNAIL = 112;

function thumbnail(img: RgbImage): { width: number; height: number; rgb: string } {
  const f = Math.max(1, Math.ceil(Math.max(img.width, img.height) / THUMBNAIL));
  const w = Math.ceil(img.width / f);
  const h = Math.ceil(img.height / f);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let yy = y * f; yy < Math.min((y + 1) * f, img.height); yy++) {
          for (let xx = x * f; xx < Math.min((x + 1) * f, img.width); xx++, n++) sum += img.data[(yy * img.width + xx) * 3 + c]!;
        }
        out[(y * w + x) * 3 + c] = Math.round(sum / n);
      }
    }
  }
  return { width: w, height: h, rgb: Buffer.from(out).toString('base64') };
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
  let prepared: Prepared;
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
    const used: Record<string, MethodOptions> = {};
    const methods = [...o.methods];
    if (o.metrics.includes('agreement') && !methods.includes('occlusion')) methods.push('occlusion');
    for (const id of methods) {
      const t0 = performance.now();
      const [e] = await getMethod(id).attribute(ctx, [target], o.methodOptions ?? {});
      ms[id] = performance.now() - t0;
      maps[id] = e!;
      used[id] = e!.options;
    }
    const truth = loaded.truth ? groundTruthUnits(loaded.truth, model, encoding) : null;
    const text = input.kind === 'tokens' && o.metrics.includes('perturbation') ? textRemovalFor(model, o.textRemoval) : null;
    for (const id of o.methods) {
      const e = maps[id]!;
      const units = unitsOf(e, model);
      const row = (metric: string, value: number) => rows.push({ input: item.id, method: id, metric, value: Number.isFinite(value) ? value : null });
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
    const modelRow = (metric: string, value: number) => rows.push({ input: item.id, method: MODEL_ROWS, metric, value: Number.isFinite(value) ? value : null });
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
          ...className(model, loaded.label, 'labelName'),
          ...className(model, prediction, 'predictionName'),
          ...(encoding ? { tokens: encoding.tokens } : {}),
          ...(prepared.view ? { view: thumbnail(prepared.view) } : {}),
        }
      : undefined;
    return { id: item.id, index, rows, ms, options: Object.fromEntries(o.methods.map((id) => [id, used[id]!])), ...(example ? { example } : {}) };
  } finally {
    ctx.dispose();
    disposeInput(input);
  }
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Numbers as JSON writes them (shortest round-trip form), so the CSV and the journal agree digit for digit. */
const csvValue = (v: number | null) => (v === null ? '' : String(v));

function metricSummary(values: readonly (number | null)[]): MetricSummary {
  const defined = values.filter((v): v is number => v !== null);
  return { ...summarise(defined), undefined: values.length - defined.length };
}

/** What is known about the inputs a run (or a merge) was to cover. */
export interface Coverage {
  readonly expected: number;
  readonly missing: readonly string[];
  readonly missingShards?: readonly string[];
  readonly shard?: { readonly k: number; readonly n: number };
}

/**
 * Writes results.csv and summary.json from the journal entries (in input order), each through a
 * temporary file. Both are functions of the configuration and the entries alone (no timings, no
 * dates, no worker or shard layout), so every way of executing a run writes the same bytes.
 */
export async function writeOutputs(out: string, entriesIn: readonly JournalEntry[], config: RunConfig, coverage: Coverage): Promise<CompareSummary> {
  const entries = [...entriesIn].sort((a, b) => a.index - b.index);
  const methods = config.methods;
  const metrics = config.metrics as readonly MetricName[];
  const rows = entries.flatMap((e) => e.rows ?? []);
  const csv = ['input,method,metric,value', ...rows.map((r) => `${csvField(r.input)},${csvField(r.method)},${r.metric},${csvValue(r.value)}`)].join('\n') + '\n';
  await writeAtomic(path.join(out, 'results.csv'), csv);

  const byMethodMetric = new Map<string, Map<string, (number | null)[]>>();
  for (const r of rows) {
    const m = byMethodMetric.get(r.method) ?? byMethodMetric.set(r.method, new Map()).get(r.method)!;
    (m.get(r.metric) ?? m.set(r.metric, []).get(r.metric)!).push(r.value);
  }
  const perMethod: CompareSummary['perMethod'] = {};
  const perturbation: CompareSummary['perturbation'] = {};
  for (const m of methods) {
    const byMetric = byMethodMetric.get(m) ?? new Map<string, (number | null)[]>();
    perMethod[m] = Object.fromEntries([...byMetric].filter(([k]) => !k.startsWith('perturbation.')).map(([k, v]) => [k, metricSummary(v)]));
    if (metrics.includes('perturbation')) {
      perturbation[m] = {};
      for (const test of ['positive', 'negative']) {
        const mean = (kind: string) => DEFAULT_FRACTIONS.map((f) => {
          const v = (byMetric.get(`perturbation.${test}.${kind}@${f}`) ?? []).filter((x): x is number => x !== null);
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
  if (metrics.includes('agreement')) {
    const names = [...methods, ...(methods.includes('occlusion') ? [] : ['occlusion'])];
    // τ is symmetric and each input's pair is computed from the row method's side; a pair of two
    // occlusion-only names has no rows. The diagonal is 1 by definition (n and undefined 0).
    const stat = (a: string, b: string): MetricSummary | null => {
      if (a === b) return null;
      const own = byMethodMetric.get(a)?.get(`agreement.tau.${b}`);
      const other = byMethodMetric.get(b)?.get(`agreement.tau.${a}`);
      const v = methods.includes(a) ? own : methods.includes(b) ? other : undefined;
      return v ? metricSummary(v) : null;
    };
    const grid = (f: (a: string, b: string) => number) => names.map((a) => names.map((b) => f(a, b)));
    agreement = {
      names,
      median: grid((a, b) => (a === b ? 1 : stat(a, b)?.median ?? NaN)),
      iqr: grid((a, b) => (a === b ? 0 : stat(a, b)?.iqr ?? NaN)),
      n: grid((a, b) => (a === b ? 0 : stat(a, b)?.n ?? 0)),
      undefined: grid((a, b) => (a === b ? 0 : stat(a, b)?.undefined ?? 0)),
    };
  }
  const timing: Record<string, number> = {};
  for (const m of methods) {
    const v = entries.flatMap((e) => (e.ms?.[m] !== undefined ? [e.ms[m]!] : []));
    timing[m] = v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
  }
  const modelRows = byMethodMetric.get(MODEL_ROWS) ?? new Map<string, (number | null)[]>();
  const options: Record<string, MethodOptions> = {};
  for (const m of methods) {
    for (const e of entries) {
      const used = e.options?.[m];
      if (!used) continue;
      if (!options[m]) options[m] = used;
      else if (JSON.stringify(options[m]) !== JSON.stringify(used)) {
        throw new UsageError(`${path.join(out, JOURNAL)}: method '${m}' ran with options ${JSON.stringify(options[m])} on some inputs and ${JSON.stringify(used)} on ${e.id}; rerun with --restart`);
      }
    }
  }
  const summary: CompareSummary = {
    complete: coverage.missing.length === 0 && !coverage.missingShards?.length,
    expected: coverage.expected,
    missing: [...coverage.missing],
    ...(coverage.missingShards?.length ? { missingShards: [...coverage.missingShards] } : {}),
    ...(coverage.shard ? { shard: coverage.shard } : {}),
    config,
    options,
    model: config.model.name,
    data: config.data.description,
    methods: [...methods],
    metrics: [...metrics],
    model_tests: Object.fromEntries([...modelRows].map(([k, v]) => [k, metricSummary(v)])),
    inputs: entries.filter((e) => !e.error).length,
    errors: entries.filter((e) => e.error).map((e) => ({ id: e.id, error: e.error! })),
    perMethod,
    perturbation,
    agreement,
    timing,
    examples: entries.filter((e) => e.example).map((e) => ({ id: e.id, index: e.index, example: e.example! })),
  };
  await writeAtomic(path.join(out, 'summary.json'), summaryJson(summary));
  return summary;
}

/** summary.json: every non-finite number as null (JSON has no NaN), the machine-dependent timing left out. */
export function summaryJson(s: CompareSummary): string {
  const { timing: _timing, ...rest } = s;
  return JSON.stringify(rest, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

/** What executed a run and how long it took: everything that may differ between runs of one configuration. */
async function writeProvenance(out: string, summary: CompareSummary, execution: Record<string, unknown>): Promise<void> {
  const c = summary.config;
  const rules = Object.fromEntries(Object.entries(summary.options).flatMap(([m, o]) => (o.rules !== undefined ? [[m, o.rules]] : [])));
  const record = {
    relprop: c.relprop,
    model: c.model,
    methods: c.methods,
    rules,
    options: summary.options,
    target: 'the predicted class of each input',
    engine: engineDescription(),
    date: new Date().toISOString(),
    execution,
    timing: { msPerExplanation: summary.timing },
  };
  await writeAtomic(path.join(out, 'provenance.json'), JSON.stringify(record, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
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
  if (dataset.items.length === 0) throw new InputError('holds no inputs', dataset.spec);
  // A text removal the model has no token for ([MASK] on GPT-2) stops the run before any work.
  if (dataset.kind === 'text' && o.metrics.includes('perturbation') && (model instanceof BertModel || model instanceof GPT2Model)) textRemovalFor(model, o.textRemoval);
  // A label outside the model's classes would score every prediction of that input as wrong: refuse the file.
  for (const { line, label } of dataset.labels ?? []) {
    if (!(typeof label === 'number' && Number.isInteger(label) && label >= 0 && label < model.numClasses)) {
      throw new InputError(`line ${line}: label ${JSON.stringify(label)} is not one of the model's ${model.numClasses} classes (an integer 0–${model.numClasses - 1})`, dataset.spec);
    }
  }
  const mine = dataset.items.map((_, i) => i).filter((i) => !o.shard || i % o.shard.n === o.shard.k);
  if (mine.length === 0) throw new UsageError(`shard ${o.shard!.k}/${o.shard!.n} has no inputs: the data holds ${dataset.items.length}; use at most ${dataset.items.length} shards`);
  await fs.mkdir(o.out, { recursive: true });
  const config = runConfigOf(model, dataset, o);
  await claimFolder(o.out, config, o.shard ?? null, !!o.restart);
  const done = await readJournal(o.out);
  const journal = await fs.open(path.join(o.out, JOURNAL), 'a');
  const start = performance.now();
  let skipped = 0;
  let errors = [...done.values()].filter((e) => e.error).length;
  const examples = config.examples;
  try {
    for (const [n, i] of mine.entries()) {
      if (signal?.aborted) break;
      const id = dataset.items[i]!.id;
      if (done.has(id)) {
        skipped++;
        continue;
      }
      onProgress?.({ done: n, total: mine.length, skipped, errors, seconds: (performance.now() - start) / 1000, current: id });
      // The examples are the first inputs of the whole data set, whichever shard or worker runs them.
      const line = JSON.stringify(await evaluateItem(model, dataset, i, o, i < examples));
      await journal.write(line + '\n');
      await journal.sync();
      // What later steps read is what the journal holds, so a resumed input and a fresh one are the same value.
      const entry = JSON.parse(line) as JournalEntry;
      if (entry.error) errors++;
      done.set(id, entry);
    }
  } finally {
    await journal.close();
  }
  const finished = mine.filter((i) => done.has(dataset.items[i]!.id)).length;
  onProgress?.({ done: finished, total: mine.length, skipped, errors, seconds: (performance.now() - start) / 1000, current: '' });
  const entries = mine.flatMap((i) => {
    const e = done.get(dataset.items[i]!.id);
    return e ? [e] : [];
  });
  const missing = mine.filter((i) => !done.has(dataset.items[i]!.id)).map((i) => dataset.items[i]!.id);
  const summary = await writeOutputs(o.out, entries, config, { expected: mine.length, missing, ...(o.shard ? { shard: o.shard } : {}) });
  await writeProvenance(o.out, summary, { ...(o.shard ? { shard: `${o.shard.k}/${o.shard.n}` } : {}), seconds: (performance.now() - start) / 1000, resumed: skipped });
  return summary;
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

/**
 * Join shard outputs (their journals) into one run folder. The shards must share one configuration
 * and hold disjoint inputs; shards or inputs not there make the result incomplete (and say which).
 */
export async function mergeRuns(shards: readonly string[], out: string, execution: Record<string, unknown> = {}, options: { readonly restart?: boolean } = {}): Promise<CompareSummary> {
  if (shards.length === 0) throw new UsageError('no shard folders given');
  const runs: Array<{ dir: string; run: RunFile }> = [];
  for (const dir of shards) {
    const run = await readRunFile(dir);
    if (!run) throw new UsageError(`${dir}: not a relprop compare folder (no ${RUN_FILE})`);
    if (path.resolve(dir) === path.resolve(out)) throw new UsageError(`${dir}: the merge's --out cannot be one of its shards`);
    runs.push({ dir, run });
  }
  const first = runs[0]!;
  for (const { dir, run } of runs.slice(1)) {
    const diffs = configDifferences(first.run.config, run.config);
    if (diffs.length) throw new UsageError(`${dir} and ${first.dir} were run with different configurations (${diffs.join('; ')}); only shards of one run can be merged`);
  }
  const config = first.run.config;
  const n = first.run.shard?.n ?? 1;
  const byK = new Map<number, string>();
  for (const { dir, run } of runs) {
    const sh = run.shard ?? { k: 0, n: 1 };
    if (sh.n !== n) throw new UsageError(`${dir} is shard ${sh.k}/${sh.n} but ${first.dir} is one of ${n}: shards of different splits cannot be merged`);
    if (byK.has(sh.k)) throw new UsageError(`shard ${sh.k}/${n} given twice: ${byK.get(sh.k)} and ${dir}`);
    byK.set(sh.k, dir);
  }
  const all = new Map<string, JournalEntry>();
  const owner = new Map<string, string>();
  const missing: string[] = [];
  for (const { dir, run } of runs) {
    const sh = run.shard ?? { k: 0, n: 1 };
    for (const [id, e] of await readJournal(dir)) {
      if (e.index % n !== sh.k) throw new UsageError(`${path.join(dir, JOURNAL)}: input ${id} (index ${e.index}) does not belong to shard ${sh.k}/${n}`);
      if (owner.has(id)) throw new UsageError(`input ${id} is in both ${owner.get(id)} and ${dir}: shards must hold disjoint inputs`);
      owner.set(id, dir);
      all.set(id, e);
    }
    // A shard's own summary names what it did not finish; without one (killed before writing it), its count says how many.
    const s = await fs.readFile(path.join(dir, 'summary.json'), 'utf8').then((t) => JSON.parse(t) as Partial<CompareSummary>, () => null);
    if (s?.missing) missing.push(...s.missing.filter((id) => !all.has(id)));
    else {
      const expected = Math.ceil((config.data.count - sh.k) / n);
      const have = [...all.values()].filter((e) => e.index % n === sh.k).length;
      if (have < expected) missing.push(`${expected - have} input(s) of shard ${sh.k}/${n} (${dir} has no summary.json)`);
    }
  }
  const missingShards = Array.from({ length: n }, (_, k) => k).filter((k) => !byK.has(k)).map((k) => `${k}/${n}`);
  await fs.mkdir(out, { recursive: true });
  if (options.restart) for (const f of [RUN_FILE, ...RUN_OUTPUTS]) await fs.rm(path.join(out, f), { force: true });
  const existing = await readRunFile(out);
  if (existing) {
    const diffs = configDifferences(existing.config, config);
    if (diffs.length) throw new UsageError(`${path.join(out, RUN_FILE)}: this folder holds a run with another configuration (${diffs.join('; ')}); merge into another --out`);
  }
  await writeRunFile(out, { config, shard: null });
  const entries = [...all.values()].sort((a, b) => a.index - b.index);
  await writeAtomic(path.join(out, JOURNAL), entries.map((e) => JSON.stringify(e) + '\n').join(''));
  const summary = await writeOutputs(out, entries, config, { expected: config.data.count, missing, missingShards });
  const provenances = await Promise.all(runs.map(({ dir }) => fs.readFile(path.join(dir, 'provenance.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => null)));
  await writeProvenance(out, summary, {
    ...execution,
    merged: runs.map(({ dir, run }, i) => ({ dir: path.resolve(dir), shard: run.shard ? `${run.shard.k}/${run.shard.n}` : null, engine: provenances[i]?.['engine'] ?? null, date: provenances[i]?.['date'] ?? null, execution: provenances[i]?.['execution'] ?? null })),
  });
  return summary;
}
