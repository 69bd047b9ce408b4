// The compute worker: the only place the core (TensorFlow.js) runs for the app.
// A forward or relevance pass blocks its thread for as long as it takes, so it
// must not be the thread that answers HTTP or IPC; and a stuck pass can then be
// stopped by terminating this thread without taking the app down.
//
// Requests are handled one at a time, in order. Between methods the worker
// yields to its event loop so that a 'cancel' can arrive and stop a job
// without losing the loaded models.

import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ensureBackend } from '../core/backend.js';
import { ExplainContext } from '../core/context.js';
import { CancelledError, RelpropError } from '../core/errors.js';
import { GUARD, setProductGuard } from '../core/ort-products.js';
import { decodeImage, encodePng, type RgbImage } from '../core/image/io.js';
import { overlayHeatmap } from '../core/image/overlay.js';
import { resizeImage } from '../core/image/preprocess.js';
import { imageToInput } from '../core/inputs.js';
import { getMethod, listMethods } from '../core/methods/registry.js';
import type { MethodOptions } from '../core/methods/types.js';
import { BertModel } from '../core/models/bert.js';
import { GPT2Model } from '../core/models/gpt2.js';
import { LlamaModel } from '../core/models/llama.js';
import { loadModel } from '../core/models/load.js';
import { disposeInput, type ClassifierModel, type ModelInput } from '../core/models/types.js';
import { ViTModel } from '../core/models/vit.js';
import { conservationVerdict, type LedgerEntry } from '../core/relevance/ledger.js';
import { RULE_SETS } from '../core/relevance/rulesets.js';
import { attentionRelevanceByLayer } from '../core/layer-relevance.js';
import { encodeText, highlightWords } from '../core/text-inputs.js';
import { provenance } from '../core/provenance.js';
import { tf } from '../core/tf.js';
import { isDiverging } from '../core/image/colormap.js';
import { explainVerdict, INPUT_RELEVANCE_METHODS, ledgerSummary } from './verdict.js';
import type { Encoding } from '../core/text/tokenizer.js';
import {
  COLORMAP_IDS,
  CONSERVATION_TOLERANCE,
  type ClassScore,
  type ColormapId,
  type Completeness,
  type ExplainOptions,
  type ExplainResult,
  type LayerRelevance,
  type LedgerSummary,
  type MethodCatalogue,
  type OpenedInput,
  type ResultProvenance,
} from '../shared/api.js';
import { OPTION_NAMES } from '../core/methods/options.js';
import type { InputSource, ModelRef, OpenReply, WorkerEvent, WorkerMessage, WorkerReplyValue, WorkerRequest } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('relprop: worker.js must be started as a worker thread');

// Shared with the service: lets it stop a method between two products, and know when this thread is
// outside ONNX Runtime (terminating it inside would abort the whole process; see ort-products.ts).
const guard = (workerData as { guard?: SharedArrayBuffer } | undefined)?.guard;
const guardSlots = guard ? new Int32Array(guard) : null;
setProductGuard(guardSlots);

/** Overlays and previews are drawn at most this large: a 24-megapixel photo would make a 70 MB data URL. */
const MAX_PREVIEW_SIDE = 1024;
/** Models kept loaded; the least recently used beyond this is disposed. */
const MAX_MODELS = 3;
/** Prepared (input, model) pairs kept with their forward pass and caches. */
const MAX_PREPARED = 2;

interface Prepared {
  readonly key: string;
  readonly modelId: string;
  readonly dir: string;
  readonly model: ClassifierModel;
  readonly input: ModelInput;
  readonly ctx: ExplainContext;
  readonly opened: OpenReply['opened'];
  /** Images: the picture overlays are drawn on. */
  readonly base: RgbImage | null;
  /** Text: the tokenisation, to put relevance back on words. */
  readonly encoding: Encoding | null;
}

