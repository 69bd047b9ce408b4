// Checks every message that arrives at the service, from IPC or HTTP, before
// anything acts on it. The renderer is treated as untrusted (a compromised page
// must not be able to read arbitrary files or exhaust memory), so each request
// is rebuilt field by field from what is allowed: unknown fields are refused,
// not ignored, so a typo cannot silently change what runs.
//
// Pure (no Node imports): what needs the file system or the method registry
// comes in through ValidationContext, which also keeps it unit-testable.

import {
  COLORMAP_IDS,
  MAX_IMAGE_BYTES,
  MAX_TEXT_CHARS,
  ApiError,
  API_METHODS,
  type ApiMethod,
  type ApiRequest,
  type CompareRequest,
  type ExplainOptions,
  type ExplainRequest,
  type InputKind,
  type JobQuery,
  type OpenImageRequest,
  type OpenTextRequest,
  type ReopenRequest,
  EVAL_METRICS,
  EVAL_TASKS,
  MAX_EVAL_SAMPLES,
  REMOVALS,
  REPORT_FORMATS,
  type EvalData,
  type EvaluateRequest,
  type ReportRequest,
} from './api.js';
import { METHOD_OPTIONS, OPTION_NAMES, optionValueProblem, type OptionSpec } from '../core/methods/options.js';

export interface KnownModel {
  readonly kind: InputKind;
  /** Null until known (a config without labels, before the model is loaded). */
  readonly numClasses: number | null;
  /** Set when the model cannot be used (e.g. its folder is gone). */
  readonly problem?: string;
}

export interface ValidationContext {
  readonly methodIds: readonly string[];
  readonly ruleSetIds: readonly string[];
  readonly models: ReadonlyMap<string, KnownModel>;
  /** True when `path` names an existing folder (follows links). */
  isDirectory(path: string): boolean;
  /** True when `path` names an existing regular file (follows links). */
  isFile(path: string): boolean;
}

export class ValidationError extends ApiError {
  constructor(message: string) {
    super(message, 'bad-request');
    this.name = 'ValidationError';
  }
}

export const MAX_PATH_CHARS = 4096;
export const MAX_NAME_CHARS = 255;
const MAX_METHODS_PER_COMPARE = 32;
/** Data files an evaluation reads: a sentence per line, or JSON lines. */
const DATA_FILE_PATTERN = /\.(txt|jsonl)$/i;
/** Ids the service hands out (inputs, jobs): short, URL- and log-safe. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/** An id as the service hands them out, or as a page names itself (the client id of web mode). */
export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function isApiMethod(name: string): name is ApiMethod {
  return (API_METHODS as readonly string[]).includes(name);
}

function fail(message: string): never {
  throw new ValidationError(message);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

type Fields = Record<string, unknown>;

function object(value: unknown, what: string, allowed: readonly string[]): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} must be an object, got ${describe(value)}`);
  // Only own enumerable data: a prototype-carried or accessor field is not something a client sent.
  const fields = value as Fields;
  for (const key of Object.keys(fields)) {
    if (!allowed.includes(key)) fail(`${what}: unknown field '${key}' (allowed: ${allowed.join(', ')})`);
  }
  return fields;
}

function string(value: unknown, what: string, maxChars: number): string {
  if (typeof value !== 'string') fail(`${what} must be a string, got ${describe(value)}`);
  if (value.length > maxChars) fail(`${what} is too long (${value.length} characters; at most ${maxChars})`);
  return value;
}

function id(value: unknown, what: string): string {
  const s = string(value, what, 64);
  if (!ID_PATTERN.test(s)) fail(`${what} ${describe(s)} is not a valid id`);
  return s;
}

function integer(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(`${what} must be an integer, got ${describe(value)}`);
  if (value < min || value > max) fail(`${what} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(value: unknown, what: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    fail(`unknown ${what} ${describe(value)} (available: ${choices.join(', ')})`);
  }
  return value as T;
}

function noArgument(value: unknown, method: string): void {
  // JSON bodies of argument-less calls arrive as {} or null; anything with content is a mistake.
  if (value === undefined || value === null) return;
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return;
  fail(`${method} takes no argument, got ${describe(value)}`);
}

function model(value: unknown, ctx: ValidationContext, kind?: InputKind): string {
  const modelId = string(value, 'modelId', 512);
  const known = ctx.models.get(modelId);
  if (!known) fail(`unknown model '${modelId}' (known: ${[...ctx.models.keys()].join(', ') || 'none'})`);
  if (known.problem) fail(`model '${modelId}' cannot be used: ${known.problem}`);
  if (kind && known.kind !== kind) fail(`model '${modelId}' takes ${known.kind === 'image' ? 'images' : 'text'}, not ${kind === 'image' ? 'images' : 'text'}`);
  return modelId;
}

