// The one contract between the main process, the preload, `relprop serve` and
// the renderer. The renderer must only ever depend on this interface, never on
// how it is carried (IPC in the desktop app, HTTP in web mode), so both can
// stand in. Every request is validated on arrival by ./validate.ts.
//
// Plain data only (no typed arrays, no class instances, no NaN): the same
// values must survive both structured clone (IPC) and JSON (HTTP).

import { enumValues, type OptionName, type OptionValues } from '../core/methods/options.js';

export interface VersionInfo {
  app: string;
  /** Empty in web mode. */
  electron: string;
  node: string;
}

export type InputKind = 'image' | 'text';

export interface ModelInfo {
  /** Stable across runs: the folder name for shipped models, `user/<folder name>` for added ones. */
  id: string;
  name: string;
  /** Absolute folder path. */
  path: string;
  source: 'shipped' | 'added';
  kind: InputKind;
  /** config.json's model_type (vit, deit, bert, …). */
  family: string;
  /** Class names by class id; empty when the config does not say (they are known once the model is loaded). */
  labels: string[];
  /** Why the model cannot be used right now (folder gone, config unreadable); absent when usable. */
  problem?: string;
}

export type MapSpace = 'patch' | 'pixel' | 'token';

/** The method options, as the schema defines them (core/methods/options.ts). */
export type MethodOptionName = OptionName;

export interface MethodInfo {
  id: string;
  title: string;
  reference: string;
  /** False when the map does not depend on the class explained (raw attention, rollout). */
  targetDependent: boolean;
  /** Signed maps (evidence for and against) are drawn with a diverging colormap. */
  signed: boolean;
  options: MethodOptionName[];
}

export interface RuleSetInfo {
  id: string;
  description: string;
}

export interface MethodCatalogue {
  methods: MethodInfo[];
  ruleSets: RuleSetInfo[];
  colormaps: ColormapId[];
}

export type ColormapId = 'jet' | 'viridis' | 'inferno' | 'gray' | 'bwr' | 'rdbu';
export const COLORMAP_IDS: readonly ColormapId[] = ['jet', 'viridis', 'inferno', 'gray', 'bwr', 'rdbu'];
/** Colormaps centred on 0, for signed maps. */
export const DIVERGING_COLORMAPS: readonly ColormapId[] = ['bwr', 'rdbu'];

export type OcclusionModeId = NonNullable<OptionValues['occlusion']>;
export const OCCLUSION_MODES: readonly OcclusionModeId[] = enumValues('occlusion');

// --- Inputs ------------------------------------------------------------------

export interface OpenImageRequest {
  modelId: string;
  /** File name, for messages only. */
  name: string;
  /** The file's bytes, base64 (no data: prefix). */
  bytes: string;
}

export interface OpenTextRequest {
  modelId: string;
  text: string;
}

/** Run an open input through another model (its preprocessing, its prediction). */
export interface ReopenRequest {
  inputId: string;
  modelId: string;
}

export interface ClassScore {
  classId: number;
  label: string;
  probability: number;
}

export interface ImagePreview {
  kind: 'image';
  /** The picture the overlays are drawn on (the model's view when it crops), as a PNG data URL. */
  png: string;
  width: number;
  height: number;
  /** The file's own size, before any resize. */
  originalWidth: number;
  originalHeight: number;
}

export interface TextToken {
  token: string;
  /** UTF-16 offsets into the text; [0, 0] for the tokens the tokenizer adds. */
  start: number;
  end: number;
  special: boolean;
  /** Index into `words`, or null for [CLS]/[SEP]. */
  word: number | null;
}

export interface TextWord {
  text: string;
  start: number;
  end: number;
}

export interface TextPreview {
  kind: 'text';
  text: string;
  tokens: TextToken[];
  words: TextWord[];
  /** True when the text was longer than the model takes and its end was dropped. */
  truncated: boolean;
}

export interface OpenedInput {
  inputId: string;
  modelId: string;
  kind: InputKind;
  name: string;
  preview: ImagePreview | TextPreview;
  /** The five most probable classes (fewer when the model has fewer), most probable first. */
  prediction: ClassScore[];
  /** Non-fatal findings (truncated text, unused tensors in the checkpoint). */
  warnings: string[];
}