const sources = new Map<string, InputSource>();
const models = new Map<string, Promise<ClassifierModel>>();
const modelWarnings = new Map<string, string[]>();
const prepared = new Map<string, Prepared>();
const cancelled = new Set<string>();
const dropped = new Set<number>();
/** Step events at most this often: enough for a progress bar, few enough not to flood the service. */
const STEP_EVENT_MS = 100;

/**
 * A method's onProgress for a job: passes done as step events, and a stop between passes when the
 * service has asked this request to stop (the guard; this thread cannot read messages mid-method),
 * whatever engine the products run on.
 */
function stepReporter(jobId: string, requestId: number): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    if (guardSlots) {
      const stop = Atomics.load(guardSlots, GUARD.stop);
      if (stop === -1 || stop === requestId) throw new CancelledError('cancelled');
    }
    const now = performance.now();
    if (done < total && now - last < STEP_EVENT_MS) return;
    last = now;
    send({ type: 'step', jobId, done, total });
  };
}

function send(event: WorkerEvent): void {
  port!.postMessage(event);
}

function touch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
}

async function getModel(ref: ModelRef): Promise<ClassifierModel> {
  let m = models.get(ref.dir);
  if (!m) {
    const warnings: string[] = [];
    m = loadModel(ref.dir, { warn: (w) => warnings.push(w) });
    modelWarnings.set(ref.dir, warnings);
    // A failed load must not stay cached: the user may fix the folder and retry.
    m.catch(() => models.delete(ref.dir));
  }
  touch(models, ref.dir, m);
  while (models.size > MAX_MODELS) {
    const [oldDir, old] = models.entries().next().value as [string, Promise<ClassifierModel>];
    models.delete(oldDir);
    for (const p of [...prepared.values()]) if (p.dir === oldDir) dropPrepared(p.key);
    void old.then((x) => x.dispose(), () => undefined);
  }
  return m;
}

function dropPrepared(key: string): void {
  const p = prepared.get(key);
  if (!p) return;
  prepared.delete(key);
  p.ctx.dispose();
  disposeInput(p.input);
}

