// The one contract between the main process, the preload, `relprop serve` and
// the renderer. The renderer must only ever depend on this interface, never on
// how it is carried (IPC in the desktop app, HTTP in web mode), so both can
// stand in. Every request is validated on arrival by ./validate.ts.
//
// Plain data only (no typed arrays, no class instances, no NaN): the same
// values must survive both structured clone (IPC) and JSON (HTTP).

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

export type MethodOptionName = 'startLayer' | 'rules' | 'steps' | 'occlusion';

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

export type OcclusionModeId = 'auto' | 'mask' | 'unk' | 'remove' | 'baseline';
export const OCCLUSION_MODES: readonly OcclusionModeId[] = ['auto', 'mask', 'unk', 'remove', 'baseline'];

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

export interface ExplainOptions {
  startLayer?: number;
  rules?: string;
  steps?: number;
  occlusion?: OcclusionModeId;
  /** Overlay look for `overlayPng` (default: bwr for signed methods, jet otherwise). */
  colormap?: ColormapId;
  /** Overlay opacity 0..1 (default 0.5). */
  alpha?: number;
}

export interface ExplainRequest {
  inputId: string;
  modelId: string;
  method: string;
  /** Class to explain; default: the predicted class. */
  target?: number;
  options?: ExplainOptions;
}

export interface CompareRequest {
  inputId: string;
  modelId: string;
  /** Run in this order on one shared forward pass. */
  methods: string[];
  target?: number;
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
}

export interface LedgerSummary {
  /** The tolerance `conserved` is judged at. */
  tolerance: number;
  conserved: boolean;
  largestDrift: number;
  largestDriftLayer: string;
  /** Relevance total entering the first boundary (the head) and leaving the last. */
  first: { layer: string; relevance: number };
  last: { layer: string; relevance: number };
  rows: LedgerRow[];
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

interface ExplainResultBase {
  inputId: string;
  modelId: string;
  method: string;
  methodTitle: string;
  signed: boolean;
  target: number;
  targetLabel: string;
  /** The options the method actually used. */
  options: ExplainOptions;
  /** The raw map, row-major, not normalised, not upsampled; non-finite values are reported as 0. */
  map: { shape: number[]; data: number[] };
  space: MapSpace;
  /** Null for methods without a relevance pass. */
  ledger: LedgerSummary | null;
  /** Time the method took; methods run after another on the same input reuse its forward pass. */
  ms: number;
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
  /** The message, when failed. */
  error?: string;
}

// --- The API -------------------------------------------------------------------

/** Request and response of every API method. A `void` request means the method takes no argument. */
export interface ApiSpec {
  version: { req: void; res: VersionInfo };
  listModels: { req: void; res: ModelInfo[] };
  addModel: { req: string; res: ModelInfo };
  listMethods: { req: void; res: MethodCatalogue };
  openImage: { req: OpenImageRequest; res: OpenedInput };
  openText: { req: OpenTextRequest; res: OpenedInput };
  reopen: { req: ReopenRequest; res: OpenedInput };
  explain: { req: ExplainRequest; res: JobTicket };
  compare: { req: CompareRequest; res: JobTicket };
  job: { req: JobQuery; res: JobStatus };
  cancel: { req: string; res: JobStatus };
  /** Desktop only: a native folder picker; the path chosen, or null. Web mode types the path instead. */
  pickModelFolder: { req: void; res: string | null };
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
  'listMethods',
  'openImage',
  'openText',
  'reopen',
  'explain',
  'compare',
  'job',
  'cancel',
  'pickModelFolder',
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

/** bad-request: the request itself is wrong (validation); failed: it was fine but the work failed. */
export type ApiErrorCode = 'bad-request' | 'not-found' | 'unavailable' | 'failed';

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