// --- Explanations ------------------------------------------------------------

type Settable<T> = { -readonly [K in keyof T]: T[K] };

/** The method options (each method reads those it lists; ranges as the CLI's flags) and the app-only settings. */
export interface ExplainOptions extends Settable<OptionValues> {
  /** Overlay look for `overlayPng` (default: bwr for signed methods, jet otherwise). */
  colormap?: ColormapId;
  /** Overlay opacity 0..1 (default 0.5). */
  alpha?: number;
  /** Also return the per-layer attention relevance maps (methods with a relevance pass only; the Layers view). */
  layers?: boolean;
}

export interface ExplainRequest {
  inputId: string;
  modelId: string;
  method: string;
  /** Class to explain; default: the predicted class. */
  target?: number;
  /** Explain logit(target) − logit(contrast) instead ("why A rather than B"; a next token for decoders). */
  contrast?: number;
  options?: ExplainOptions;
}

export interface CompareRequest {
  inputId: string;
  modelId: string;
  /** Run in this order on one shared forward pass. */
  methods: string[];
  target?: number;
  contrast?: number;
  options?: ExplainOptions;
}

export interface LedgerRow {
  layer: string;
  kind: string;
  depth: number;
  relevanceIn: number;
  relevanceOut: number;
  branches?: number[];
  /** Relative drift |out − in| / |in| (for the attention products, the worst operand). */
  drift: number;
  /** The rule set does not claim conservation here (AttnLRP's softmax): drift is not a violation. */
  expected?: true;
  /** float32's resolution at this boundary, relative like `drift`: smaller drifts are rounding, not a violation. */
  resolution: number;
}

export interface LedgerSummary {
  /** The tolerance `conserved` is judged at. */
  tolerance: number;
  /** Every boundary the rule set claims to conserve is within the tolerance (or float32's resolution there). */
  conserved: boolean;
  /** Boundaries the rule set does not claim to conserve, left out of `conserved`. */
  exempt: number;
  largestDrift: number;
  largestDriftLayer: string;
  /** Relevance total entering the first boundary (the head) and leaving the last. */
  first: { layer: string; relevance: number };
  last: { layer: string; relevance: number };
  rows: LedgerRow[];
  /**
   * Set when `conserved` is false and the rule set does not claim conservation there by design (the
   * paper's LRP baseline; AttnLRP / CP-LRP, whose ε/0 rules leave a bias's share with the bias): why.
   */
  byDesign?: string;
  /**
   * Maps that are the relevance at the input (LRP, AttnLRP, CP-LRP): the share of the starting
   * total that is not on the map (kept by the [CLS] token and position embeddings, or by biases).
   */
  embeddingShare?: number;
}

/**
 * Where relevance goes, layer by layer: R^(A), the relevance that reached a block's attention
 * probabilities in the relevance pass, averaged over heads, in the row of the token the model
 * reads its answer from ([CLS]).
 */
export interface LayerRelevance {
  layer: number;
  /** The row as a map, in the explanation's space (patch grid or tokens), row-major. */
  map: { shape: number[]; data: number[] };
  /** Σ R^(A) over the whole layer (all heads, all rows): how much relevance passed through its attention. */
  total: number;
  /** Images: the row drawn over the preview picture, PNG data URL. */
  overlayPng?: string;
  /** Text: the row put back on the words. */
  words?: WordRelevance[];
}

export interface WordRelevance extends TextWord {
  /** The sum over the word's pieces. */
  relevance: number;
}

export interface TokenRelevance {
  token: string;
  relevance: number;
  special: boolean;
}

/**
 * What produced a result (core/provenance.ts, as plain data): relprop's version, the model folder
 * with its weights' and config's SHA-256, the method, the rule set actually used (never "default"),
 * every option value the method read, the target and contrast, the engine and the date.
 */
export interface ResultProvenance {
  relprop: { version: string; commit?: string };
  model: { name: string; family: string; folder?: string; weightsSha256?: string; configSha256?: string };
  method: string;
  rules?: string;
  options: Record<string, string | number | boolean>;
  target: number;
  targetLabel: string;
  contrast?: number;
  contrastLabel?: string;
  engine: string;
  date: string;
}

