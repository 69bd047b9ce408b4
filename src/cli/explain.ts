/** `relprop explain`: one input, one method, a map (JSON, overlay PNG, or a summary on the terminal). */
import { Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensureBackend, BACKEND_CHOICES } from '../core/backend.js';
import { UsageError } from '../core/errors.js';
import { explain } from '../core/explain.js';
import { imageToInput, loadImageFile, loadTensorFile } from '../core/inputs.js';
import { fileURLToPath } from 'node:url';
import { imageTask } from '../core/tasks/index.js';
import { HELD_OUT_SEED } from '../core/train/data.js';
import { encodeText, highlightWords, idsToText, isDecoder, predictsNextToken, singleTokenId, type LoadedText, type TextModel } from '../core/text-inputs.js';
import { readTextFile } from '../core/text/tokenizer.js';
import { tokenHighlightHtml, type TokenHighlightInput } from '../core/report/token-highlight.js';
import { BertModel } from '../core/models/bert.js';
import { GPT2Model } from '../core/models/gpt2.js';
import { LlamaModel } from '../core/models/llama.js';
import type { ClassifierModel } from '../core/models/types.js';
import { disposeInput } from '../core/models/types.js';
import { loadModel } from '../core/models/load.js';
import { ViTModel } from '../core/models/vit.js';
import { listMethods, getMethod } from '../core/methods/registry.js';
import { RULE_SETS, getRuleSet } from '../core/relevance/rulesets.js';
import { conservationReport, type LedgerEntry } from '../core/relevance/ledger.js';
import type { Explanation } from '../core/methods/types.js';
import { METHOD_OPTIONS, type OptionSchema, type OptionValues } from '../core/methods/options.js';
import { overlayHeatmap } from '../core/image/overlay.js';
import { encodePng, type RgbImage } from '../core/image/io.js';
import { withLegend } from '../core/image/legend.js';
import { addPngText } from '../core/image/png-text.js';
import { provenance, type Provenance } from '../core/provenance.js';
import { assertOutputsSpareInputs, writeFileAtomic } from '../core/io/atomic-write.js';
import { COLORMAPS, type ColormapName } from '../core/image/colormap.js';
import { writeExplanationReport, type ReportRequest } from './explain-report.js';
import { addMethodOptionFlags, integer, number } from './options.js';
import { interruptible, progressPrinter, wantProgress } from './progress.js';
import { CancelledError } from '../core/errors.js';
import type { ExplainProgress } from '../core/context.js';

/** Ctrl-C and progress, for the computations of one command. */
interface Hooks {
  readonly signal: AbortSignal;
  readonly onProgress?: (p: ExplainProgress) => void;
}

/**
 * Before the first output is written (the report checks it itself): a Ctrl-C that came during a
 * computation without passes to stop between stops the command here.
 */
function checkNotInterrupted(hooks: Hooks): void {
  if (hooks.signal.aborted) throw new CancelledError('cancelled');
}

/** The method options (the schema's, each under its name) and the command's own flags. */
interface ExplainFlags extends OptionValues {
  model?: string;
  image?: string;
  tensor?: string;
  text?: string;
  textFile?: string;
  ids?: string;
  /** Absent: transformer-attribution. */
  method?: string;
  target?: number;
  targetToken?: string;
  position?: number;
  contrast?: number;
  contrastToken?: string;
  out?: string;
  report?: string;
  json?: boolean;
  listMethods?: boolean;
  backend?: string;
  colormap?: ColormapName;
  alpha?: number;
  bare?: boolean;
  progress?: boolean;
}

/** The JSON shape of one explanation, shared by `--json` and `--out FILE.json`. */
export function explanationJson(e: Explanation, model: { name: string; labels: readonly string[] }, prov?: Provenance) {
  return {
    ...(prov ? { provenance: prov } : {}),
    method: e.method,
    target: e.target,
    targetLabel: model.labels[e.target],
    ...(e.contrast !== undefined ? { contrast: e.contrast, contrastLabel: model.labels[e.contrast] } : {}),
    model: model.name,
    logits: Array.from(e.logits),
    prediction: argmax(e.logits),
    options: e.options,
    map: { shape: [...e.shape], space: e.space, data: Array.from(e.map) },
    ledger: e.ledger?.map(({ layer, kind, relevanceIn, relevanceOut, branches, expectedDrift }) => ({ layer, kind, relevanceIn, relevanceOut, ...(branches ? { branches } : {}), ...(expectedDrift ? { expectedDrift } : {}) })) ?? null,
  };
}

