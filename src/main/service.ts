// The app's backend, shared by the Electron main process and `relprop serve`:
// the model list (shipped + user-added, remembered in a settings file), the
// open inputs, and explanation jobs. The core itself runs in a worker thread
// (worker.ts), so this side stays free to answer requests while a method
// runs, and a cancel can stop a method that is in the middle of a pass.

import { createHash, randomUUID } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  ApiError,
  type Activity,
  type ActivityStep,
  type ApiMethod,
  type CompareRequest,
  type EvalStat,
  type EvalStatus,
  type EvalSummary,
  type EvaluateRequest,
  type ExportedFile,
  type JobState,
  type Measured,
  type ReportRequest,
  type ExplainRequest,
  type ExplainResult,
  type InputKind,
  type JobQuery,
  type JobStatus,
  type JobTicket,
  type MethodCatalogue,
  type ModelInfo,
  type OpenImageRequest,
  type OpenTextRequest,
  type OpenedInput,
  type ReopenRequest,
  type SkippedMethod,
} from '../shared/api.js';
import type { KnownModel, ValidationContext } from '../shared/validate.js';
import type { InputSource, ModelRef, OpenReply, WorkerEvent, WorkerReplyValue, WorkerRequest } from './protocol.js';
import type { EvalJobSpec, EvalWorkerEvent } from './eval-worker.js';
import type { CompareSummary } from '../core/eval/compare.js';
import { GUARD, stopOutsideOrt } from '../core/ort-products.js';
import type { Summary } from '../core/eval/stats.js';
import { compareReportHtml } from '../core/eval/report.js';
import { explanationReportHtml, type ReportLedger } from '../core/report/explanation-report.js';
import { assertFolderContained, assertInside } from './paths.js';

export interface ServiceOptions {
  /** The package folder: shipped models are read from its `models/`. */
  readonly packageRoot: string;
  /** Default: settingsPath(). */
  readonly settingsFile?: string;
  /** The built worker (worker.js); default: next to this module. */
  readonly workerFile?: string;
  /** Where non-fatal problems go (a settings file that cannot be read). */
  readonly log?: (message: string) => void;
  /** The built evaluation worker (eval-worker.js); default: next to this module. */
  readonly evalWorkerFile?: string;
  /** Run folders of evaluations; default: `evaluations/` next to the settings file. */
  readonly evaluationsDir?: string;
  /** Prints a report page to PDF; default: Debian's Chromium through playwright-core (the CLI's way). Electron passes its own printToPDF. */
  readonly htmlToPdf?: (html: string) => Promise<Uint8Array>;
}

/** Inputs kept open; opening more forgets the least recently used. */
const MAX_INPUTS = 6;
/** Class names listed with a model; more (a vocabulary) are not sent with every model list. */
const MAX_LISTED_LABELS = 1000;
/** Finished jobs kept for polling. */
const MAX_JOBS = 100;
/** How long a running method may take to notice a cancel before its worker is stopped. */
const CANCEL_GRACE_MS = 1500;
/**
 * Explanations one page (window) may have queued or running at once. The compute worker runs them
 * one at a time, so a page that queues more only makes every later request, its own and other
 * pages', wait longer.
 */
export const MAX_JOBS_PER_CLIENT = 4;
/** The same over all pages together. */
const MAX_JOBS_QUEUED = 16;
/** ETAs wait for this much of a method's time, so the first pass's warm-up does not set them. */
const ETA_AFTER_MS = 300;

const IMAGE_FAMILIES = new Set(['vit', 'deit']);
const TEXT_FAMILIES = new Set(['bert', 'roberta', 'distilbert', 'gpt2', 'llama', 'mistral', 'qwen2', 'gemma2', 'gemma3_text']);

/** `$RELPROP_SETTINGS`, else `$XDG_CONFIG_HOME/relprop/settings.json`, else `~/.config/relprop/settings.json`. */
export function settingsPath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['RELPROP_SETTINGS'];
  if (explicit) return path.resolve(explicit);
  const xdg = env['XDG_CONFIG_HOME'];
  // The XDG spec says relative values are invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config');
  return path.join(base, 'relprop', 'settings.json');
}

interface Settings {
  version: 1;
  /** Absolute folders the user added, in the order added. */
  models: string[];
}

interface ModelEntry {
  readonly info: ModelInfo;
  readonly numClasses: number | null;
}

interface OpenInput {
  readonly source: InputSource;
  readonly kind: InputKind;
}

interface Job {
  readonly id: string;
  /** What the report of this job shows as its input. */
  readonly opened: OpenedInput | null;
  readonly methods: readonly string[];
  state: JobStatus['state'];
  done: number;
  current: string | null;
  readonly startedAt: number;
  endedAt: number | null;
  results: ExplainResult[];
  skipped: SkippedMethod[];
  error?: string;
  /** The page that asked for it. */
  readonly client: string;
  readonly label: string;
  /** Passes of the running method (multi-pass methods), and when that method began. */
  step: ActivityStep | null;
  methodStartedAt: number;
  /** The worker request carrying it, while in flight. */
  requestId: number | null;
  /** True once the worker has begun it (cancelling then may need the worker stopped). */
  begun: boolean;
  killTimer: ReturnType<typeof setTimeout> | null;
}

type RequestMessage = DistributiveOmit<WorkerRequest, 'id'>;

interface Pending {
  resolve(value: WorkerReplyValue): void;
  reject(error: Error): void;
  /** Builds the message (again, for a fresh worker: sources are re-attached as needed). */
  build(): RequestMessage;
  jobId?: string;
  /** Set for requests that are activities of their own (opening an input, starting the worker). */
  op?: Operation;
}