/** Integrated gradients' completeness: Σ map against f(x) − f(baseline) (Sundararajan et al.'s axiom). */
export interface Completeness {
  /** Σ of the map. */
  sum: number;
  /** f(x) − f(x′): the explained score (logit, or logit difference under a contrast) at the input minus at the baseline. */
  expected: number;
  /** sum − expected: the quadrature error of the integral. */
  gap: number;
}

/** A method a compare grid left out, and why (it cannot take the contrast, or its options). */
export interface SkippedMethod {
  method: string;
  methodTitle: string;
  reason: string;
}

interface ExplainResultBase {
  inputId: string;
  modelId: string;
  method: string;
  methodTitle: string;
  signed: boolean;
  target: number;
  targetLabel: string;
  /** Present when the map explains logit(target) − logit(contrast). */
  contrast?: { classId: number; label: string };
  /** The options the method actually used. */
  options: ExplainOptions;
  /** The raw map, row-major, not normalised, not upsampled; non-finite values are reported as 0. */
  map: { shape: number[]; data: number[] };
  space: MapSpace;
  /** Null for methods without a relevance pass. */
  ledger: LedgerSummary | null;
  /** Time the method took; methods run after another on the same input reuse its forward pass. */
  ms: number;
  /** Present when asked for (options.layers) and the method has a relevance pass, first layer first. */
  layers?: LayerRelevance[];
  provenance: ResultProvenance;
  /** Integrated gradients only. */
  completeness?: Completeness;
}

export interface ImageExplainResult extends ExplainResultBase {
  kind: 'image';
  /** The map over the preview picture, PNG data URL. */
  overlayPng: string;
}

export interface TextExplainResult extends ExplainResultBase {
  kind: 'text';
  words: WordRelevance[];
  tokens: TokenRelevance[];
}

export type ExplainResult = ImageExplainResult | TextExplainResult;

// --- Jobs --------------------------------------------------------------------