function method(value: unknown, ctx: ValidationContext): string {
  return oneOf(value, 'method', ctx.methodIds);
}

function target(value: unknown, modelId: string, ctx: ValidationContext): number | undefined {
  if (value === undefined) return undefined;
  const classes = ctx.models.get(modelId)?.numClasses ?? null;
  if (classes === null) return integer(value, 'target', 0, 1_000_000);
  return integer(value, `target (model '${modelId}' has classes 0..${classes - 1})`, 0, classes - 1);
}

/** A contrast class: a class of the model, not the target itself (the difference would be 0). */
function contrast(value: unknown, targetClass: number | undefined, modelId: string, ctx: ValidationContext): number | undefined {
  if (value === undefined) return undefined;
  const c = target(value, modelId, ctx)!;
  if (c === targetClass) fail(`contrast ${c} is the target itself: logit(target) − logit(contrast) would be 0`);
  return c;
}

/** The fields explain and compare share: target, contrast and options, each only when given. */
function targetsAndOptions(o: Fields, modelId: string, ctx: ValidationContext): Pick<ExplainRequest, 'target' | 'contrast' | 'options'> {
  const t = target(o['target'], modelId, ctx);
  const c = contrast(o['contrast'], t, modelId, ctx);
  const opts = options(o['options'], ctx);
  return { ...(t !== undefined ? { target: t } : {}), ...(c !== undefined ? { contrast: c } : {}), ...(opts ? { options: opts } : {}) };
}

/** A method option's value, checked against the schema (core/methods/options.ts): the ranges the CLI's flags take. */
function methodOption(spec: OptionSpec, value: unknown, what: string, ctx: ValidationContext): unknown {
  const problem = optionValueProblem(spec, value, ctx.ruleSetIds);
  if (problem === null) return value;
  if (spec.kind === 'enum') oneOf(value, spec.noun, spec.values);
  if (spec.kind === 'ruleSet') oneOf(value, spec.noun, ctx.ruleSetIds);
  fail(`${what} ${problem}, got ${typeof value === 'number' ? String(value) : describe(value)}`);
}

/** The app-only settings (overlay look, the Layers view) beside the method options. */
const APP_OPTIONS = ['colormap', 'alpha', 'layers'] as const;

function options(value: unknown, ctx: ValidationContext): ExplainOptions | undefined {
  if (value === undefined) return undefined;
  const o = object(value, 'options', [...OPTION_NAMES, ...APP_OPTIONS]);
  const out: ExplainOptions = {};
  const methodOptions = out as Record<string, unknown>;
  for (const name of OPTION_NAMES) if (o[name] !== undefined) methodOptions[name] = methodOption(METHOD_OPTIONS[name], o[name], `options.${name}`, ctx);
  if (o['colormap'] !== undefined) out.colormap = oneOf(o['colormap'], 'colormap', COLORMAP_IDS);
  if (o['layers'] !== undefined) {
    if (typeof o['layers'] !== 'boolean') fail(`options.layers must be true or false, got ${describe(o['layers'])}`);
    out.layers = o['layers'];
  }
  if (o['alpha'] !== undefined) {
    const a = o['alpha'];
    if (typeof a !== 'number' || !(a >= 0 && a <= 1)) fail(`options.alpha must be a number between 0 and 1, got ${describe(a)}`);
    out.alpha = a;
  }
  return out;
}

/** Bytes a base64 string decodes to, without decoding it. */
export function base64DecodedLength(b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - padding;
}

function imageBytes(value: unknown): string {
  if (typeof value !== 'string') fail(`bytes must be a base64 string, got ${describe(value)}`);
  // Checked on the encoded length first, so an oversized file is refused before it is scanned.
  const size = base64DecodedLength(value);
  if (size > MAX_IMAGE_BYTES) {
    fail(`image is too large (${(size / 1024 / 1024).toFixed(1)} MB; at most ${MAX_IMAGE_BYTES / 1024 / 1024} MB)`);
  }
  if (value.length % 4 !== 0 || !BASE64_PATTERN.test(value)) fail('bytes is not valid base64');
  if (size === 0) fail('the image file is empty (0 bytes)');
  return value;
}

function fileName(value: unknown): string {
  const name = string(value, 'name', MAX_NAME_CHARS);
  // Shown in messages and the window: no control characters that could forge lines.
  if (/[\u0000-\u001f\u007f]/.test(name)) fail('name contains control characters');
  return name;
}