/** A worker request that is not a job but may take long: listed as an activity, and cancellable. */
interface Operation {
  readonly id: string;
  readonly kind: 'open' | 'load' | 'start';
  readonly label: string;
  readonly client: string;
  readonly startedAt: number;
  readonly cancellable: boolean;
  /** Cancelled: its caller has had its answer; the worker's reply, if one comes, is dropped. */
  abandoned: boolean;
  killTimer: ReturnType<typeof setTimeout> | null;
}

type JsonObject = Record<string, unknown>;

async function readJsonObject(file: string): Promise<JsonObject> {
  const text = await fs.readFile(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the start of the text: say where, never what.
    const at = /at position (\d+)/.exec((err as Error).message);
    throw new Error(`not valid JSON${at ? ` (at character ${at[1]})` : ''}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('expected a JSON object');
  return value as JsonObject;
}

/** What a model folder is, from its config.json alone (loading weights would take seconds for big models). */
async function describeFolder(dir: string): Promise<{ kind: InputKind; family: string; labels: string[]; numClasses: number | null }> {
  let config: JsonObject;
  try {
    await assertFolderContained(dir, 'model folder');
    config = await readJsonObject(path.join(dir, 'config.json'));
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ApiError(code === 'ENOENT' ? `${dir}: not a model folder (no config.json)` : `${dir}/config.json: ${(err as Error).message}`, 'bad-request');
  }
  const family = String(config['model_type'] ?? (typeof config['architecture'] === 'string' ? 'vit' : ''));
  const kind: InputKind | null = IMAGE_FAMILIES.has(family) ? 'image' : TEXT_FAMILIES.has(family) ? 'text' : null;
  if (!kind) {
    throw new ApiError(`${dir}: unsupported model_type '${family}' (supported: ${[...IMAGE_FAMILIES, ...TEXT_FAMILIES].join(', ')})`, 'bad-request');
  }
  const files = await fs.readdir(dir);
  if (!files.some((f) => f.endsWith('.safetensors'))) throw new ApiError(`${dir}: no *.safetensors file in the folder`, 'bad-request');
  const id2label = config['id2label'];
  const labelMap = id2label && typeof id2label === 'object' && !Array.isArray(id2label) ? (id2label as JsonObject) : {};
  const declared = [config['num_labels'], config['num_classes']].find((n): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0);
  const keys = Object.keys(labelMap).map(Number).filter((k) => Number.isInteger(k) && k >= 0);
  const numClasses = declared ?? (keys.length ? Math.max(...keys) + 1 : null);
  const labels = numClasses === null ? [] : Array.from({ length: numClasses }, (_, i) => (typeof labelMap[String(i)] === 'string' ? (labelMap[String(i)] as string) : `class ${i}`));
  return { kind, family, labels, numClasses };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

interface Evaluation {
  readonly id: string;
  readonly client: string;
  readonly request: EvaluateRequest;
  readonly out: string;
  readonly modelName: string;
  state: JobState;
  done: number;
  total: number;
  resumed: number;
  errors: number;
  current: string | null;
  readonly startedAt: number;
  /** When this run took its first new input, for the ETA (resumed inputs took no time now). */
  seconds: number;
  endedAt: number | null;
  summary: CompareSummary | null;
  error?: string;
  worker: Worker | null;
  /** Its guard (ort-products.ts), so closing the service stops it outside ONNX Runtime. */
  readonly guard: Int32Array;
}

const num = (v: number): Measured => (Number.isFinite(v) ? v : null);
const stat = (s: Summary): EvalStat => ({ n: s.n, mean: num(s.mean), median: num(s.median), q1: num(s.q1), q3: num(s.q3), iqr: num(s.iqr), min: num(s.min), max: num(s.max) });
const mapValues = <A, B>(o: Record<string, A>, f: (a: A) => B): Record<string, B> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));

/** The run's summary as the API carries it: no NaN (JSON has none), no example maps (megabytes, and the report has them). */
function evalSummary(s: CompareSummary): EvalSummary {
  return {
    model: s.model,
    data: s.data,
    methods: [...s.methods],
    metrics: [...s.metrics],
    inputs: s.inputs,
    errors: s.errors.map((e) => ({ id: e.id, error: e.error })),
    perMethod: mapValues(s.perMethod, (m) => mapValues(m, stat)),
    perturbation: mapValues(s.perturbation, (m) =>
      mapValues(m, (c) => ({ fractions: [...c.fractions], accuracy: c.accuracy.map(num), probability: c.probability.map(num), aucAccuracy: num(c.aucAccuracy), aucProbability: num(c.aucProbability) })),
    ),
    agreement: s.agreement ? { names: [...s.agreement.names], median: s.agreement.median.map((r) => r.map(num)), iqr: s.agreement.iqr.map((r) => r.map(num)) } : null,
    timing: mapValues(s.timing, num),
    modelTests: mapValues(s.model_tests ?? {}, stat),
  };
}

/** Where relprop compare would write it: a folder name that is the same for the same evaluation, so running it again resumes. */
function evaluationFolder(req: EvaluateRequest): string {
  const data = req.data.kind === 'task' ? `task-${req.data.task}-${req.data.count}` : path.basename(req.data.path);
  const key = JSON.stringify({ m: req.modelId, d: req.data, x: req.methods, k: req.metrics, r: req.removal ?? null });
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  return `${req.modelId}-${data}`.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) + `-${hash}`;
}

async function defaultHtmlToPdf(html: string): Promise<Uint8Array> {
  const { htmlToPdf } = await import('../core/eval/report-pdf.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-pdf-'));
  try {
    const file = path.join(dir, 'report.pdf');
    await htmlToPdf(html, file);
    return await fs.readFile(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export class RelpropService {
  readonly settingsFile: string;
  private readonly modelsDir: string;
  private readonly workerFile: string;
  private readonly log: (message: string) => void;

  private models = new Map<string, ModelEntry>();
  private modelsLoaded: Promise<void> | null = null;
  /** Class names the worker reported once it loaded a model, by folder. */
  private readonly learnedLabels = new Map<string, string[]>();
  private catalogueCache: Promise<MethodCatalogue> | null = null;
  /** Method titles by id, for activity labels. */
  private readonly titles = new Map<string, string>();
  /** Model folders the current worker has loaded (a first open also loads the model). */
  private readonly workerModels = new Set<string>();
  private nextOperation = 1;

  private readonly inputs = new Map<string, OpenInput>();
  /** The latest opening of each (input, model), for reports. */
  private readonly openings = new Map<string, OpenedInput>();
  private readonly jobs = new Map<string, Job>();
  private readonly evaluations = new Map<string, Evaluation>();
  private readonly evalWorkerFile: string;
  private readonly evaluationsDir: string;
  private readonly printPdf: (html: string) => Promise<Uint8Array>;

  private worker: Worker | null = null;
  /** The compute worker's guard (ort-products.ts): stop requests, and whether it is inside ONNX Runtime. */
  private guard: Int32Array | null = null;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Inputs the current worker holds; a fresh worker is sent their sources again. */
  private readonly workerHas = new Set<string>();
  private closed = false;

  constructor(options: ServiceOptions) {
    this.modelsDir = path.join(options.packageRoot, 'models');
    this.settingsFile = options.settingsFile ?? settingsPath();
    this.workerFile = options.workerFile ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');
    this.log = options.log ?? ((m) => process.stderr.write(`relprop: ${m}\n`));
    this.evalWorkerFile = options.evalWorkerFile ?? path.join(path.dirname(this.workerFile), 'eval-worker.js');
    this.evaluationsDir = options.evaluationsDir ?? path.join(path.dirname(this.settingsFile), 'evaluations');
    this.printPdf = options.htmlToPdf ?? defaultHtmlToPdf;
  }

  // --- Validation ------------------------------------------------------------

  /** What the validators check requests against; waits for the model list and, where needed, the method registry. */
  async validationContext(method: ApiMethod): Promise<ValidationContext> {
    const needsCatalogue = method === 'explain' || method === 'compare' || method === 'evaluate';
    const needsModels = needsCatalogue || method === 'openImage' || method === 'openText' || method === 'reopen' || method === 'removeModel';
    const [catalogue] = await Promise.all([needsCatalogue ? this.listMethods() : null, needsModels ? this.ensureModels() : null]);
    const known = new Map<string, KnownModel>();
    for (const [id, e] of this.models) {
      known.set(id, { kind: e.info.kind, numClasses: e.info.labels.length || e.numClasses, ...(e.info.problem ? { problem: e.info.problem } : {}) });
    }
    return {
      methodIds: catalogue?.methods.map((m) => m.id) ?? [],
      ruleSetIds: catalogue?.ruleSets.map((r) => r.id) ?? [],
      models: known,
      isDirectory,
      isFile,
    };
  }

  // --- Models -------------------------------------------------------------------

  private ensureModels(): Promise<void> {
    this.modelsLoaded ??= this.refreshModels();
    return this.modelsLoaded;
  }

  private async readSettings(): Promise<Settings> {
    let raw: JsonObject;
    try {
      raw = await readJsonObject(this.settingsFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`ignoring the settings file ${this.settingsFile}: ${(err as Error).message}`);
      return { version: 1, models: [] };
    }
    const list = Array.isArray(raw['models']) ? raw['models'] : [];
    return { version: 1, models: list.filter((p): p is string => typeof p === 'string' && path.isAbsolute(p) && !p.includes('\u0000')) };
  }

  private async writeSettings(settings: Settings): Promise<void> {
    await fs.mkdir(path.dirname(this.settingsFile), { recursive: true });
    // Write then rename, so a crash mid-write never leaves a half file that loses every added model.
    const tmp = `${this.settingsFile}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(settings, null, 2) + '\n');
    await fs.rename(tmp, this.settingsFile);
  }

  private async entryFor(id: string, dir: string, source: ModelInfo['source']): Promise<ModelEntry> {
    const name = path.basename(dir);
    try {
      const d = await describeFolder(dir);
      const labels = this.learnedLabels.get(dir) ?? d.labels;
      return { info: { id, name, path: dir, source, kind: d.kind, family: d.family, labels }, numClasses: labels.length || d.numClasses };
    } catch (err) {
      const problem = isDirectory(dir) ? (err as Error).message : 'the folder no longer exists';
      return { info: { id, name, path: dir, source, kind: 'image', family: '', labels: [], problem }, numClasses: null };
    }
  }

  private async refreshModels(): Promise<void> {
    const next = new Map<string, ModelEntry>();
    let shipped: string[] = [];
    try {
      shipped = (await fs.readdir(this.modelsDir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
    } catch {
      // No models/ folder (a trimmed install): only added models.
    }
    for (const name of shipped) {
      const dir = path.join(this.modelsDir, name);
      const entry = await this.entryFor(name, dir, 'shipped');
      // A folder without a usable config is work in progress (a model being trained), not a shipped model.
      if (!entry.info.problem) next.set(name, entry);
    }
    for (const dir of (await this.readSettings()).models) {
      const base = `user/${path.basename(dir)}`;
      let id = base;
      for (let n = 2; next.has(id); n++) id = `${base}-${n}`;
      next.set(id, await this.entryFor(id, dir, 'added'));
    }
    this.models = next;
  }

  async listModels(): Promise<ModelInfo[]> {
    this.modelsLoaded = this.refreshModels();
    await this.modelsLoaded;
    return [...this.models.values()].map((e) => e.info);
  }

  /** `folder` has been validated as an absolute existing folder. */
  async addModel(folder: string, client = 'local'): Promise<ModelInfo> {
    const dir = await fs.realpath(folder);
    await describeFolder(dir); // refuses what is not a model folder, with the reason
    await this.ensureModels();
    const existing = [...this.models.values()].find((e) => e.info.path === dir);
    if (existing && !existing.info.problem) return existing.info;
    // Loaded once before it is remembered: a folder whose weights do not load is neither kept nor offered.
    try {
      await this.request(() => ({ type: 'load', model: { id: `user/${path.basename(dir)}`, dir } }), undefined, undefined, this.operation('load', `Loading the model in ${path.basename(dir)}`, client, true));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'cancelled') throw err;
      throw new ApiError(`${dir}: the model does not load, so it was not added: ${(err as Error).message}`, 'bad-request');
    }
    const settings = await this.readSettings();
    if (!settings.models.includes(dir)) {
      settings.models.push(dir);
      await this.writeSettings(settings);
    }
    await this.listModels();
    const added = [...this.models.values()].find((e) => e.info.path === dir);
    if (!added) throw new ApiError(`${dir}: the model could not be added`);
    return added.info;
  }

  /** `modelId` has been validated as an added model's id. */
  async removeModel(modelId: string): Promise<ModelInfo[]> {
    const dir = this.models.get(modelId)?.info.path;
    const settings = await this.readSettings();
    const kept = settings.models.filter((p) => p !== dir);
    if (kept.length !== settings.models.length) await this.writeSettings({ ...settings, models: kept });
    return this.listModels();
  }

  private modelRef(modelId: string): { ref: ModelRef; info: ModelInfo } {
    const e = this.models.get(modelId);
    if (!e) throw new ApiError(`unknown model '${modelId}'`, 'not-found');
    return { ref: { id: modelId, dir: e.info.path }, info: e.info };
  }

  // --- Methods ------------------------------------------------------------------

  listMethods(): Promise<MethodCatalogue> {
    if (!this.catalogueCache) {
      const started = this.worker === null;
      this.catalogueCache = this.request(() => ({ type: 'catalogue' }), undefined, undefined, started ? this.operation('start', 'Starting the compute worker', 'service', false) : undefined) as Promise<MethodCatalogue>;
      this.catalogueCache.then(
        (c) => c.methods.forEach((m) => this.titles.set(m.id, m.title)),
        () => (this.catalogueCache = null),
      );
    }
    return this.catalogueCache;
  }

  // --- Inputs ------------------------------------------------------------------

  async openImage(req: OpenImageRequest, client = 'local'): Promise<OpenedInput> {
    const bytes = Buffer.from(req.bytes, 'base64');
    return this.open(randomUUID(), req.modelId, { kind: 'image', name: req.name, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }, client);
  }

  async openText(req: OpenTextRequest, client = 'local'): Promise<OpenedInput> {
    return this.open(randomUUID(), req.modelId, { kind: 'text', name: 'text', text: req.text }, client);
  }

  async reopen(req: ReopenRequest, client = 'local'): Promise<OpenedInput> {
    const input = this.input(req.inputId);
    return this.open(req.inputId, req.modelId, input.source, client);
  }

  private input(inputId: string): OpenInput {
    const input = this.inputs.get(inputId);
    if (!input) throw new ApiError('this input is no longer open (only the latest few are kept); open it again', 'not-found');
    // Most recently used last, so eviction drops the oldest.
    this.inputs.delete(inputId);
    this.inputs.set(inputId, input);
    return input;
  }

  private checkKind(modelId: string, kind: InputKind): ModelRef {
    const { ref, info } = this.modelRef(modelId);
    if (info.kind !== kind) throw new ApiError(`model '${modelId}' takes ${info.kind === 'image' ? 'images' : 'text'}, and this input is ${kind === 'image' ? 'an image' : 'text'}`, 'bad-request');
    return ref;
  }

  private async open(inputId: string, modelId: string, source: InputSource, client: string): Promise<OpenedInput> {
    const ref = this.checkKind(modelId, source.kind);
    // Checked on every use, not only when added: a link may have been planted since.
    await assertFolderContained(ref.dir, 'model folder');
    const what = source.kind === 'image' ? source.name : 'the sentence';
    const modelName = this.models.get(modelId)?.info.name ?? modelId;
    const label = this.workerModels.has(ref.dir) ? `Opening ${what} with ${modelName}` : `Loading ${modelName}, then opening ${what}`;
    let reply: OpenReply;
    try {
      reply = (await this.request(() => ({ type: 'open', inputId, model: ref, ...this.sourceIfNeeded(inputId, source) }), undefined, undefined, this.operation('open', label, client, true))) as OpenReply;
      this.workerModels.add(ref.dir);
    } catch (err) {
      // The worker drops a source it could not open; sending it again next time is harmless.
      this.workerHas.delete(inputId);
      throw err;
    }
    if (!this.inputs.has(inputId)) {
      this.inputs.set(inputId, { source, kind: source.kind });
      this.evictInputs();
    }
    this.learnLabels(ref, reply.labels);
    const opened: OpenedInput = { inputId, modelId, ...reply.opened };
    this.openings.set(`${inputId}\u0000${modelId}`, opened);
    return opened;
  }

  private sourceIfNeeded(inputId: string, source: InputSource): { source?: InputSource } {
    if (this.workerHas.has(inputId)) return {};
    this.workerHas.add(inputId);
    return { source };
  }

  private evictInputs(): void {
    while (this.inputs.size > MAX_INPUTS) {
      const oldest = this.inputs.keys().next().value as string;
      this.inputs.delete(oldest);
      this.workerHas.delete(oldest);
      for (const k of [...this.openings.keys()]) if (k.startsWith(`${oldest}\u0000`)) this.openings.delete(k);
      this.worker?.postMessage({ type: 'forget', inputId: oldest });
    }
  }

  private learnLabels(ref: ModelRef, labels: string[]): void {
    // A decoder's classes are its vocabulary (50k token texts): every model list would carry them,
    // so only the count is kept; predictions and results name their own classes anyway.
    const shown = labels.length > MAX_LISTED_LABELS ? [] : labels;
    this.learnedLabels.set(ref.dir, shown);
    const e = this.models.get(ref.id);
    if (e && (e.numClasses !== labels.length || e.info.labels.length !== shown.length)) this.models.set(ref.id, { info: { ...e.info, labels: shown }, numClasses: labels.length });
  }

  // --- Jobs ---------------------------------------------------------------------

  explain(req: ExplainRequest, client = 'local'): Promise<JobTicket> {
    const { method, ...rest } = req;
    return this.compare({ ...rest, methods: [method] }, client);
  }

  async compare(req: CompareRequest, client = 'local'): Promise<JobTicket> {
    const input = this.input(req.inputId);
    const ref = this.checkKind(req.modelId, input.kind);
    const live = [...this.jobs.values()].filter((j) => j.state === 'queued' || j.state === 'running');
    if (live.filter((j) => j.client === client).length >= MAX_JOBS_PER_CLIENT) {
      throw new ApiError(`this window already has ${MAX_JOBS_PER_CLIENT} explanations queued or running: wait for one to finish, or cancel one`, 'unavailable');
    }
    if (live.length >= MAX_JOBS_QUEUED) throw new ApiError(`${MAX_JOBS_QUEUED} explanations are queued or running: wait for one to finish, or cancel one`, 'unavailable');
    const opened = this.openings.get(`${req.inputId}\u0000${req.modelId}`) ?? null;
    const on = opened ? ` ${opened.preview.kind === 'image' ? opened.name : 'the sentence'}` : '';
    const job: Job = {
      id: randomUUID(),
      opened: this.openings.get(`${req.inputId}\u0000${req.modelId}`) ?? null,
      methods: req.methods,
      state: 'queued',
      done: 0,
      current: null,
      startedAt: Date.now(),
      endedAt: null,
      results: [],
      skipped: [],
      requestId: null,
      begun: false,
      killTimer: null,
      client,
      label: req.methods.length === 1 ? `Explaining${on} with ${this.titles.get(req.methods[0]!) ?? req.methods[0]}` : `Comparing ${req.methods.length} methods on${on || ' the input'}`,
      step: null,
      methodStartedAt: Date.now(),
    };
    this.jobs.set(job.id, job);
    this.pruneJobs();
    const reply = this.request(
      () => ({
        type: 'explain',
        jobId: job.id,
        inputId: req.inputId,
        model: ref,
        ...this.sourceIfNeeded(req.inputId, input.source),
        methods: req.methods,
        ...(req.target !== undefined ? { target: req.target } : {}),
        ...(req.contrast !== undefined ? { contrast: req.contrast } : {}),
        options: req.options ?? {},
      }),
      (id) => (job.requestId = id),
      job.id,
    );
    reply.then(
      (value) => {
        this.endJob(job, 'cancelled' in value && value.cancelled ? 'cancelled' : 'done');
      },
      (err: Error) => this.endJob(job, 'failed', err.message),
    );
    return { jobId: job.id };
  }

  private endJob(job: Job, state: 'done' | 'failed' | 'cancelled', error?: string): void {
    if (job.killTimer) clearTimeout(job.killTimer);
    job.killTimer = null;
    job.requestId = null;
    job.current = null;
    // A job the user cancelled stays cancelled, whatever its request then reports.
    if (job.state === 'cancelled') return;
    job.state = state;
    job.endedAt = Date.now();
    if (error !== undefined) job.error = error;
  }

  private pruneJobs(): void {
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= MAX_JOBS) break;
      if (j.state !== 'queued' && j.state !== 'running') this.jobs.delete(id);
    }
  }

  private getJob(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new ApiError(`unknown job '${id}'`, 'not-found');
    return job;
  }

  job(query: JobQuery): JobStatus {
    const job = this.getJob(query.id);
    return {
      id: job.id,
      state: job.state,
      done: job.done,
      total: job.methods.length,
      current: job.current,
      elapsedMs: (job.endedAt ?? Date.now()) - job.startedAt,
      results: job.results.slice(query.from ?? 0),
      ...(job.skipped.length ? { skipped: job.skipped } : {}),
      ...(job.error !== undefined ? { error: job.error } : {}),
      ...(job.step && job.state === 'running' ? { step: { ...job.step } } : {}),
      ...(this.jobEta(job) !== null ? { etaMs: this.jobEta(job)! } : {}),
    };
  }

  /** Time left in the running method: its time per pass so far, times the passes left. */
  private jobEta(job: Job): number | null {
    const step = job.step;
    if (job.state !== 'running' || !step || step.done === 0) return null;
    const spent = Date.now() - job.methodStartedAt;
    if (spent < ETA_AFTER_MS) return null;
    return (spent / step.done) * (step.total - step.done);
  }

  // --- Activity -------------------------------------------------------------------

  private operation(kind: Operation['kind'], label: string, client: string, cancellable: boolean): Operation {
    return { id: `op-${this.nextOperation++}`, kind, label, client, startedAt: Date.now(), cancellable, abandoned: false, killTimer: null };
  }

  /** Everything long under way, oldest first, with `mine` set for the asking page's own. */
  activity(client = 'local'): Activity[] {
    const now = Date.now();
    const out: Activity[] = [];
    for (const ev of this.evaluations.values()) {
      if (ev.state !== 'running' && ev.state !== 'queued') continue;
      const st = this.evaluation(ev.id);
      out.push({
        id: ev.id,
        kind: 'evaluate',
        label: `Evaluating ${ev.modelName} on ${ev.request.data.kind === 'task' ? `${ev.request.data.count} samples of the ${ev.request.data.task} task` : path.basename(ev.request.data.path)}`,
        state: 'running',
        done: st.done,
        total: st.total,
        unit: 'inputs',
        current: st.current,
        step: null,
        elapsedMs: st.elapsedMs,
        etaMs: st.etaMs,
        cancellable: true,
        mine: ev.client === client,
      });
    }
    const current = this.guard ? Atomics.load(this.guard, GUARD.current) : 0;
    for (const [requestId, p] of this.pending) {
      const op = p.op;
      if (!op || op.abandoned) continue;
      out.push({ id: op.id, kind: op.kind, label: op.label, state: op.kind === 'start' || requestId === current ? 'running' : 'queued', done: 0, total: 0, unit: null, current: null, step: null, elapsedMs: now - op.startedAt, etaMs: null, cancellable: op.cancellable, mine: op.client === client });
    }
    for (const job of this.jobs.values()) {
      if (job.state !== 'queued' && job.state !== 'running') continue;
      out.push({
        id: job.id,
        kind: 'explain',
        label: job.label,
        state: job.state,
        done: job.done,
        total: job.methods.length,
        unit: 'methods',
        current: job.current ? (this.titles.get(job.current) ?? job.current) : null,
        step: job.step && job.state === 'running' ? { ...job.step } : null,
        elapsedMs: now - job.startedAt,
        etaMs: this.jobEta(job),
        cancellable: true,
        mine: job.client === client,
      });
    }
    return out;
  }

  /** A page (re)loaded under this client id: what its earlier life left running, nobody follows now. */
  attach(client = 'local'): Activity[] {
    this.detach(client);
    return this.activity(client);
  }

  /**
   * The page is gone: its explanations and openings are cancelled, so that they do not hold the one
   * compute worker for requests nobody will read. Its evaluations go on (they run in a worker of
   * their own, take long, and a reloaded page reattaches to them).
   */
  detach(client = 'local'): null {
    for (const job of this.jobs.values()) if (job.client === client && (job.state === 'queued' || job.state === 'running')) this.cancel(job.id);
    for (const p of this.pending.values()) if (p.op && p.op.client === client && p.op.cancellable && !p.op.abandoned) this.cancel(p.op.id);
    return null;
  }

  cancel(id: string): { id: string; state: JobState } {
    if (id.startsWith('op-')) return this.cancelOperation(id);
    const ev = this.evaluations.get(id);
    if (ev) {
      if (ev.state === 'queued' || ev.state === 'running') {
        ev.state = 'cancelled';
        ev.endedAt = Date.now();
        // The worker stops between inputs; its journal keeps what was done.
        ev.worker?.postMessage({ type: 'cancel' });
      }
      return { id, state: ev.state };
    }
    const job = this.getJob(id);
    if (job.state === 'queued' || job.state === 'running') {
      job.state = 'cancelled';
      job.endedAt = Date.now();
      job.current = null;
      this.worker?.postMessage({ type: 'cancel', jobId: id });
      // A running method stops at its next product (ort-products.ts); if it does not, its worker is stopped.
      if (job.begun && job.requestId !== null && this.guard) Atomics.store(this.guard, GUARD.stop, job.requestId);
      if (job.begun) this.armKill(job);
    }
    return { id, state: job.state };
  }

  /**
   * Opening an input (and loading its model) is one worker request: its caller is answered
   * "cancelled" at once; queued, the worker skips it; running, the guard stops it at its next
   * product, and if it does not stop in time its worker is replaced (later requests are sent again).
   */
  private cancelOperation(id: string): { id: string; state: JobState } {
    const entry = [...this.pending.entries()].find(([, p]) => p.op?.id === id);
    if (!entry) throw new ApiError(`unknown or finished operation '${id}'`, 'not-found');
    const [requestId, p] = entry;
    const op = p.op!;
    if (!op.cancellable) throw new ApiError(`${op.label} cannot be cancelled`, 'bad-request');
    if (op.abandoned) return { id, state: 'cancelled' };
    op.abandoned = true;
    p.reject(new ApiError('cancelled', 'cancelled'));
    const running = this.guard !== null && Atomics.load(this.guard, GUARD.current) === requestId;
    if (!running) {
      this.worker?.postMessage({ type: 'drop', requestId });
    } else {
      Atomics.store(this.guard!, GUARD.stop, requestId);
      op.killTimer = setTimeout(() => {
        op.killTimer = null;
        if (this.pending.get(requestId) === p) this.restartWorker(requestId);
      }, CANCEL_GRACE_MS);
      op.killTimer.unref?.();
    }
    return { id, state: 'cancelled' };
  }

  // --- Evaluations ----------------------------------------------------------------

  async evaluate(req: EvaluateRequest, client = 'local'): Promise<JobTicket> {
    const running = [...this.evaluations.values()].find((e) => e.state === 'running' || e.state === 'queued');
    if (running) throw new ApiError(`an evaluation is already running (${path.basename(running.out)}): it is listed with a Cancel button in the activity bar at the top`, 'unavailable');
    const { ref, info } = this.modelRef(req.modelId);
    await assertFolderContained(ref.dir, 'model folder');
    if (req.data.kind === 'path') {
      const p = req.data.path;
      if (isDirectory(p)) await assertFolderContained(p, 'data folder');
      else await assertInside(path.dirname(p), p, 'data folder');
      if (req.data.masks) await assertFolderContained(req.data.masks, 'masks folder');
    }
    const out = path.join(this.evaluationsDir, evaluationFolder(req));
    if (req.restart) await fs.rm(out, { recursive: true, force: true });
    await fs.mkdir(out, { recursive: true });
    const spec: EvalJobSpec = {
      modelDir: ref.dir,
      modelName: info.name,
      data: req.data.kind === 'task' ? `task:${req.data.task}:${req.data.count}` : req.data.path,
      ...(req.data.kind === 'path' && req.data.masks ? { masks: req.data.masks } : {}),
      methods: req.methods,
      metrics: req.metrics,
      ...(req.removal ? { removal: req.removal } : {}),
      out,
    };
    const ev: Evaluation = {
      id: randomUUID(),
      client,
      request: req,
      out,
      modelName: info.name,
      state: 'running',
      done: 0,
      total: req.data.kind === 'task' ? req.data.count : 0,
      resumed: 0,
      errors: 0,
      current: null,
      startedAt: Date.now(),
      seconds: 0,
      endedAt: null,
      summary: null,
      worker: null,
      guard: new Int32Array(new SharedArrayBuffer(GUARD.length * 4)),
    };
    this.evaluations.set(ev.id, ev);
    const worker = new Worker(this.evalWorkerFile, { workerData: { ...spec, guard: ev.guard.buffer } });
    worker.unref();
    ev.worker = worker;
    const end = (state: 'done' | 'failed' | 'cancelled', error?: string) => {
      ev.worker = null;
      ev.current = null;
      if (ev.endedAt === null) ev.endedAt = Date.now();
      // A cancelled evaluation stays cancelled whatever the worker then says.
      if (ev.state === 'cancelled') return;
      ev.state = state;
      if (error !== undefined) ev.error = error;
    };
    worker.on('message', (e: EvalWorkerEvent) => {
      if (e.type === 'progress') {
        ev.done = e.done;
        ev.total = e.total;
        ev.resumed = e.skipped;
        ev.errors = e.errors;
        ev.current = e.current || null;
        ev.seconds = e.seconds;
      } else if (e.type === 'done') {
        ev.summary = e.summary;
        end(e.aborted ? 'cancelled' : 'done');
        void worker.terminate();
      } else {
        end('failed', e.error);
        void worker.terminate();
      }
    });
    worker.on('error', (err) => end('failed', `the evaluation worker failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (ev.worker === worker) end('failed', `the evaluation worker exited (code ${code}); run it again to resume`);
    });
    return { jobId: ev.id };
  }

  evaluation(id: string): EvalStatus {
    const ev = this.evaluations.get(id);
    if (!ev) throw new ApiError(`unknown evaluation '${id}'`, 'not-found');
    // Time per new input so far, times the inputs left; resumed inputs cost nothing now.
    const fresh = ev.done - ev.resumed;
    const etaMs = ev.state === 'running' && fresh >= 2 ? (ev.seconds / fresh) * (ev.total - ev.done) * 1000 : null;
    return {
      id,
      state: ev.state,
      done: ev.done,
      total: ev.total,
      resumed: ev.resumed,
      errors: ev.errors,
      current: ev.current,
      elapsedMs: (ev.endedAt ?? Date.now()) - ev.startedAt,
      etaMs,
      out: ev.out,
      request: ev.request,
      summary: ev.summary ? evalSummary(ev.summary) : null,
      ...(ev.error !== undefined ? { error: ev.error } : {}),
    };
  }

  // --- Reports --------------------------------------------------------------------

  async exportReport(req: ReportRequest): Promise<ExportedFile> {
    let html: string;
    let base: string;
    if (req.source.kind === 'evaluation') {
      const ev = this.evaluations.get(req.source.id);
      if (!ev) throw new ApiError(`unknown evaluation '${req.source.id}'`, 'not-found');
      if (!ev.summary) throw new ApiError('this evaluation has no results yet', 'bad-request');
      html = compareReportHtml(ev.summary, { title: `relprop compare: ${ev.modelName}` });
      base = `relprop-evaluation-${ev.modelName}`;
    } else {
      const job = this.getJob(req.source.id);
      if (!job.opened) throw new ApiError('this explanation has no input to report on', 'bad-request');
      if (job.results.length === 0) throw new ApiError('this explanation has no results yet', 'bad-request');
      html = explanationReportHtml(this.reportInput(job, job.opened));
      // Which view made it, so an explanation and a compare grid of the same input do not share a name.
      const view = job.methods.length > 1 ? 'compare' : `${job.methods[0]}${job.results[0]?.layers ? '-layers' : ''}`;
      base = `relprop-${job.opened.name.replace(/\.[^.]*$/, '')}-${view}`;
    }
    base = base.replace(/[^\w.-]+/g, '_').slice(0, 100);
    if (req.format === 'html') return { name: `${base}.html`, mime: 'text/html', base64: Buffer.from(html, 'utf8').toString('base64') };
    const pdf = await this.printPdf(html);
    return { name: `${base}.pdf`, mime: 'application/pdf', base64: Buffer.from(pdf).toString('base64') };
  }

  private reportInput(job: Job, opened: OpenedInput): Parameters<typeof explanationReportHtml>[0] {
    const first = job.results[0]!;
    const model = this.models.get(opened.modelId)?.info.name ?? opened.modelId;
    const ledger = (l: ExplainResult['ledger']): ReportLedger | null =>
      l && { tolerance: l.tolerance, conserved: l.conserved, exempt: l.exempt, largestDrift: l.largestDrift, largestDriftLayer: l.largestDriftLayer, rows: l.rows };
    return {
      model,
      input: opened.preview.kind === 'image' ? { kind: 'image', name: opened.name, png: opened.preview.png } : { kind: 'text', name: opened.name, text: opened.preview.text },
      prediction: opened.prediction,
      target: { classId: first.target, label: first.targetLabel },
      ...(first.contrast ? { contrast: first.contrast } : {}),
      results: job.results.map((r) => ({
        method: r.method,
        title: r.methodTitle,
        ms: r.ms,
        signed: r.signed,
        ...(r.kind === 'image' ? { overlayPng: r.overlayPng } : { words: r.words }),
        ledger: ledger(r.ledger),
        ...(r.layers ? { layers: r.layers.map((l) => ({ layer: l.layer, total: l.total, ...(l.overlayPng ? { overlayPng: l.overlayPng } : {}), ...(l.words ? { words: l.words } : {}) })) } : {}),
      })),
    };
  }

  /** A method cannot look at messages mid-pass; if it does not stop soon, stop its worker. */
  private armKill(job: Job): void {
    if (job.killTimer || job.requestId === null) return;
    job.killTimer = setTimeout(() => {
      job.killTimer = null;
      if (job.requestId !== null && this.pending.has(job.requestId)) this.restartWorker(job.requestId);
    }, CANCEL_GRACE_MS);
    job.killTimer.unref?.();
  }

  private onEvent(event: WorkerEvent): void {
    if (event.type === 'reply') {
      const p = this.pending.get(event.id);
      if (!p) return;
      this.pending.delete(event.id);
      if (p.op?.killTimer) clearTimeout(p.op.killTimer);
      if (event.ok) p.resolve(event.value);
      else p.reject(new ApiError(event.error, event.code));
      return;
    }
    const job = this.jobs.get(event.jobId);
    if (!job) return;
    if (event.type === 'started') {
      job.begun = true;
      if (job.state === 'cancelled') this.armKill(job);
      else job.state = 'running';
    } else if (job.state !== 'cancelled') {
      if (event.type === 'progress') {
        job.done = event.done;
        job.current = event.current;
        job.step = null;
        job.methodStartedAt = Date.now();
      } else if (event.type === 'step') {
        job.step = { done: event.done, total: event.total };
      } else if (event.type === 'skipped') {
        job.skipped.push(event.skipped);
      } else {
        job.results.push(event.result);
      }
    }
  }

  // --- The worker ---------------------------------------------------------------

  private ensureWorker(): Worker {
    if (this.closed) throw new ApiError('the relprop service has stopped', 'unavailable');
    if (this.worker) return this.worker;
    const guard = new Int32Array(new SharedArrayBuffer(GUARD.length * 4));
    const worker = new Worker(this.workerFile, { workerData: { guard: guard.buffer } });
    this.guard = guard;
    // The HTTP server or the app window keeps the process alive; an idle worker should not.
    worker.unref();
    worker.on('message', (event: WorkerEvent) => this.onEvent(event));
    worker.on('error', (err) => {
      if (this.worker === worker) this.workerGone(`the compute worker failed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.workerGone(`the compute worker exited (code ${code})`);
    });
    this.worker = worker;
    return worker;
  }

  private workerGone(reason: string): void {
    this.worker = null;
    this.guard = null;
    this.workerHas.clear();
    this.workerModels.clear();
    this.catalogueCache = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new ApiError(reason));
  }

  /**
   * Stop a worker stuck in a cancelled job's method. Requests queued behind it did nothing wrong:
   * they are sent again, in order, to a fresh worker (which is sent the inputs' sources anew).
   */
  private restartWorker(cancelledRequest: number): void {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    this.workerHas.clear();
    this.workerModels.clear();
    void stopWorker(worker, this.guard);
    this.guard = null;
    const stopped = this.pending.get(cancelledRequest);
    this.pending.delete(cancelledRequest);
    stopped?.reject(new ApiError('cancelled'));
    for (const [id, p] of this.pending) {
      if (p.op?.abandoned || (p.jobId && this.jobs.get(p.jobId)?.state === 'cancelled')) {
        this.pending.delete(id);
        p.reject(new ApiError('cancelled'));
        continue;
      }
      if (p.jobId) {
        const job = this.jobs.get(p.jobId);
        // Nothing queued behind the running job has begun, but make a resent job start clean regardless.
        if (job) {
          job.results.length = 0;
          job.skipped.length = 0;
          job.done = 0;
          job.begun = false;
        }
      }
      this.ensureWorker().postMessage({ ...p.build(), id });
    }
  }

  private request(build: () => RequestMessage, onId?: (id: number) => void, jobId?: string, op?: Operation): Promise<WorkerReplyValue> {
    return new Promise<WorkerReplyValue>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = this.ensureWorker();
      } catch (err) {
        reject(err as Error);
        return;
      }
      const id = this.nextRequestId++;
      this.pending.set(id, { resolve, reject, build, ...(jobId !== undefined ? { jobId } : {}), ...(op ? { op } : {}) });
      onId?.(id);
      worker.postMessage({ ...build(), id });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const ev of this.evaluations.values()) {
      const w = ev.worker;
      if (w) {
        ev.worker = null;
        await stopWorker(w, ev.guard);
      }
    }
    const worker = this.worker;
    const guard = this.guard;
    if (worker) {
      this.workerGone('the relprop service has stopped');
      await stopWorker(worker, guard);
    }
  }
}

/** Terminate a compute worker once it is outside ONNX Runtime (terminating it inside aborts the process). */
async function stopWorker(worker: Worker, guard: Int32Array | null): Promise<void> {
  if (guard) await stopOutsideOrt(guard);
  await worker.terminate();
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