function softmax(xs: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, xs[i]!);
  const e = Array.from(xs, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function topClasses(logits: ArrayLike<number>, labels: readonly string[], k = 5): ClassScore[] {
  return softmax(logits)
    .map((probability, classId) => ({ classId, label: labels[classId] ?? `class ${classId}`, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

function fitWithin(img: RgbImage, side: number): RgbImage {
  const scale = side / Math.max(img.width, img.height);
  if (scale >= 1) return img;
  return resizeImage(img, Math.max(1, Math.round(img.width * scale)), Math.max(1, Math.round(img.height * scale)), 'bilinear');
}

async function pngDataUrl(img: RgbImage): Promise<string> {
  return `data:image/png;base64,${Buffer.from(await encodePng(img)).toString('base64')}`;
}

async function prepare(inputId: string, ref: ModelRef): Promise<Prepared> {
  const key = `${inputId}\u0000${ref.id}`;
  const have = prepared.get(key);
  if (have) {
    touch(prepared, key, have);
    return have;
  }
  const source = sources.get(inputId);
  if (!source) throw new RelpropError('this input is no longer open; open it again');
  const model = await getModel(ref);
  const warnings = [...(modelWarnings.get(ref.dir) ?? [])];
  let input: ModelInput;
  let base: RgbImage | null = null;
  let encoding: Encoding | null = null;
  let preview: OpenedInput['preview'];
  if (source.kind === 'image') {
    if (!(model instanceof ViTModel)) throw new RelpropError(`model '${ref.id}' takes text, not images`);
    const img = await decodeImage(source.bytes, source.name);
    const loaded = imageToInput(model, img);
    input = loaded.input;
    // Overlays go on the whole picture when the model sees all of it, else on the model's crop.
    base = fitWithin(loaded.original ?? loaded.view, MAX_PREVIEW_SIDE);
    preview = { kind: 'image', png: await pngDataUrl(base), width: base.width, height: base.height, originalWidth: img.width, originalHeight: img.height };
  } else {
    if (!(model instanceof BertModel || model instanceof GPT2Model || model instanceof LlamaModel)) throw new RelpropError(`model '${ref.id}' takes images, not text`);
    const loaded = encodeText(model, source.text, (w) => warnings.push(w));
    input = loaded.input;
    encoding = loaded.encoding!;
    const enc = encoding;
    preview = {
      kind: 'text',
      text: source.text,
      truncated: enc.truncated,
      words: enc.words.map((w) => ({ text: w.text, start: w.start, end: w.end })),
      tokens: enc.tokens.map((token, t) => ({ token, start: enc.offsets[t]![0], end: enc.offsets[t]![1], special: enc.special[t]!, word: enc.wordIds[t] ?? null })),
    };
  }
  const ctx = new ExplainContext(model, input);
  let logits: Float32Array;
  try {
    logits = ctx.logits()[0]!;
  } catch (err) {
    ctx.dispose();
    disposeInput(input);
    throw err;
  }
  const p: Prepared = {
    key,
    modelId: ref.id,
    dir: ref.dir,
    model,
    input,
    ctx,
    base,
    encoding,
    opened: { kind: source.kind, name: source.name, preview, prediction: topClasses(logits, model.labels), warnings },
  };
  prepared.set(key, p);
  while (prepared.size > MAX_PREPARED) dropPrepared(prepared.keys().next().value as string);
  return p;
}

/** The per-block R^(A) maps (core/layer-relevance.ts), drawn for the Layers view. */
async function layerMaps(p: Prepared, ctx: ExplainContext, used: MethodOptions, target: number, colormap: ExplainOptions['colormap']): Promise<LayerRelevance[]> {
  const out: LayerRelevance[] = [];
  for (const l of attentionRelevanceByLayer(ctx, used, [target])) {
    const map = { shape: [...l.shape], data: Array.from(l.map, (v) => (Number.isFinite(v) ? v : 0)) };
    const entry: LayerRelevance = { layer: l.layer, map, total: Number.isFinite(l.total) ? l.total : 0 };
    if (p.base) {
      // R^(A) is signed under every rule set, so its maps are drawn diverging (RdBu unless bwr was chosen).
      const cm = colormap === 'bwr' ? 'bwr' : 'rdbu';
      entry.overlayPng = await pngDataUrl(overlayHeatmap(greyed(p.base), map.data, l.shape as [number, number], { colormap: cm, alpha: 0.6, range: mapRange(map.data) }));
    } else if (p.encoding) {
      entry.words = highlightWords(p.encoding, map.data).map((w) => ({ text: w.text, start: w.start, end: w.end, relevance: w.relevance }));
    }
    out.push(entry);
  }
  return out;
}

/**
 * The picture in grey (mean of the channels), for diverging maps: as Captum's blended heat map
 * does, so that a red object in the image is not read as positive evidence.
 */
function greyed(img: RgbImage): RgbImage {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i += 3) data[i] = data[i + 1] = data[i + 2] = Math.round((img.data[i]! + img.data[i + 1]! + img.data[i + 2]!) / 3);
  return { width: img.width, height: img.height, data };
}

/** [min, max] of the map as computed, the ends its legend shows. */
function mapRange(data: readonly number[]): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return data.length ? [min, max] : [0, 0];
}

function plainOptions(o: MethodOptions): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  return out;
}

/**
 * Integrated gradients' completeness check: f(x) − f(x′) from one forward pass at the baseline x′
 * (the same x′ the method integrates from), against Σ map.
 */
function completeness(p: Prepared, ctx: ExplainContext, target: number, sum: number, logits: ArrayLike<number>): Completeness {
  const sample = p.model.sampleOf(p.input, 0);
  try {
    const base = tf.tidy(() => {
      const x0 = p.model.gradientBaseline(sample);
      return p.model.forward(sample, { inputValue: x0 }).logits;
    });
    const row = base.dataSync() as Float32Array;
    base.dispose();
    const expected = ctx.targetScore(logits, 0, target) - ctx.targetScore(row, 0, target);
    return { sum, expected, gap: sum - expected };
  } finally {
    disposeInput(sample);
  }
}

// A record, so adding an option to the API without passing it on here fails to compile.

async function explainOne(
  p: Prepared,
  ctx: ExplainContext,
  methodId: string,
  target: number,
  options: ExplainOptions,
  inputId: string,
  onProgress: (done: number, total: number) => void,
): Promise<ExplainResult> {
  const method = getMethod(methodId);
  // Each method gets only the options it reads, so one options object can serve a whole compare grid.
  const used: { -readonly [K in keyof MethodOptions]: MethodOptions[K] } = {};
  for (const name of OPTION_NAMES) {
    if (options[name] !== undefined && method.options.includes(name)) Object.assign(used, { [name]: options[name] });
  }
  const t0 = performance.now();
  const [e] = await method.attribute(ctx, [target], { ...used, onProgress });
  const ms = performance.now() - t0;
  const explanation = e!;
  const data = Array.from(explanation.map, (v) => (Number.isFinite(v) ? v : 0));
  const targetLabel = p.model.labels[explanation.target] ?? `class ${explanation.target}`;
  const contrast = ctx.contrast ? { classId: ctx.contrast[0]!, label: p.model.labels[ctx.contrast[0]!] ?? `class ${ctx.contrast[0]}` } : null;
  const prov = provenance(p.model, {
    method: method.id,
    ...(explanation.options.rules ? { rules: explanation.options.rules } : {}),
    options: plainOptions(explanation.options),
    target: explanation.target,
    targetLabel,
    ...(contrast ? { contrast: contrast.classId, contrastLabel: contrast.label } : {}),
  });
  const sum = data.reduce((a, b) => a + b, 0);
  const summary = ledgerSummary(explanation.ledger, CONSERVATION_TOLERANCE);
  const common = {
    inputId,
    modelId: p.modelId,
    method: method.id,
    methodTitle: method.title,
    signed: method.signed,
    target: explanation.target,
    targetLabel,
    ...(contrast ? { contrast } : {}),
    map: { shape: [...explanation.shape], data },
    space: explanation.space,
    ledger: summary && explainVerdict(summary, explanation.options.rules, INPUT_RELEVANCE_METHODS.has(method.id) ? sum : null),
    ms,
    provenance: prov as ResultProvenance,
    ...(method.id === 'integrated-gradients' ? { completeness: completeness(p, ctx, explanation.target, sum, explanation.logits) } : {}),
    ...(options.layers && explanation.ledger ? { layers: await layerMaps(p, ctx, explanation.options, explanation.target, options.colormap) } : {}),
  };
  if (p.base) {
    // RdBu by default for signed maps: bwr's pure red and blue are not told apart by many colour-blind readers.
    const colormap: ColormapId = options.colormap ?? (method.signed ? 'rdbu' : 'jet');
    const alpha = options.alpha ?? 0.5;
    const base = isDiverging(colormap) ? greyed(p.base) : p.base;
    const overlay = overlayHeatmap(base, data, explanation.shape as [number, number], { colormap, alpha, range: mapRange(data) });
    return { ...common, kind: 'image', options: { ...used, colormap, alpha }, overlayPng: await pngDataUrl(overlay) };
  }
  const enc = p.encoding!;
  return {
    ...common,
    kind: 'text',
    options: used,
    words: highlightWords(enc, data).map((w) => ({ text: w.text, start: w.start, end: w.end, relevance: w.relevance })),
    tokens: enc.tokens.map((token, t) => ({ token, relevance: data[t] ?? 0, special: enc.special[t]! })),
  };
}

function catalogue(): MethodCatalogue {
  return {
    methods: listMethods().map((m) => ({
      id: m.id,
      title: m.title,
      reference: m.reference,
      targetDependent: m.targetDependent,
      signed: m.signed,
      options: [...m.options],
    })),
    ruleSets: RULE_SETS.map((r) => ({ id: r.id, description: r.description })),
    colormaps: [...COLORMAP_IDS],
  };
}

async function handle(req: WorkerRequest): Promise<WorkerReplyValue> {
  switch (req.type) {
    case 'catalogue':
      return catalogue();
    case 'load': {
      const model = await getModel(req.model);
      return { labels: [...model.labels] };
    }
    case 'open': {
      if (req.source) sources.set(req.inputId, req.source);
      try {
        const p = await prepare(req.inputId, req.model);
        return { opened: p.opened, labels: [...p.model.labels] };
      } catch (err) {
        // A source that could not be opened (corrupt image) is not kept.
        if (req.source && ![...prepared.keys()].some((k) => k.startsWith(`${req.inputId}\u0000`))) sources.delete(req.inputId);
        throw err;
      }
    }
    case 'explain': {
      if (req.source) sources.set(req.inputId, req.source);
      if (cancelled.delete(req.jobId)) return { cancelled: true };
      send({ type: 'started', jobId: req.jobId, total: req.methods.length });
      const p = await prepare(req.inputId, req.model);
      const target = req.target ?? p.ctx.predictions()[0]!;
      // A contrast changes what every gradient and relevance pass means, so it gets a context of its
      // own for this job (one more forward pass), and the input's cached context stays as it was.
      const ctx = req.contrast === undefined ? p.ctx : new ExplainContext(p.model, p.input, { contrast: req.contrast });
      try {
        for (let i = 0; i < req.methods.length; i++) {
          await yieldToEventLoop();
          if (cancelled.delete(req.jobId)) return { cancelled: true };
          send({ type: 'progress', jobId: req.jobId, done: i, current: req.methods[i]! });
          let result: ExplainResult;
          try {
            result = await explainOne(p, ctx, req.methods[i]!, target, req.options, req.inputId, stepReporter(req.jobId, req.id));
          } catch (err) {
            // Stopped mid-method by the service (a cancel): a cancelled job, not a failed one.
            if (err instanceof CancelledError) return { cancelled: true };
            // A grid goes on without a method that cannot take this request (a contrast its rules
            // refuse, an option out of its range), and lists it with the reason.
            if (req.methods.length > 1 && err instanceof RelpropError) {
              const m = getMethod(req.methods[i]!);
              send({ type: 'skipped', jobId: req.jobId, skipped: { method: m.id, methodTitle: m.title, reason: err.message } });
              continue;
            }
            throw err;
          }
          send({ type: 'result', jobId: req.jobId, result });
        }
      } finally {
        if (ctx !== p.ctx) ctx.dispose();
      }
      send({ type: 'progress', jobId: req.jobId, done: req.methods.length, current: null });
      cancelled.delete(req.jobId);
      return { cancelled: false };
    }
  }
}

function message(err: unknown): string {
  if (err instanceof RelpropError) return err.message;
  // Not a user error: keep the type so a bug report says what happened.
  return `internal error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
}

let queue: Promise<void> = ensureBackend().then(() => undefined);

port.on('message', (msg: WorkerMessage) => {
  switch (msg.type) {
    case 'cancel':
      cancelled.add(msg.jobId);
      return;
    case 'forget':
      sources.delete(msg.inputId);
      for (const key of [...prepared.keys()]) if (key.startsWith(`${msg.inputId}\u0000`)) dropPrepared(key);
      return;
    case 'drop':
      dropped.add(msg.requestId);
      return;
    default: {
      const req = msg;
      queue = queue
        .catch(() => undefined)
        .then(() => {
          if (dropped.delete(req.id)) throw new CancelledError('cancelled');
          if (guardSlots) Atomics.store(guardSlots, GUARD.current, req.id);
          return handle(req);
        })
        .then(
          (value) => send({ type: 'reply', id: req.id, ok: true, value }),
          (err: unknown) => send({ type: 'reply', id: req.id, ok: false, error: message(err), code: 'failed' }),
        );
    }
  }
});
