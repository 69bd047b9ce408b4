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
import { encodeText, highlightWords, idsToText, type LoadedText } from '../core/text-inputs.js';
import { readTextFile } from '../core/text/tokenizer.js';
import { tokenHighlightHtml, type TokenHighlightInput } from '../core/report/token-highlight.js';
import { BertModel } from '../core/models/bert.js';
import type { ClassifierModel, OcclusionMode } from '../core/models/types.js';
import { disposeInput } from '../core/models/types.js';
import { loadModel } from '../core/models/load.js';
import { ViTModel } from '../core/models/vit.js';
import { listMethods, getMethod } from '../core/methods/registry.js';
import { RULE_SETS, getRuleSet } from '../core/relevance/rulesets.js';
import { conservationReport } from '../core/relevance/ledger.js';
import type { Explanation } from '../core/methods/types.js';
import { overlayHeatmap } from '../core/image/overlay.js';
import { writePng, type RgbImage } from '../core/image/io.js';
import { COLORMAPS, type ColormapName } from '../core/image/colormap.js';
import { integer } from './options.js';

interface ExplainFlags {
  model?: string;
  image?: string;
  tensor?: string;
  text?: string;
  textFile?: string;
  ids?: string;
  occlusion?: string;
  method: string;
  target?: number;
  startLayer?: number;
  rules?: string;
  steps?: number;
  out?: string;
  json?: boolean;
  listMethods?: boolean;
  backend?: string;
  colormap?: ColormapName;
  alpha: number;
}