/** What produced an explanation's outputs; `extra` adds the drawing options of a PNG. */
function explanationProvenance(model: ClassifierModel, e: Explanation, extra: Record<string, unknown> = {}): Provenance {
  const rules = typeof e.options.rules === 'string' ? e.options.rules : undefined;
  return provenance(model, {
    method: e.method,
    ...(rules ? { rules } : {}),
    options: { ...e.options, ...extra },
    target: e.target,
    targetLabel: model.labels[e.target] ?? `class ${e.target}`,
    ...(e.contrast !== undefined ? { contrast: e.contrast, contrastLabel: model.labels[e.contrast] ?? `class ${e.contrast}` } : {}),
  });
}

/** The overlay as a PNG: with its legend unless --bare, and its provenance in an iTXt chunk. */
async function overlayPng(overlay: RgbImage, e: Explanation, model: ClassifierModel, colormap: ColormapName, flags: ExplainFlags, offset = 0): Promise<Uint8Array> {
  const label = (k: number) => asciiLabel(model.labels[k] ?? `class ${k}`);
  const line = `${e.method}: class ${e.target} (${label(e.target)})${e.contrast !== undefined ? ` - class ${e.contrast} (${label(e.contrast)})` : ''}`;
  let img = overlay;
  if (!flags.bare) {
    // The legend's scale is the overlay's own: the map drawn at the overlay's size (the right part of a side-by-side picture).
    const drawn = offset ? { width: overlay.width - offset, height: overlay.height } : overlay;
    const legend = withLegend({ width: drawn.width, height: drawn.height, data: new Uint8Array(drawn.width * drawn.height * 3) }, e.map, e.shape as [number, number], { colormap, lines: [line] });
    img = stackLegend(overlay, legend, drawn.height);
  }
  const prov = explanationProvenance(model, e, { colormap, alpha: flags.alpha ?? 0.5, legend: !flags.bare });
  return addPngText(await encodePng(img), 'relprop', JSON.stringify(prov));
}

/** The picture with the legend strip (the part of `legend` below its first `height` rows) added below. */
function stackLegend(picture: RgbImage, legend: RgbImage, height: number): RgbImage {
  const width = Math.max(picture.width, legend.width);
  const strip = legend.height - height;
  const data = new Uint8Array(width * (picture.height + strip) * 3).fill(255);
  for (let y = 0; y < picture.height; y++) data.set(picture.data.subarray(y * picture.width * 3, (y + 1) * picture.width * 3), y * width * 3);
  for (let y = 0; y < strip; y++) data.set(legend.data.subarray((height + y) * legend.width * 3, (height + y + 1) * legend.width * 3), (picture.height + y) * width * 3);
  return { width, height: picture.height + strip, data };
}

