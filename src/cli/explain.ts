/** `relprop explain`: one input, one method, a map (JSON, overlay PNG, or a summary on the terminal). */
import { Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensureBackend, BACKEND_CHOICES } from '../core/backend.js';
import { UsageError } from '../core/errors.js';
import { explain } from '../core/explain.js';
import { loadImageFile, loadTensorFile, type LoadedImage } from '../core/inputs.js';
import { loadModel } from '../core/models/load.js';
import { ViTModel } from '../core/models/vit.js';
import { listMethods, getMethod } from '../core/methods/registry.js';
import { RULE_SETS, getRuleSet } from '../core/relevance/rulesets.js';
import { conservationReport } from '../core/relevance/ledger.js';
import type { Explanation } from '../core/methods/types.js';
import { overlayHeatmap } from '../core/image/overlay.js';
import { writePng } from '../core/image/io.js';
import { COLORMAPS, type ColormapName } from '../core/image/colormap.js';
import { integer } from './options.js';

interface ExplainFlags {
  model?: string;
  image?: string;
  tensor?: string;
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
    const opts = m.options.length ? ` [${m.options.map((o) => flag[o] ?? o).join(', ')}]` : '';
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
  for (const [flag, option] of [['--start-layer', 'startLayer'], ['--rules', 'rules'], ['--steps', 'steps']] as const) {
    if (flags[option] !== undefined && !method.options.includes(option)) {
      throw new UsageError(`${flag} does not apply to method '${method.id}' (it takes: ${method.options.join(', ') || 'no options'})`);
    }
  }
  if (!flags.model) throw new UsageError('--model DIR is required (a folder with config.json and *.safetensors)');
  if (!!flags.image === !!flags.tensor) throw new UsageError('give exactly one input: --image FILE or --tensor FILE.json');
  if (flags.out && !/\.(png|json)$/i.test(flags.out)) throw new UsageError(`--out must end in .png or .json, got '${flags.out}'`);
  if (!(flags.alpha >= 0 && flags.alpha <= 1)) throw new UsageError(`--alpha must be between 0 and 1, got '${flags.alpha}'`);

  await ensureBackend(flags.backend);
  const model = await loadModel(flags.model, { warn: (m) => process.stderr.write(`relprop: warning: ${m}\n`) });
  let loaded: LoadedImage | null = null;
  try {
    if (!(model instanceof ViTModel)) throw new UsageError(`model '${model.name}' does not take images`);
    loaded = flags.image ? await loadImageFile(model, flags.image) : await loadTensorFile(model, flags.tensor!);
    const [e] = await explain(model, loaded.input, {
      method: flags.method,
      target: flags.target ?? 'predicted',
      startLayer: flags.startLayer,
      rules: flags.rules,
      steps: flags.steps,
    });
    const result = e!;
    const json = explanationJson(result, model);
    if (flags.out) {
      await fs.mkdir(path.dirname(path.resolve(flags.out)), { recursive: true });
      if (/\.json$/i.test(flags.out)) {
        await fs.writeFile(flags.out, JSON.stringify(json) + '\n');
      } else {
        const base = loaded.original ?? loaded.view;
        // Signed maps (LRP, gradient × input) need a diverging colormap so that negative evidence shows.
        const colormap = flags.colormap ?? (method.signed ? 'bwr' : 'jet');
        const overlay = overlayHeatmap(base, result.map, result.shape as [number, number], { colormap, alpha: flags.alpha });
        await writePng(flags.out, overlay);
      }
    }
    if (flags.json) process.stdout.write(JSON.stringify(json) + '\n');
    else process.stdout.write(summary(result, model) + (flags.out ? `wrote ${flags.out}\n` : ''));
  } finally {
    loaded?.input.pixels.dispose();
    model.dispose();
  }
}

export function explainCommand(): Command {
  return new Command('explain')
    .description('Explain one input with one method: print the map as JSON, write an overlay PNG, or show a summary.')
    .option('--model <dir>', 'model folder: config.json + *.safetensors (timm or HuggingFace ViT/DeiT layout)')
    .option('--image <file>', 'input image (PNG, JPEG, WebP, …), resized and normalised as the model expects')
    .option('--tensor <file>', 'input as a JSON tensor {"dtype","shape","data"} of already-normalised pixels, shape [1,3,H,W]')
    .option('--method <id>', 'explanation method (see --list-methods)', 'rollout')
    .option('--target <k>', 'class to explain (default: the predicted class)', integer('--target'))
    .option('--start-layer <n>', 'first layer of rollout-style products (the authors\' start_layer; default 0)', integer('--start-layer'))
    .option('--rules <id>', 'rule set for relevance methods: paper (Chefer et al.) or baseline (their original-LRP baseline)')
    .option('--steps <n>', 'integration steps for integrated-gradients (default 50)', integer('--steps', 1))
    .option('--out <file>', 'write the result: FILE.png (heatmap overlaid on the input) or FILE.json')
    .option('--json', 'print one JSON object to stdout: {method, target, logits, map: {shape, data}, ledger, …}')
    .option('--list-methods', 'list the available methods and exit')
    .addOption(new Option('--colormap <name>', 'overlay colormap (default: jet, or bwr for signed maps)').choices([...COLORMAPS]))
    .option('--alpha <a>', 'overlay opacity, 0..1', Number, 0.5)
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (flags: ExplainFlags) => run(flags));
}
