/**
 * `relprop explain --report FILE.html|FILE.pdf`: the one-input report the app exports (same
 * renderer, src/core/report/explanation-report.ts), for one or several methods on one shared
 * explanation context, with the ledger charts and per-block maps of relevance methods.
 */
import { withAtomicFile, writeFileAtomic } from '../core/io/atomic-write.js';
import { ExplainContext, type ExplainProgress } from '../core/context.js';
import { assertFitsInMemory } from '../core/memory.js';
import { htmlToPdf } from '../core/eval/report-pdf.js';
import { encodePng, type RgbImage } from '../core/image/io.js';
import { overlayHeatmap } from '../core/image/overlay.js';
import { attentionRelevanceByLayer } from '../core/layer-relevance.js';
import { getMethod } from '../core/methods/registry.js';
import type { MethodOptions } from '../core/methods/types.js';
import type { ClassifierModel, ModelInput } from '../core/models/types.js';
import { conservationVerdict } from '../core/relevance/ledger.js';
import { explanationReportHtml, type ReportMethodResult } from '../core/report/explanation-report.js';
import { highlightWords } from '../core/text-inputs.js';
import { provenance } from '../core/provenance.js';
import type { Encoding } from '../core/text/tokenizer.js';
import type { ColormapName } from '../core/image/colormap.js';

/** The same tolerance the app judges conservation at. */
const TOLERANCE = 1e-3;

export type ReportView = { readonly kind: 'image'; readonly name: string; readonly image: RgbImage } | { readonly kind: 'text'; readonly name: string; readonly text: string; readonly encoding: Encoding };

export interface ReportRequest {
  readonly methods: readonly string[];
  readonly target: number | 'predicted';
  readonly contrast?: number;
  readonly options: MethodOptions;
  readonly colormap?: ColormapName;
  readonly alpha: number;
}

async function dataUrl(img: RgbImage): Promise<string> {
  return `data:image/png;base64,${Buffer.from(await encodePng(img)).toString('base64')}`;
}

function softmax(xs: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(xs));
  const e = Array.from(xs, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Ctrl-C and progress for the report's methods (see ContextOptions). */
export interface ReportHooks {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ExplainProgress) => void;
}

/** Computes every method, then writes the report; once `hooks.signal` is aborted, throws CancelledError before writing. */
export async function writeExplanationReport(file: string, model: ClassifierModel, input: ModelInput, view: ReportView, request: ReportRequest, hooks: ReportHooks = {}): Promise<void> {
  const methods = request.methods.map(getMethod);
  for (const m of methods) assertFitsInMemory(model, input, m.id);
  const ctx = new ExplainContext(model, input, { ...(request.contrast === undefined ? {} : { contrast: request.contrast }), ...hooks });
  const results: ReportMethodResult[] = [];
  let target: number;
  let prediction: Array<{ classId: number; label: string; probability: number }>;
  try {
    const targets = ctx.resolveTargets(request.target);
    target = targets[0]!;
    prediction = softmax(ctx.logits()[0]!)
      .map((probability, classId) => ({ classId, label: model.labels[classId] ?? `class ${classId}`, probability }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 5);
    for (const method of methods) {
      // Each method gets only the options it takes, so one set of flags can serve them all.
      const used = Object.fromEntries(Object.entries(request.options).filter(([k, v]) => v !== undefined && (method.options as readonly string[]).includes(k))) as MethodOptions;
      const t0 = performance.now();
      const [e] = await method.attribute(ctx, targets, used);
      const ms = performance.now() - t0;
      const ex = e!;
      const colormap = request.colormap ?? (method.signed ? 'bwr' : 'jet');
      const draw = (map: ArrayLike<number>, shape: readonly number[], cm: ColormapName, alpha: number) =>
        view.kind === 'image' ? dataUrl(overlayHeatmap(view.image, map, shape as [number, number], { colormap: cm, alpha })) : Promise.resolve(undefined);
      const words = (map: ArrayLike<number>) => (view.kind === 'text' ? highlightWords(view.encoding, map).map((w) => ({ text: w.text, start: w.start, end: w.end, relevance: w.relevance })) : undefined);
      const overlayPng = await draw(ex.map, ex.shape, colormap, request.alpha);
      const w = words(ex.map);
      const verdict = ex.ledger && ex.ledger.length ? conservationVerdict(ex.ledger, TOLERANCE) : null;
      const layers = verdict
        ? await Promise.all(
            attentionRelevanceByLayer(ctx, ex.options, targets).map(async (l) => {
              const png = await draw(l.map, l.shape, 'bwr', 0.6);
              const lw = words(l.map);
              return { layer: l.layer, total: l.total, ...(png ? { overlayPng: png } : {}), ...(lw ? { words: lw } : {}) };
            }),
          )
        : undefined;
      const rules = typeof ex.options.rules === 'string' ? ex.options.rules : undefined;
      results.push({
        provenance: provenance(model, {
          method: method.id,
          ...(rules ? { rules } : {}),
          options: { ...ex.options, ...(view.kind === 'image' ? { colormap, alpha: request.alpha } : {}) },
          target: ex.target,
          targetLabel: model.labels[ex.target] ?? `class ${ex.target}`,
          ...(ex.contrast !== undefined ? { contrast: ex.contrast, contrastLabel: model.labels[ex.contrast] ?? `class ${ex.contrast}` } : {}),
        }),
        method: method.id,
        title: method.title,
        ms,
        signed: method.signed,
        ...(overlayPng ? { overlayPng } : {}),
        ...(w ? { words: w } : {}),
        ledger: verdict,
        ...(layers ? { layers } : {}),
      });
    }
    ctx.throwIfCancelled();
  } finally {
    ctx.dispose();
  }
  const html = explanationReportHtml({
    model: model.name,
    input: view.kind === 'image' ? { kind: 'image', name: view.name, png: await dataUrl(view.image) } : { kind: 'text', name: view.name, text: view.text },
    prediction,
    target: { classId: target, label: model.labels[target] ?? `class ${target}` },
    ...(request.contrast !== undefined ? { contrast: { classId: request.contrast, label: model.labels[request.contrast] ?? `class ${request.contrast}` } } : {}),
    results,
  });
  if (/\.pdf$/i.test(file)) await withAtomicFile(file, (temp) => htmlToPdf(html, temp));
  else await writeFileAtomic(file, html);
}