function text(value: unknown): string {
  if (typeof value !== 'string') fail(`text must be a string, got ${describe(value)}`);
  if (value.length > MAX_TEXT_CHARS) fail(`text is too long (${value.length} characters; at most ${MAX_TEXT_CHARS})`);
  if (value.includes('\u0000')) fail('text contains a NUL character');
  if (value.trim() === '') fail('the text is empty');
  return value;
}

/** True for an absolute path on POSIX (/…) or Windows (C:\…, \\server\share\…). */
export function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || /^\\\\[^\\]+\\[^\\]+/.test(p);
}

/** A folder path the user typed or picked: absolute, no NUL bytes, an existing folder. */
export function validateFolderPath(value: unknown, ctx: Pick<ValidationContext, 'isDirectory'>): string {
  if (typeof value !== 'string') fail(`the folder path must be a string, got ${describe(value)}`);
  if (value.includes('\u0000')) fail('the folder path contains a NUL byte');
  if (value.trim() === '') fail('the folder path is empty');
  if (value.length > MAX_PATH_CHARS) fail(`the folder path is too long (${value.length} characters; at most ${MAX_PATH_CHARS})`);
  if (!isAbsolutePath(value)) fail(`the folder path must be absolute, got ${describe(value)}`);
  if (!ctx.isDirectory(value)) fail(`${value}: no such folder`);
  return value;
}

function absolutePath(value: unknown, what: string): string {
  if (typeof value !== 'string') fail(`${what} must be a string, got ${describe(value)}`);
  if (value.includes('\u0000')) fail(`${what} contains a NUL byte`);
  if (value.trim() === '') fail(`${what} is empty`);
  if (value.length > MAX_PATH_CHARS) fail(`${what} is too long (${value.length} characters; at most ${MAX_PATH_CHARS})`);
  if (!isAbsolutePath(value)) fail(`${what} must be absolute, got ${describe(value)}`);
  return value;
}

/** Evaluation data: a generated task, or a folder of images / a .txt or .jsonl file that exists. */
function evalData(value: unknown, ctx: ValidationContext): EvalData {
  const kind = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields)['kind'] : undefined;
  if (kind === 'task') {
    const o = object(value, 'data', ['kind', 'task', 'count']);
    return { kind: 'task', task: oneOf(o['task'], 'task', EVAL_TASKS), count: integer(o['count'], 'data.count', 1, MAX_EVAL_SAMPLES) };
  }
  if (kind === 'path') {
    const o = object(value, 'data', ['kind', 'path', 'masks']);
    const p = absolutePath(o['path'], 'the data path');
    if (!ctx.isDirectory(p)) {
      if (!ctx.isFile(p)) fail(`${p}: no such folder or file`);
      if (!DATA_FILE_PATTERN.test(p)) fail(`${p}: a data file must be .txt (a sentence a line) or .jsonl`);
    }
    const out: EvalData = { kind: 'path', path: p };
    if (o['masks'] !== undefined) {
      const m = absolutePath(o['masks'], 'the masks folder');
      if (!ctx.isDirectory(m)) fail(`${m}: no such folder`);
      out.masks = m;
    }
    return out;
  }
  fail(`data must be {kind: 'task', task, count} or {kind: 'path', path}, got ${describe(value)}`);
}

function methodList(value: unknown, ctx: ValidationContext): string[] {
  if (!Array.isArray(value) || value.length === 0) fail(`methods must be a non-empty array of method ids, got ${describe(value)}`);
  if (value.length > MAX_METHODS_PER_COMPARE) fail(`at most ${MAX_METHODS_PER_COMPARE} methods at once, got ${value.length}`);
  const methods = value.map((m) => method(m, ctx));
  const dup = methods.find((m, i) => methods.indexOf(m) !== i);
  if (dup) fail(`method '${dup}' is listed twice`);
  return methods;
}

type Validators = { [M in ApiMethod]: (raw: unknown, ctx: ValidationContext) => ApiRequest<M> };