/** Class names in the legend's font: printable ASCII, anything else as '?'. */
function asciiLabel(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

function softmax(xs: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(xs));
  const e = Array.from(xs, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function methodList(schema: OptionSchema): string {
  const rows = listMethods().map((m) => {
    const opts = m.options.length ? ` [${m.options.map((o) => schema[o]?.flag ?? `--${o}`).join(', ')}]` : '';
    return `  ${m.id.padEnd(26)} ${m.title}${m.targetDependent ? '' : ' (target-independent)'}${opts}\n  ${''.padEnd(26)} ${m.reference}`;
  });
  const rules = RULE_SETS.map((r) => `  ${r.id.padEnd(26)} ${r.description}`);
  return `Methods:\n${rows.join('\n')}\n\nRule sets (--rules):\n${rules.join('\n')}\n`;
}

function summary(e: Explanation, model: { name: string; family?: string; labels: readonly string[] }): string {
  const probs = softmax(e.logits);
  const top = probs.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
  // A decoder's classes are token texts: quoted, so ' Paris' shows its space and '\n' is visible.
  const nextToken = predictsNextToken({ family: model.family ?? '', shape: (model as { shape?: unknown }).shape });
  const label = (i: number) => (nextToken ? JSON.stringify(model.labels[i]) : model.labels[i]);
  const lines = [
    `model   ${model.name}`,
    `method  ${e.method}${e.options.startLayer !== undefined ? ` (start layer ${e.options.startLayer})` : ''}`,
    `target  ${e.target} (${label(e.target)})`,
    ...(e.contrast !== undefined ? [`contrast ${e.contrast} (${label(e.contrast)}): the map explains logit(${label(e.target)}) − logit(${label(e.contrast)})`] : []),
    nextToken ? 'top next tokens:' : 'top classes:',
    ...top.map(([p, i]) => `  ${String(i).padStart(4)}  ${(100 * p).toFixed(2).padStart(6)} %  ${label(i)}`),
    `map     ${e.space}, shape [${e.shape.join(', ')}]`,
  ];
  if (e.ledger) {
    const first = e.ledger[0]!;
    const last = e.ledger[e.ledger.length - 1]!;
    const { worst, note } = claimedDrift(e.ledger);
    lines.push(
      `ledger  ${e.ledger.length} boundaries; relevance ${first.relevanceIn.toPrecision(6)} at ${first.layer} → ${last.relevanceOut.toPrecision(6)} at ${last.layer}`,
      `        largest drift ${worst.drift.toExponential(2)} at ${worst.layer} (${worst.drift <= 1e-3 ? 'conserved to 1e-3' : 'NOT conserved'})${note}; --json prints every boundary`,
    );
  }
  if (e.shape.length === 2 && e.shape[0]! <= 16 && e.shape[1]! <= 16) {
    for (let r = 0; r < e.shape[0]!; r++) {
      const row = Array.from(e.map.subarray(r * e.shape[1]!, (r + 1) * e.shape[1]!), (v) => v.toExponential(2).padStart(10));
      lines.push(`  ${row.join(' ')}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The method options given on the command line: the schema's, those set. */
function methodOptionsOf(flags: ExplainFlags, schema: OptionSchema): OptionValues {
  const given = flags as Record<string, unknown>;
  return Object.fromEntries(Object.keys(schema).filter((name) => given[name] !== undefined).map((name) => [name, given[name]])) as OptionValues;
}

async function run(flags: ExplainFlags, schema: OptionSchema): Promise<void> {
  if (flags.listMethods) {
    process.stdout.write(methodList(schema));
    return;
  }
  // Validate what costs nothing before loading anything.
  const methodIds = (flags.method ?? 'transformer-attribution').split(',').map((m) => m.trim()).filter((m) => m !== '');
  if (flags.report !== undefined && !/\.(html|pdf)$/i.test(flags.report)) throw new UsageError(`--report must end in .html or .pdf, got '${flags.report}'`);
  if (methodIds.length !== 1 && flags.report === undefined) throw new UsageError(`several methods (--method ${flags.method}) need --report FILE.html|FILE.pdf: the other outputs hold one map`);
  const method = methodIds.length === 1 ? checkMethod(methodIds[0]!, flags, schema) : checkMethods(methodIds, flags, schema);
  const given = [flags.image, flags.tensor, flags.text, flags.textFile, flags.ids].filter((x) => x !== undefined).length;
  const progress = progressPrinter(wantProgress(flags.progress));
  const withHooks = (work: (hooks: Hooks) => Promise<void>) =>
    interruptible((signal) => work({ signal, ...(progress.onProgress ? { onProgress: progress.onProgress } : {}) }), progress.end);
  if (!flags.model && given === 0) return withHooks((hooks) => runDefault(flags, methodOptionsOf(flags, schema), methodIds, hooks));
  if (!flags.model) throw new UsageError('--model DIR is required with an input (a folder with config.json and *.safetensors)');
  if (given !== 1) throw new UsageError('give exactly one input: --image FILE or --tensor FILE.json (image models), --text "…", --text-file FILE or --ids 1,2,3 (text models)');
  if (flags.out && !/\.(png|json|html)$/i.test(flags.out)) throw new UsageError(`--out must end in .png, .json or .html, got '${flags.out}'`);
  const drawn = (flags.out !== undefined && /\.png$/i.test(flags.out)) || flags.report !== undefined;
  for (const [flag, given] of [['--alpha', flags.alpha !== undefined], ['--colormap', flags.colormap !== undefined]] as const) {
    if (given && !drawn) throw new UsageError(`${flag} draws an overlay, and this command writes none: give --out FILE.png or --report FILE.html|FILE.pdf (image models)`);
  }
  if (flags.bare && !(flags.out !== undefined && /\.png$/i.test(flags.out))) throw new UsageError('--bare leaves the legend off a PNG overlay, and this command writes none: give --out FILE.png');
  await assertOutputsSpareInputs(
    [...(flags.out !== undefined ? [['--out', flags.out] as const] : []), ...(flags.report !== undefined ? [['--report', flags.report] as const] : [])],
    [...(flags.image !== undefined ? [['--image', flags.image] as const] : []), ...(flags.tensor !== undefined ? [['--tensor', flags.tensor] as const] : []), ...(flags.textFile !== undefined ? [['--text-file', flags.textFile] as const] : []), ...(await folderFiles(flags.model)).map((f) => ['--model', f] as const)],
  );
  if (flags.target !== undefined && flags.targetToken !== undefined) throw new UsageError('give --target K or --target-token TEXT, not both');
  if (flags.contrast !== undefined && flags.contrastToken !== undefined) throw new UsageError('give --contrast K or --contrast-token TEXT, not both');

  const modelDir = flags.model;
  await withHooks((hooks) => explainWith(flags, methodOptionsOf(flags, schema), modelDir, method, methodIds, hooks));
}

async function explainWith(flags: ExplainFlags, options: OptionValues, modelDir: string, method: ReturnType<typeof getMethod>, methodIds: readonly string[], hooks: Hooks): Promise<void> {
  await ensureBackend(flags.backend);
  const warn = (m: string) => process.stderr.write(`relprop: warning: ${m}\n`);
  const model = await loadModel(modelDir, { warn });
  try {
    if (!(model instanceof ViTModel) && (flags.alpha !== undefined || flags.colormap !== undefined)) {
      throw new UsageError(`${flags.alpha !== undefined ? '--alpha' : '--colormap'} draws an image overlay; model '${model.name}' takes text, whose outputs shade words`);
    }
    const decoder = model instanceof GPT2Model || model instanceof LlamaModel ? model : null;
    if (!decoder && (flags.targetToken !== undefined || flags.contrastToken !== undefined)) {
      throw new UsageError(`--target-token and --contrast-token name next tokens of a decoder (gpt2, llama, mistral, qwen2); model '${model.name}' has classes: use --target K / --contrast K`);
    }
    // Tokens given as text (' Paris') resolve to one vocabulary id each, or the command stops here.
    const tokenId = (text: string | undefined, flag: string) => (text !== undefined && decoder ? singleTokenId(decoder, text, flag) : undefined);
    const target = tokenId(flags.targetToken, '--target-token') ?? flags.target;
    const contrast = tokenId(flags.contrastToken, '--contrast-token') ?? flags.contrast;
    const request = {
      method: method.id,
      target: target ?? ('predicted' as const),
      ...(contrast !== undefined ? { contrast } : {}),
      ...options,
    };
    const report: ReportRequest | null = flags.report
      ? { methods: methodIds, target: request.target, ...(contrast !== undefined ? { contrast } : {}), options, ...(flags.colormap ? { colormap: flags.colormap } : {}), alpha: flags.alpha ?? 0.5 }
      : null;
    if (model instanceof ViTModel) await explainImage(model, flags, request, method.signed, report, hooks);
    else if (model instanceof BertModel || decoder) await explainText(decoder ?? (model as BertModel), flags, request, warn, report, hooks);
    else throw new UsageError(`model '${model.name}' is of a family the CLI does not handle`);
  } finally {
    model.dispose();
  }
}

type Request = Parameters<typeof explain>[2];

/** Several methods for one report: each option given must apply to at least one of them; the first method is returned. */
function checkMethods(ids: readonly string[], flags: ExplainFlags, schema: OptionSchema): ReturnType<typeof getMethod> {
  const methods = ids.map(getMethod);
  const dup = ids.find((m, i) => ids.indexOf(m) !== i);
  if (dup) throw new UsageError(`method '${dup}' is listed twice`);
  checkContrast(methods, flags);
  if (flags.rules !== undefined) getRuleSet(flags.rules);
  for (const [option, { flag }] of Object.entries(schema)) {
    if (isSet(flags, option) && !methods.some((m) => (m.options as readonly string[]).includes(option))) throw new UsageError(`${flag} applies to none of the methods ${ids.join(', ')}`);
  }
  return methods[0]!;
}

/** A target-independent map (rollout, raw attention, …) does not explain logit(A) − logit(B) any more than logit(A). */
function checkContrast(methods: ReadonlyArray<ReturnType<typeof getMethod>>, flags: ExplainFlags): void {
  if (flags.contrast === undefined && flags.contrastToken === undefined) return;
  const flag = flags.contrast !== undefined ? '--contrast' : '--contrast-token';
  const independent = methods.filter((m) => !m.targetDependent).map((m) => m.id);
  if (independent.length) throw new UsageError(`${flag} does not apply to ${independent.map((m) => `'${m}'`).join(', ')}: ${independent.length > 1 ? 'their maps do' : 'its map does'} not depend on the target class, so there is no logit(A) − logit(B) to explain`);
}

function isSet(flags: ExplainFlags, option: string): boolean {
  return (flags as Record<string, unknown>)[option] !== undefined;
}

/** The method, after checking that every method option given applies to it. */
function checkMethod(id: string, flags: ExplainFlags, schema: OptionSchema): ReturnType<typeof getMethod> {
  const method = getMethod(id);
  checkContrast([method], flags);
  if (flags.rules !== undefined) getRuleSet(flags.rules);
  for (const [option, { flag }] of Object.entries(schema)) {
    if (isSet(flags, option) && !(method.options as readonly string[]).includes(option)) {
      throw new UsageError(`${flag} does not apply to method '${method.id}' (it takes: ${method.options.join(', ') || 'no options'})`);
    }
  }
  return method;
}

/**
 * The one-command main job: the shipped softmax image model on a freshly generated task sample,
 * the paper's method, an overlay written to relprop-example.png, and how much of the relevance falls
 * on the object that decides the label.
 */
async function runDefault(flags: ExplainFlags, options: OptionValues, methodIds: readonly string[], hooks: Hooks): Promise<void> {
  const dir = path.join(packageRoot(), 'models', 'image-softmax');
  const out = flags.out ?? 'relprop-example.png';
  await ensureBackend(flags.backend);
  const model = await loadModel(dir);
  if (!(model instanceof ViTModel)) throw new UsageError(`${dir} is not an image model`);
  const task = imageTask(HELD_OUT_SEED, { variant: 'single', patchSize: model.config.patchSize });
  const sample = task.sample(2_000_000 + (flags.target ?? 0));
  const loaded = imageToInput(model, { width: sample.width, height: sample.height, data: sample.rgb });
  try {
    const method = methodIds[0]!;
    const [e] = await explain(model, loaded.input, { method, ...options, ...hooks });
    if (flags.report) {
      await writeExplanationReport(flags.report, model, loaded.input, { kind: 'image', name: `task sample (${sample.labelName})`, image: scaleNearest(loaded.view, 4) }, { methods: methodIds, target: 'predicted', options, ...(flags.colormap ? { colormap: flags.colormap } : {}), alpha: flags.alpha ?? 0.5 }, hooks);
    } else checkNotInterrupted(hooks);
    // The task's images are 64×64: show the input and the overlay side by side, 4× larger.
    const big = scaleNearest(loaded.view, 4);
    const colormap = flags.colormap ?? (getMethod(method).signed ? 'bwr' : 'jet');
    const overlay = overlayHeatmap(big, e!.map, e!.shape as [number, number], { colormap, alpha: flags.alpha ?? 0.5 });
    await writeOut(out, await overlayPng(sideBySide(big, overlay, 8), e!, model, colormap, flags, big.width + 8));
    const positive = Array.from(e!.map, (v) => Math.max(0, v));
    const total = positive.reduce((a, b) => a + b, 0);
    const onObject = e!.space === 'patch' ? positive.reduce((a, v, i) => a + v * (sample.patchMask[i]! > 0 ? 1 : 0), 0) / (total || 1) : NaN;
    process.stdout.write(
      `relprop: no --model given, so: the shipped model ${path.relative(process.cwd(), dir)} on a generated sample of its task\n` +
        `(${task.classes.length} classes; the label is the kind of the only red shape, here a ${sample.labelName}).\n` +
        summary(e!, model) +
        (Number.isNaN(onObject) ? '' : `ground truth: ${(100 * onObject).toFixed(0)} % of the positive relevance lies on patches of the deciding red ${sample.labelName}\n`) +
        `wrote ${out}\n` +
        (flags.report ? `wrote ${flags.report}\n` : ''),
    );
  } finally {
    loaded.input.pixels.dispose();
    model.dispose();
  }
}

function scaleNearest(img: RgbImage, k: number): RgbImage {
  const width = img.width * k;
  const height = img.height * k;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.set(img.data.subarray(3 * (Math.floor(y / k) * img.width + Math.floor(x / k)), 3 * (Math.floor(y / k) * img.width + Math.floor(x / k)) + 3), 3 * (y * width + x));
  return { width, height, data };
}

/** Two images of the same height next to each other on white, `gap` pixels apart. */
function sideBySide(a: RgbImage, b: RgbImage, gap: number): RgbImage {
  const width = a.width + gap + b.width;
  const height = Math.max(a.height, b.height);
  const data = new Uint8Array(width * height * 3).fill(255);
  for (const [img, x0] of [[a, 0], [b, a.width + gap]] as const)
    for (let y = 0; y < img.height; y++) data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), (y * width + x0) * 3);
  return { width, height, data };
}

/** The files of the model folder, which no output may overwrite (none when it cannot be read: loading says why). */
async function folderFiles(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** The package's own folder (bin/ and models/ live there), wherever the command runs from. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

async function writeOut(file: string, content: string | Uint8Array): Promise<void> {
  await writeFileAtomic(file, content);
}

async function explainImage(model: ViTModel, flags: ExplainFlags, request: Request, signed: boolean, report: ReportRequest | null, hooks: Hooks): Promise<void> {
  if (flags.text !== undefined || flags.textFile || flags.ids) throw new UsageError(`model '${model.name}' takes images: use --image or --tensor`);
  if (flags.out && /\.html$/i.test(flags.out)) throw new UsageError('--out FILE.html is for text models; use .png or .json');
  const loaded = flags.image ? await loadImageFile(model, flags.image) : await loadTensorFile(model, flags.tensor!);
  try {
    const [result] = await explain(model, loaded.input, { ...request, ...hooks });
    const e = result!;
    // The report's methods run before any output is written, so a Ctrl-C during them leaves none.
    if (report) await writeExplanationReport(flags.report!, model, loaded.input, { kind: 'image', name: path.basename(flags.image ?? flags.tensor!), image: loaded.original ?? loaded.view }, report, hooks);
    else checkNotInterrupted(hooks);
    const json = explanationJson(e, model, explanationProvenance(model, e));
    if (flags.out && /\.json$/i.test(flags.out)) await writeOut(flags.out, JSON.stringify(json) + '\n');
    else if (flags.out) {
      // Signed maps (LRP, gradient × input) need a diverging colormap so that negative evidence shows.
      const colormap = flags.colormap ?? (signed ? 'bwr' : 'jet');
      const overlay = overlayHeatmap(loaded.original ?? loaded.view, e.map, e.shape as [number, number], { colormap, alpha: flags.alpha ?? 0.5 });
      await writeOut(flags.out, await overlayPng(overlay, e, model, colormap, flags));
    }
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(summary(e, model) + (flags.out ? `wrote ${flags.out}\n` : '') + (report ? `wrote ${flags.report}\n` : ''));
  } finally {
    loaded.input.pixels.dispose();
  }
}

async function explainText(model: TextModel, flags: ExplainFlags, request: Request, warn: (m: string) => void, report: ReportRequest | null, hooks: Hooks): Promise<void> {
  if (flags.image || flags.tensor) throw new UsageError(`model '${model.name}' takes text: use --text, --text-file or --ids`);
  if (flags.out && /\.png$/i.test(flags.out)) throw new UsageError('--out FILE.png is for image models; use .html or .json');
  let loaded: LoadedText;
  if (flags.ids !== undefined) {
    const ids = flags.ids.split(',').map((s) => s.trim());
    if (ids.some((s) => !/^\d+$/.test(s))) throw new UsageError(`--ids must be comma-separated non-negative integers, got '${flags.ids}'`);
    loaded = idsToText(model, ids.map(Number));
  } else {
    const text = flags.text ?? (await readTextFile(flags.textFile!));
    loaded = encodeText(model, text, warn);
  }
  if (flags.position !== undefined) {
    if (!isDecoder(model)) {
      disposeInput(loaded.input);
      throw new UsageError(`--position picks a decoder's next-token prediction; model '${model.name}' classifies the whole text`);
    }
    loaded = { ...loaded, input: { ...loaded.input, explainAt: [flags.position] } };
  }
  try {
    if (report && (!loaded.encoding || loaded.text === null)) throw new UsageError('--report needs the text (--text or --text-file), not raw --ids: the report shades words');
    const [result] = await explain(model, loaded.input, { ...request, ...hooks });
    const e = result!;
    if (report) await writeExplanationReport(flags.report!, model, loaded.input, { kind: 'text', name: flags.textFile ? path.basename(flags.textFile) : 'text', text: loaded.text!, encoding: loaded.encoding! }, report, hooks);
    else checkNotInterrupted(hooks);
    const json = { ...explanationJson(e, model, explanationProvenance(model, e)), tokens: loaded.tokens, ...(loaded.encoding ? { words: highlightWords(loaded.encoding, e.map) } : {}) };
    if (flags.out) {
      if (/\.json$/i.test(flags.out)) await writeOut(flags.out, JSON.stringify(json) + '\n');
      else await writeOut(flags.out, tokenHighlightHtml({ ...highlightInput(e, model, loaded), provenance: json.provenance! }));
    }
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(summary(e, model) + tokenTable(e, loaded, isDecoder(model)) + (flags.out ? `wrote ${flags.out}\n` : '') + (report ? `wrote ${flags.report}\n` : ''));
  } finally {
    disposeInput(loaded.input);
  }
}

/** The token-highlight report's input: words of the text, or each token as a "word" for raw ids. */
function highlightInput(e: Explanation, model: ClassifierModel, loaded: LoadedText): TokenHighlightInput {
  const probs = softmax(e.logits);
  const pred = argmax(e.logits);
  let text: string;
  let words: TokenHighlightInput['words'];
  const specials: Array<{ token: string; relevance: number }> = [];
  if (loaded.encoding && loaded.text !== null) {
    text = loaded.text;
    words = highlightWords(loaded.encoding, e.map);
    loaded.encoding.special.forEach((s, t) => s && specials.push({ token: loaded.tokens[t]!, relevance: e.map[t]! }));
  } else {
    // Raw ids: show the tokens themselves, space-separated.
    let at = 0;
    words = loaded.tokens.map((token, t) => {
      const w = { text: token, start: at, end: at + token.length, relevance: e.map[t]! };
      at += token.length + 1;
      return w;
    });
    text = loaded.tokens.join(' ');
  }
  const m = getMethod(e.method);
  return {
    text,
    words,
    method: e.method,
    methodTitle: m.title,
    target: { id: e.target, label: model.labels[e.target] ?? String(e.target) },
    prediction: { id: pred, label: model.labels[pred] ?? String(pred), probability: probs[pred]! },
    model: model.name,
    ...(specials.length ? { specialTokens: specials } : {}),
    ...(e.ledger ? { ledgerSummary: ledgerLine(e) } : {}),
  };
}

/**
 * The worst drift where the rule set claims conservation; the boundaries it expects to drift
 * (AttnLRP's softmax Taylor rule and the layers around it) are counted in a note, not judged.
 */
function claimedDrift(ledger: readonly LedgerEntry[]): { worst: { drift: number; layer: string }; note: string } {
  const report = conservationReport(ledger);
  const claimed = report.filter((d) => !d.expected);
  const expected = report.length - claimed.length;
  const note = expected ? `; ${expected} boundaries drift by the rules' design (softmax Taylor rule and the layers around it)` : '';
  // A NaN drift (a total that blew up) counts as the worst.
  const worst = claimed.reduce((a, b) => (!(b.drift <= a.drift) ? b : a), { drift: 0, layer: '—' });
  return { worst, note };
}

function ledgerLine(e: Explanation): string {
  const { worst, note } = claimedDrift(e.ledger!);
  return `${worst.drift <= 1e-3 ? 'conserved to 1e-3' : 'not conserved'} (largest drift ${worst.drift.toExponential(1)} at ${worst.layer})${note}`;
}

/** One row per token; byte-level tokens ('Ġworld') are shown as the text they cover, quoted. */
function tokenTable(e: Explanation, loaded: LoadedText, byteLevel: boolean): string {
  const max = Math.max(...Array.from(e.map, Math.abs), 1e-12);
  const shown = (token: string, i: number) => {
    if (!byteLevel || !loaded.encoding || loaded.text === null) return token;
    const [start, end] = loaded.encoding.offsets[i]!;
    return JSON.stringify(loaded.text.slice(start, end));
  };
  const rows = loaded.tokens.map((token, i) => {
    const t = shown(token, i);
    const v = e.map[i]!;
    const bar = (v >= 0 ? '+' : '-').repeat(Math.round((Math.abs(v) / max) * 20));
    return `  ${String(i).padStart(3)}  ${t.padEnd(16)} ${v.toExponential(2).padStart(10)}  ${bar}`;
  });
  return `tokens:\n${rows.join('\n')}\n`;
}

/** `schema`: the method options whose flags it takes (all of them; a test adds one). */
export function explainCommand(schema: OptionSchema = METHOD_OPTIONS): Command {
  const command = new Command('explain')
    .description('Explain one input with one method: print the map as JSON, write an overlay PNG or a text highlight, or show a summary. With no --model and no input: the shipped image model on a generated sample, overlay written to relprop-example.png.')
    .option('--model <dir>', 'model folder: config.json + *.safetensors (timm/HF ViT, DeiT; HF BERT, RoBERTa, DistilBERT; HF GPT-2, Llama, Mistral, Qwen2)')
    .option('--image <file>', 'input image (PNG, JPEG, WebP, …), resized and normalised as the model expects')
    .option('--tensor <file>', 'input as a JSON tensor {"dtype","shape","data"} of already-normalised pixels, shape [1,3,H,W]')
    .option('--text <sentence>', 'input sentence for a text model (tokenised with the model folder\'s tokenizer)')
    .option('--text-file <file>', 'input sentence from a UTF-8 text file')
    .option('--ids <list>', 'input token ids, comma-separated; positions holding pad_token_id are padding')
    .option('--method <id>', 'explanation method (see --list-methods; default transformer-attribution)')
    .option('--target <k>', 'class to explain (default: the predicted class)', integer('--target'))
    .option('--target-token <text>', 'decoder models: the next token to explain, as text that is one token (e.g. " Paris")')
    .option('--position <n>', 'decoder models: explain the prediction after token n (0-based; default the last token), e.g. one token of a generated continuation', integer('--position'))
    .option('--contrast <k>', 'explain logit(target) − logit(k) instead of logit(target) (gradient, attention and occlusion methods; relevance methods with --rules baseline, attnlrp or cp-lrp)', integer('--contrast'))
    .option('--contrast-token <text>', 'decoder models: the contrast as text that is one token (e.g. " Rome")');
  // The method options, from the schema, where --help has always listed them.
  addMethodOptionFlags(command, schema);
  return command
    .option('--out <file>', 'write the result: FILE.png (image overlay), FILE.html (text highlight) or FILE.json')
    .option('--report <file>', 'write the report the app exports: FILE.html or FILE.pdf (maps, status, time, ledger charts, per-block relevance); --method may then list several methods, a,b,c')
    .option('--json', 'print one JSON object to stdout: {method, target, logits, map: {shape, data}, ledger, …}')
    .option('--list-methods', 'list the available methods and exit')
    .addOption(new Option('--colormap <name>', 'overlay colormap (default: jet, or bwr for signed maps)').choices([...COLORMAPS]))
    .option('--alpha <a>', 'overlay opacity, 0..1 (default 0.5); with --out FILE.png or --report', number('--alpha', 0, 1))
    .option('--bare', 'PNG overlay without its legend (colour bar with min / 0 / max, method and class)')
    .option('--progress', 'show progress with an ETA on stderr (default: when stderr is a terminal; env RELPROP_PROGRESS=1)')
    .option('--no-progress', 'no progress line, also on a terminal (env RELPROP_PROGRESS=0)')
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: ExplainFlags) => run(flags, schema));
}