/** The JSON shape of one explanation, shared by `--json` and `--out FILE.json`. */
export function explanationJson(e: Explanation, model: { name: string; labels: readonly string[] }) {
  return {
    method: e.method,
    target: e.target,
    targetLabel: model.labels[e.target],
    model: model.name,
    logits: Array.from(e.logits),
    prediction: argmax(e.logits),
    options: e.options,
    map: { shape: [...e.shape], space: e.space, data: Array.from(e.map) },
    ledger: e.ledger?.map(({ layer, kind, relevanceIn, relevanceOut, branches }) => ({ layer, kind, relevanceIn, relevanceOut, ...(branches ? { branches } : {}) })) ?? null,
  };
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

function methodList(): string {
  const flag: Record<string, string> = { startLayer: '--start-layer', rules: '--rules', steps: '--steps' };
  const rows = listMethods().map((m) => {
    const opts = m.options.length ? ` [${m.options.map((o) => flag[o] ?? `--${o}`).join(', ')}]` : '';
    return `  ${m.id.padEnd(26)} ${m.title}${m.targetDependent ? '' : ' (target-independent)'}${opts}\n  ${''.padEnd(26)} ${m.reference}`;
  });
  const rules = RULE_SETS.map((r) => `  ${r.id.padEnd(26)} ${r.description}`);
  return `Methods:\n${rows.join('\n')}\n\nRule sets (--rules):\n${rules.join('\n')}\n`;
}

function summary(e: Explanation, model: { name: string; labels: readonly string[] }): string {
  const probs = softmax(e.logits);
  const top = probs.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const lines = [
    `model   ${model.name}`,
    `method  ${e.method}${e.options.startLayer !== undefined ? ` (start layer ${e.options.startLayer})` : ''}`,
    `target  ${e.target} (${model.labels[e.target]})`,
    'top classes:',
    ...top.map(([p, i]) => `  ${String(i).padStart(4)}  ${(100 * p).toFixed(2).padStart(6)} %  ${model.labels[i]}`),
    `map     ${e.space}, shape [${e.shape.join(', ')}]`,
  ];
  if (e.ledger) {
    const worst = conservationReport(e.ledger).reduce((a, b) => (b.drift > a.drift ? b : a));
    const first = e.ledger[0]!;
    const last = e.ledger[e.ledger.length - 1]!;
    lines.push(
      `ledger  ${e.ledger.length} boundaries; relevance ${first.relevanceIn.toPrecision(6)} at ${first.layer} → ${last.relevanceOut.toPrecision(6)} at ${last.layer}`,
      `        largest drift ${worst.drift.toExponential(2)} at ${worst.layer} (${worst.drift <= 1e-3 ? 'conserved to 1e-3' : 'NOT conserved'}); --json prints every boundary`,
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

async function run(flags: ExplainFlags): Promise<void> {
  if (flags.listMethods) {
    process.stdout.write(methodList());
    return;
  }
  // Validate what costs nothing before loading anything.
  const method = getMethod(flags.method);
  if (flags.rules !== undefined) getRuleSet(flags.rules);
  for (const [flag, option] of [['--start-layer', 'startLayer'], ['--rules', 'rules'], ['--steps', 'steps'], ['--occlusion', 'occlusion']] as const) {
    if (flags[option] !== undefined && !method.options.includes(option)) {
      throw new UsageError(`${flag} does not apply to method '${method.id}' (it takes: ${method.options.join(', ') || 'no options'})`);
    }
  }
  const given = [flags.image, flags.tensor, flags.text, flags.textFile, flags.ids].filter((x) => x !== undefined).length;
  if (!flags.model && given === 0) return runDefault(flags);
  if (!flags.model) throw new UsageError('--model DIR is required with an input (a folder with config.json and *.safetensors)');
  if (given !== 1) throw new UsageError('give exactly one input: --image FILE or --tensor FILE.json (image models), --text "…", --text-file FILE or --ids 1,2,3 (text models)');
  if (flags.out && !/\.(png|json|html)$/i.test(flags.out)) throw new UsageError(`--out must end in .png, .json or .html, got '${flags.out}'`);
  if (!(flags.alpha >= 0 && flags.alpha <= 1)) throw new UsageError(`--alpha must be between 0 and 1, got '${flags.alpha}'`);

  await ensureBackend(flags.backend);
  const warn = (m: string) => process.stderr.write(`relprop: warning: ${m}\n`);
  const model = await loadModel(flags.model, { warn });
  try {
    const request = {
      method: flags.method,
      target: flags.target ?? ('predicted' as const),
      startLayer: flags.startLayer,
      rules: flags.rules,
      steps: flags.steps,
      occlusion: flags.occlusion as OcclusionMode | undefined,
    };
    if (model instanceof ViTModel) await explainImage(model, flags, request, method.signed);
    else if (model instanceof BertModel) await explainText(model, flags, request, warn);
    else throw new UsageError(`model '${model.name}' is of a family the CLI does not handle`);
  } finally {
    model.dispose();
  }
}

type Request = Parameters<typeof explain>[2];

/**
 * The one-command main job: the shipped softmax image model on a freshly generated task sample,
 * the paper's method, an overlay written to relprop-example.png, and how much of the relevance falls
 * on the object that decides the label.
 */
async function runDefault(flags: ExplainFlags): Promise<void> {
  const dir = path.join(packageRoot(), 'models', 'image-softmax');
  const out = flags.out ?? 'relprop-example.png';
  await ensureBackend(flags.backend);
  const model = await loadModel(dir);
  if (!(model instanceof ViTModel)) throw new UsageError(`${dir} is not an image model`);
  const task = imageTask(HELD_OUT_SEED, { variant: 'single', patchSize: model.config.patchSize });
  const sample = task.sample(2_000_000 + (flags.target ?? 0));
  const loaded = imageToInput(model, { width: sample.width, height: sample.height, data: sample.rgb });
  try {
    const method = flags.method;
    const [e] = await explain(model, loaded.input, { method, startLayer: flags.startLayer, rules: flags.rules, steps: flags.steps });
    // The task's images are 64×64: show the input and the overlay side by side, 4× larger.
    const big = scaleNearest(loaded.view, 4);
    const overlay = overlayHeatmap(big, e!.map, e!.shape as [number, number], { colormap: flags.colormap ?? (getMethod(method).signed ? 'bwr' : 'jet'), alpha: flags.alpha });
    await writePng(out, sideBySide(big, overlay, 8));
    const positive = Array.from(e!.map, (v) => Math.max(0, v));
    const total = positive.reduce((a, b) => a + b, 0);
    const onObject = e!.space === 'patch' ? positive.reduce((a, v, i) => a + v * (sample.patchMask[i]! > 0 ? 1 : 0), 0) / (total || 1) : NaN;
    process.stdout.write(
      `relprop: no --model given, so: the shipped model ${path.relative(process.cwd(), dir)} on a generated sample of its task\n` +
        `(${task.classes.length} classes; the label is the kind of the only red shape, here a ${sample.labelName}).\n` +
        summary(e!, model) +
        (Number.isNaN(onObject) ? '' : `ground truth: ${(100 * onObject).toFixed(0)} % of the positive relevance lies on patches of the deciding red ${sample.labelName}\n`) +
        `wrote ${out}\n`,
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

/** The package's own folder (bin/ and models/ live there), wherever the command runs from. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

async function writeOut(file: string, content: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, content);
}

async function explainImage(model: ViTModel, flags: ExplainFlags, request: Request, signed: boolean): Promise<void> {
  if (flags.text !== undefined || flags.textFile || flags.ids) throw new UsageError(`model '${model.name}' takes images: use --image or --tensor`);
  if (flags.out && /\.html$/i.test(flags.out)) throw new UsageError('--out FILE.html is for text models; use .png or .json');
  const loaded = flags.image ? await loadImageFile(model, flags.image) : await loadTensorFile(model, flags.tensor!);
  try {
    const [result] = await explain(model, loaded.input, request);
    const e = result!;
    const json = explanationJson(e, model);
    if (flags.out && /\.json$/i.test(flags.out)) await writeOut(flags.out, JSON.stringify(json) + '\n');
    else if (flags.out) {
      // Signed maps (LRP, gradient × input) need a diverging colormap so that negative evidence shows.
      const colormap = flags.colormap ?? (signed ? 'bwr' : 'jet');
      const overlay = overlayHeatmap(loaded.original ?? loaded.view, e.map, e.shape as [number, number], { colormap, alpha: flags.alpha });
      await fs.mkdir(path.dirname(path.resolve(flags.out)), { recursive: true });
      await writePng(flags.out, overlay);
    }
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(summary(e, model) + (flags.out ? `wrote ${flags.out}\n` : ''));
  } finally {
    loaded.input.pixels.dispose();
  }
}

async function explainText(model: BertModel, flags: ExplainFlags, request: Request, warn: (m: string) => void): Promise<void> {
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
  try {
    const [result] = await explain(model, loaded.input, request);
    const e = result!;
    const json = { ...explanationJson(e, model), tokens: loaded.tokens, ...(loaded.encoding ? { words: highlightWords(loaded.encoding, e.map) } : {}) };
    if (flags.out) {
      if (/\.json$/i.test(flags.out)) await writeOut(flags.out, JSON.stringify(json) + '\n');
      else await writeOut(flags.out, tokenHighlightHtml(highlightInput(e, model, loaded)));
    }
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(summary(e, model) + tokenTable(e, loaded) + (flags.out ? `wrote ${flags.out}\n` : ''));
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

function ledgerLine(e: Explanation): string {
  const worst = conservationReport(e.ledger!).reduce((a, b) => (b.drift > a.drift ? b : a));
  return `${worst.drift <= 1e-3 ? 'conserved to 1e-3' : 'not conserved'} (largest drift ${worst.drift.toExponential(1)} at ${worst.layer})`;
}

function tokenTable(e: Explanation, loaded: LoadedText): string {
  const max = Math.max(...Array.from(e.map, Math.abs), 1e-12);
  const rows = loaded.tokens.map((t, i) => {
    const v = e.map[i]!;
    const bar = (v >= 0 ? '+' : '-').repeat(Math.round((Math.abs(v) / max) * 20));
    return `  ${String(i).padStart(3)}  ${t.padEnd(16)} ${v.toExponential(2).padStart(10)}  ${bar}`;
  });
  return `tokens:\n${rows.join('\n')}\n`;
}

export function explainCommand(): Command {
  return new Command('explain')
    .description('Explain one input with one method: print the map as JSON, write an overlay PNG or a text highlight, or show a summary. With no --model and no input: the shipped image model on a generated sample, overlay written to relprop-example.png.')
    .option('--model <dir>', 'model folder: config.json + *.safetensors (timm/HF ViT, DeiT; HF BERT, RoBERTa, DistilBERT)')
    .option('--image <file>', 'input image (PNG, JPEG, WebP, …), resized and normalised as the model expects')
    .option('--tensor <file>', 'input as a JSON tensor {"dtype","shape","data"} of already-normalised pixels, shape [1,3,H,W]')
    .option('--text <sentence>', 'input sentence for a text model (tokenised with the model folder\'s tokenizer)')
    .option('--text-file <file>', 'input sentence from a UTF-8 text file')
    .option('--ids <list>', 'input token ids, comma-separated; positions holding pad_token_id are padding')
    .option('--method <id>', 'explanation method (see --list-methods)', 'transformer-attribution')
    .option('--target <k>', 'class to explain (default: the predicted class)', integer('--target'))
    .option('--start-layer <n>', 'first layer of rollout-style products (the authors\' start_layer; default 0)', integer('--start-layer'))
    .option('--rules <id>', 'rule set for relevance methods: paper (Chefer et al.) or baseline (their original-LRP baseline)')
    .option('--steps <n>', 'integration steps for integrated-gradients (default 50)', integer('--steps', 1))
    .option('--occlusion <mode>', 'occlusion: auto, mask, unk, remove (text) or baseline (images)')
    .option('--out <file>', 'write the result: FILE.png (image overlay), FILE.html (text highlight) or FILE.json')
    .option('--json', 'print one JSON object to stdout: {method, target, logits, map: {shape, data}, ledger, …}')
    .option('--list-methods', 'list the available methods and exit')
    .addOption(new Option('--colormap <name>', 'overlay colormap (default: jet, or bwr for signed maps)').choices([...COLORMAPS]))
    .option('--alpha <a>', 'overlay opacity, 0..1', Number, 0.5)
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: ExplainFlags) => run(flags));
}