const VALIDATORS: Validators = {
  version: (raw) => noArgument(raw, 'version'),
  listModels: (raw) => noArgument(raw, 'listModels'),
  listMethods: (raw) => noArgument(raw, 'listMethods'),
  pickModelFolder: (raw) => noArgument(raw, 'pickModelFolder'),
  addModel: (raw, ctx) => validateFolderPath(raw, ctx),
  removeModel(raw, ctx): string {
    const modelId = string(raw, 'modelId', 512);
    if (!modelId.startsWith('user/') || !ctx.models.has(modelId)) fail(`'${modelId}' is not an added model (only added models can be removed; shipped ones stay)`);
    return modelId;
  },
  openImage(raw, ctx): OpenImageRequest {
    const o = object(raw, 'openImage', ['modelId', 'name', 'bytes']);
    return { modelId: model(o['modelId'], ctx, 'image'), name: fileName(o['name']), bytes: imageBytes(o['bytes']) };
  },
  openText(raw, ctx): OpenTextRequest {
    const o = object(raw, 'openText', ['modelId', 'text']);
    return { modelId: model(o['modelId'], ctx, 'text'), text: text(o['text']) };
  },
  reopen(raw, ctx): ReopenRequest {
    const o = object(raw, 'reopen', ['inputId', 'modelId']);
    return { inputId: id(o['inputId'], 'inputId'), modelId: model(o['modelId'], ctx) };
  },
  explain(raw, ctx): ExplainRequest {
    const o = object(raw, 'explain', ['inputId', 'modelId', 'method', 'target', 'contrast', 'options']);
    const modelId = model(o['modelId'], ctx);
    return { inputId: id(o['inputId'], 'inputId'), modelId, method: method(o['method'], ctx), ...targetsAndOptions(o, modelId, ctx) };
  },
  compare(raw, ctx): CompareRequest {
    const o = object(raw, 'compare', ['inputId', 'modelId', 'methods', 'target', 'contrast', 'options']);
    const modelId = model(o['modelId'], ctx);
    return { inputId: id(o['inputId'], 'inputId'), modelId, methods: methodList(o['methods'], ctx), ...targetsAndOptions(o, modelId, ctx) };
  },
  job(raw): JobQuery {
    const o = object(raw, 'job', ['id', 'from']);
    const out: JobQuery = { id: id(o['id'], 'job id') };
    if (o['from'] !== undefined) out.from = integer(o['from'], 'from', 0, 1_000_000);
    return out;
  },
  cancel: (raw) => id(raw, 'job id'),
  pickDataPath: (raw) => noArgument(raw, 'pickDataPath'),
  evaluate(raw, ctx): EvaluateRequest {
    const o = object(raw, 'evaluate', ['modelId', 'data', 'methods', 'metrics', 'removal', 'restart']);
    const modelId = model(o['modelId'], ctx);
    const data = evalData(o['data'], ctx);
    const kind = ctx.models.get(modelId)!.kind;
    if (data.kind === 'task' && !data.task.startsWith(kind)) fail(`task '${data.task}' makes ${data.task.startsWith('image') ? 'images' : 'text'}, and model '${modelId}' takes ${kind === 'image' ? 'images' : 'text'}`);
    const m = o['metrics'];
    if (!Array.isArray(m) || m.length === 0) fail(`metrics must be a non-empty array (available: ${EVAL_METRICS.join(', ')}), got ${describe(m)}`);
    const metrics = [...new Set(m.map((x) => oneOf(x, 'metric', EVAL_METRICS)))];
    const out: EvaluateRequest = { modelId, data, methods: methodList(o['methods'], ctx), metrics };
    if (o['removal'] !== undefined) {
      const removal = oneOf(o['removal'], 'removal', REMOVALS);
      const forImages = removal === 'zero' || removal === 'mean' || removal === 'blur';
      if (forImages !== (kind === 'image')) fail(`removal '${removal}' is for ${forImages ? 'images' : 'text'}, and model '${modelId}' takes ${kind === 'image' ? 'images' : 'text'}`);
      out.removal = removal;
    }
    if (o['restart'] !== undefined) {
      if (typeof o['restart'] !== 'boolean') fail(`restart must be true or false, got ${describe(o['restart'])}`);
      out.restart = o['restart'];
    }
    return out;
  },
  evaluation: (raw) => id(raw, 'evaluation id'),
  activity: (raw) => noArgument(raw, 'activity'),
  attach: (raw) => noArgument(raw, 'attach'),
  detach: (raw) => noArgument(raw, 'detach'),
  exportReport(raw): ReportRequest {
    const o = object(raw, 'exportReport', ['source', 'format']);
    const src = object(o['source'], 'source', ['kind', 'id']);
    const kind = oneOf(src['kind'], 'report source', ['job', 'evaluation'] as const);
    return { source: { kind, id: id(src['id'], `${kind} id`) }, format: oneOf(o['format'], 'report format', REPORT_FORMATS) };
  },
};

/**
 * The request of `method`, checked and copied; throws ValidationError with a
 * message fit to show the user. The result holds only fields the API defines.
 */
export function validateRequest<M extends ApiMethod>(method: M, raw: unknown, ctx: ValidationContext): ApiRequest<M> {
  return VALIDATORS[method](raw, ctx);
}