export interface JobTicket {
  jobId: string;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobQuery {
  id: string;
  /** Results already received: only later ones are sent again. */
  from?: number;
}

export interface JobStatus {
  id: string;
  state: JobState;
  /** Methods finished / methods asked for, and the one running now. */
  done: number;
  total: number;
  current: string | null;
  elapsedMs: number;
  /** Results from index `from` of the query on, in the order the methods were asked for. */
  results: ExplainResult[];
  /** Compare: methods left out (all of them, every poll), with the reason; the others ran. */
  skipped?: SkippedMethod[];
  /** The message, when failed. */
  error?: string;
  /** Passes of the running method, for multi-pass methods (integrated gradients' steps, SmoothGrad's samples, occlusion's variants). */
  step?: ActivityStep;
  /** Estimated time left in the running method, once it has timed a few passes. */
  etaMs?: number;
}

// --- Activity: every long operation the service is doing, for every page -------

export interface ActivityStep {
  done: number;
  total: number;
}

export type ActivityKind = 'explain' | 'open' | 'load' | 'evaluate' | 'start';

export interface Activity {
  /** A job or evaluation id, or the id of an operation (opening an input, loading a model): what `cancel` takes. */
  id: string;
  kind: ActivityKind;
  /** What it does, in words ("Explaining cat.png with Integrated gradients"). */
  label: string;
  state: 'queued' | 'running';
  /** Methods (explain) or inputs (evaluate) done of those asked for; 0 of 0 where there are none. */
  done: number;
  total: number;
  unit: 'methods' | 'inputs' | null;
  /** The method or input being worked on. */
  current: string | null;
  /** Passes of the running method, for multi-pass methods. */
  step: ActivityStep | null;
  elapsedMs: number;
  etaMs: number | null;
  cancellable: boolean;
  /** Asked for by the page (window) that asks for the list. */
  mine: boolean;
}

// --- Evaluation (`relprop compare` from the app) -----------------------------

export type EvalTaskId = 'image' | 'image-pair' | 'text' | 'text-pair';
export const EVAL_TASKS: readonly EvalTaskId[] = ['image', 'image-pair', 'text', 'text-pair'];
export type EvalMetricId = 'perturbation' | 'localisation' | 'agreement' | 'attention' | 'identity';
export const EVAL_METRICS: readonly EvalMetricId[] = ['perturbation', 'localisation', 'agreement', 'attention', 'identity'];
export type RemovalId = 'zero' | 'mean' | 'blur' | 'mask' | 'unk' | 'delete';
export const REMOVALS: readonly RemovalId[] = ['zero', 'mean', 'blur', 'mask', 'unk', 'delete'];
/** Most generated samples one evaluation may ask for. */
export const MAX_EVAL_SAMPLES = 100_000;

/** What to evaluate on: held-out samples of a generated task, or a folder / file on the service's machine. */
export type EvalData = { kind: 'task'; task: EvalTaskId; count: number } | { kind: 'path'; path: string; masks?: string };

export interface EvaluateRequest {
  modelId: string;
  data: EvalData;
  methods: string[];
  metrics: EvalMetricId[];
  /** How perturbation removes a unit (default: zero for images, mask for text). */
  removal?: RemovalId;
  /** Start over instead of resuming an earlier run of the same evaluation. */
  restart?: boolean;
}

/** A number that is null where it is undefined (a measure with no inputs, an agreement with itself missing): JSON has no NaN. */
export type Measured = number | null;

/** One measure's distribution over the inputs. */
export interface EvalStat {
  n: number;
  mean: Measured;
  median: Measured;
  q1: Measured;
  q3: Measured;
  iqr: Measured;
  min: Measured;
  max: Measured;
}

export interface EvalCurve {
  fractions: number[];
  accuracy: Measured[];
  probability: Measured[];
  aucAccuracy: Measured;
  aucProbability: Measured;
}

/** The tables and curves of a finished evaluation (`summary.json` of the run, without the example maps). */
export interface EvalSummary {
  model: string;
  data: string;
  methods: string[];
  metrics: EvalMetricId[];
  inputs: number;
  errors: Array<{ id: string; error: string }>;
  /** Per method, per measure (e.g. 'localisation.pointing', 'agreement.tau.rollout'). */
  perMethod: Record<string, Record<string, EvalStat>>;
  /** Per method, 'positive' / 'negative' perturbation test. */
  perturbation: Record<string, Record<string, EvalCurve>>;
  agreement: { names: string[]; median: Measured[][]; iqr: Measured[][] } | null;
  /** Mean ms per explanation, per method. */
  timing: Record<string, Measured>;
  modelTests: Record<string, EvalStat>;
}

export interface EvalStatus {
  id: string;
  state: JobState;
  /** Inputs finished (including those an earlier run had already done) / inputs in the data. */
  done: number;
  total: number;
  /** Inputs taken from an earlier, interrupted run of the same evaluation. */
  resumed: number;
  errors: number;
  current: string | null;
  elapsedMs: number;
  /** Estimated time left, once a few inputs have been timed. */
  etaMs: number | null;
  /** The run folder (journal.jsonl, results.csv, summary.json, report.html). */
  out: string;
  /** What was asked for: a page that reattaches shows it in its form. */
  request: EvaluateRequest;
  summary: EvalSummary | null;
  error?: string;
}

// --- Reports -------------------------------------------------------------------

export type ReportFormat = 'html' | 'pdf';
export const REPORT_FORMATS: readonly ReportFormat[] = ['html', 'pdf'];

export interface ReportRequest {
  /** An explain or compare job (its input and results), or an evaluation. */
  source: { kind: 'job'; id: string } | { kind: 'evaluation'; id: string };
  format: ReportFormat;
}

/** A file for the user to save: the renderer offers it as a download. */
export interface ExportedFile {
  name: string;
  mime: string;
  base64: string;
}

// --- The API -------------------------------------------------------------------

/** Request and response of every API method. A `void` request means the method takes no argument. */
export interface ApiSpec {
  version: { req: void; res: VersionInfo };
  listModels: { req: void; res: ModelInfo[] };
  addModel: { req: string; res: ModelInfo };
  /** Forget an added model (its folder is left alone); the models left. */
  removeModel: { req: string; res: ModelInfo[] };
  listMethods: { req: void; res: MethodCatalogue };
  openImage: { req: OpenImageRequest; res: OpenedInput };
  openText: { req: OpenTextRequest; res: OpenedInput };
  reopen: { req: ReopenRequest; res: OpenedInput };
  explain: { req: ExplainRequest; res: JobTicket };
  compare: { req: CompareRequest; res: JobTicket };
  job: { req: JobQuery; res: JobStatus };
  /** Cancels an explain/compare job or an evaluation (an evaluation keeps its journal and resumes when run again). */
  cancel: { req: string; res: { id: string; state: JobState } };
  /** Desktop only: a native folder picker; the path chosen, or null. Web mode types the path instead. */
  pickModelFolder: { req: void; res: string | null };
  /** Desktop only: pick a data folder or file for an evaluation. */
  pickDataPath: { req: void; res: string | null };
  evaluate: { req: EvaluateRequest; res: JobTicket };
  evaluation: { req: string; res: EvalStatus };
  exportReport: { req: ReportRequest; res: ExportedFile };
  /** Everything long the service is doing now, for every page: jobs, evaluations, inputs being opened, models loading. */
  activity: { req: void; res: Activity[] };
  /**
   * A page has (re)loaded: its earlier life's explanations and openings, which nobody follows any
   * more, are cancelled (evaluations go on: they outlive the page); the activity list.
   */
  attach: { req: void; res: Activity[] };
  /** The page is going away: its explanations and openings are cancelled (evaluations go on). */
  detach: { req: void; res: null };
}

export type ApiMethod = keyof ApiSpec;
export type ApiRequest<M extends ApiMethod> = ApiSpec[M]['req'];
export type ApiResponse<M extends ApiMethod> = ApiSpec[M]['res'];

export type RelpropApi = {
  [M in ApiMethod]: ApiRequest<M> extends void ? () => Promise<ApiResponse<M>> : (request: ApiRequest<M>) => Promise<ApiResponse<M>>;
};

/** Every method name, in one list the transports iterate over (so none can be forgotten). */
export const API_METHODS = [
  'version',
  'listModels',
  'addModel',
  'removeModel',
  'listMethods',
  'openImage',
  'openText',
  'reopen',
  'explain',
  'compare',
  'job',
  'cancel',
  'pickModelFolder',
  'pickDataPath',
  'evaluate',
  'evaluation',
  'exportReport',
  'activity',
  'attach',
  'detach',
] as const satisfies readonly ApiMethod[];

// A compile-time check that API_METHODS names every key of ApiSpec.
type Missing = Exclude<ApiMethod, (typeof API_METHODS)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;

/**
 * What travels back over either transport. Errors are values, not thrown
 * exceptions, because Electron rewrites thrown messages ("Error invoking remote
 * method …") and HTTP has none; both sides then throw `ApiError` with the
 * message as the service wrote it.
 */
export type ApiEnvelope<T> = { ok: true; value: T } | { ok: false; error: string; code: ApiErrorCode };

/** bad-request: the request itself is wrong (validation); failed: it was fine but the work failed; cancelled: stopped by a Cancel. */
export type ApiErrorCode = 'bad-request' | 'not-found' | 'unavailable' | 'failed' | 'cancelled';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: ApiErrorCode = 'failed',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function unwrapEnvelope<T>(envelope: unknown, what: string): T {
  if (typeof envelope !== 'object' || envelope === null || !('ok' in envelope)) {
    throw new ApiError(`${what}: unexpected reply from the relprop service`);
  }
  const e = envelope as ApiEnvelope<T>;
  if (e.ok) return e.value;
  throw new ApiError(typeof e.error === 'string' ? e.error : `${what} failed`, e.code);
}

// Channel names derive from the method names so main and preload cannot drift apart.
export function ipcChannel(method: ApiMethod): string {
  return `relprop:${method}`;
}

/** Largest image file accepted (decoded bytes). */
export const MAX_IMAGE_BYTES = 32 * 1024 * 1024;
/** Longest text accepted, in UTF-16 code units. */
export const MAX_TEXT_CHARS = 100_000;
/** Conservation is reported against this relative drift. */
export const CONSERVATION_TOLERANCE = 1e-3;
