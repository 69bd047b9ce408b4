/**
 * The report of one input explained by one or more methods: the input, the prediction, each
 * method's map with its time and conservation status, the ledger chart and the per-layer
 * attention relevance of relevance-propagation methods. The app's "Export report" and
 * `relprop explain --report` both write it, so a figure looks the same whichever made it.
 *
 * Like the compare report, it is one self-contained page: inline CSS, no scripts, no remote
 * content, a CSP that forbids them, pictures only as data: URIs; a pure function of its input.
 */
import { escapeHtml as e, sentenceHtml, type HighlightWord } from './token-highlight.js';
import { ledgerChartSvg, type LedgerPoint } from './ledger-chart.js';
import { provenanceLines, type Provenance } from '../provenance.js';

export interface ReportLedger {
  readonly tolerance: number;
  readonly conserved: boolean;
  /** Boundaries the rule set does not claim to conserve. */
  readonly exempt?: number;
  readonly largestDrift: number;
  readonly largestDriftLayer: string;
  readonly rows: readonly LedgerPoint[];
}

export interface ReportMethodResult {
  /** What produced this map: shown in the report's Provenance section and embedded as JSON. */
  readonly provenance?: Provenance;
  readonly method: string;
  readonly title: string;
  readonly ms: number;
  readonly signed: boolean;
  /** Images: the overlay as a PNG data URL. */
  readonly overlayPng?: string;
  /** Text: word relevance (offsets into the input text). */
  readonly words?: readonly HighlightWord[];
  readonly ledger: ReportLedger | null;
  readonly layers?: ReadonlyArray<{ readonly layer: number; readonly total: number; readonly overlayPng?: string; readonly words?: readonly HighlightWord[] }>;
}

export interface ExplanationReportInput {
  readonly title?: string;
  readonly model: string;
  readonly input: { readonly kind: 'image'; readonly name: string; readonly png: string } | { readonly kind: 'text'; readonly name: string; readonly text: string };
  readonly prediction: ReadonlyArray<{ readonly classId: number; readonly label: string; readonly probability: number }>;
  readonly target: { readonly classId: number; readonly label: string };
  /** Set when the maps explain logit(target) − logit(contrast). */
  readonly contrast?: { readonly classId: number; readonly label: string };
  readonly results: readonly ReportMethodResult[];
}

const CSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;padding:24px;background:#fff;color:#1a1a1a;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:1000px;margin:0 auto}
h1{font-size:19px;margin:0 0 4px}
h2{font-size:15px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:0 0 6px}
.muted{color:#666}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.top{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.top img{width:224px;height:auto;image-rendering:pixelated;border:1px solid #ddd}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #eee}
th{font-weight:600;color:#444;border-bottom:1px solid #ccc}
td.num{text-align:right}
tr.target td{font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px;break-inside:avoid}
.card img{width:100%;height:auto;image-rendering:pixelated}
.card .foot{display:flex;justify-content:space-between;font-size:12px;margin-top:6px}
.ok{color:#15803d}.bad{color:#b91c1c}
p.sentence{font-size:17px;line-height:2;margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
span.w{padding:.12em 0;border-radius:3px}
.method{break-inside:avoid;margin-bottom:18px}
.layers{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:8px;margin-top:8px}
.layers figure{margin:0;font-size:11px;text-align:center}
.layers img{width:100%;height:auto;image-rendering:pixelated}
.layers p.sentence{font-size:12px;line-height:1.7;text-align:left}
.layers.text{grid-template-columns:1fr}
footer{margin-top:28px;color:#666;font-size:11px;border-top:1px solid #ddd;padding-top:6px}
@page{size:A4;margin:12mm}
`;

function pct(p: number): string {
  return Number.isFinite(p) ? `${(p * 100).toFixed(p >= 0.9995 && p < 1 ? 2 : 1)} %` : '—';
}

function msText(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v >= 100 ? 0 : 1)} ms`;
}

/** Only data: PNGs may go into an img: anything else would be remote content or markup. */
function img(src: string | undefined, alt: string): string {
  if (!src || !/^data:image\/png;base64,[A-Za-z0-9+/=]+$/.test(src)) return '';
  return `<img src="${src}" alt="${e(alt)}">`;
}

function status(l: ReportLedger | null): string {
  if (!l) return '<span class="muted">no ledger</span>';
  return l.conserved
    ? `<span class="ok">✓ conserved to ${l.tolerance.toExponential(0)}${l.exempt ? ` (${l.exempt} boundaries exempt)` : ''}</span>`
    : `<span class="bad">✗ drift ${l.largestDrift.toExponential(1)} at ${e(l.largestDriftLayer)}</span>`;
}

function mapOf(r: ReportMethodResult, input: ExplanationReportInput['input']): string {
  if (input.kind === 'image') return img(r.overlayPng, `${r.title} relevance`);
  return r.words ? sentenceHtml(input.text, r.words) : '';
}

function layerSection(r: ReportMethodResult, input: ExplanationReportInput['input']): string {
  if (!r.ledger && !r.layers?.length) return '';
  const chart = r.ledger ? ledgerChartSvg(r.ledger.rows, { tolerance: r.ledger.tolerance, width: 900, height: 200 }) : '';
  const layers = r.layers?.length
    ? `<div class="layers${input.kind === 'text' ? ' text' : ''}">${r.layers
        .map(
          (l) =>
            `<figure>${input.kind === 'image' ? img(l.overlayPng, `layer ${l.layer}`) : l.words ? sentenceHtml(input.text, l.words) : ''}<figcaption>block ${l.layer} · ΣR<sup>(A)</sup> ${Number(l.total.toPrecision(3))}</figcaption></figure>`,
        )
        .join('')}</div>`
    : '';
  return `<section class="method"><h3>${e(r.title)} <span class="muted">(<code>${e(r.method)}</code>)</span> — ${status(r.ledger)}</h3>${chart}${layers}</section>`;
}

export function explanationReportHtml(report: ExplanationReportInput): string {
  const title = report.title ?? `relprop: ${report.input.name}`;
  const inputHtml = report.input.kind === 'image' ? img(report.input.png, report.input.name) : `<p class="sentence" dir="auto">${e(report.input.text)}</p>`;
  const prediction = `<table><thead><tr><th>class</th><th>label</th><th class="num">probability</th></tr></thead><tbody>${report.prediction
    .map((c) => `<tr${c.classId === report.target.classId ? ' class="target"' : ''}><td class="num">${c.classId}</td><td>${e(c.label)}</td><td class="num">${pct(c.probability)}</td></tr>`)
    .join('')}</tbody></table>`;
  const predicted = report.prediction[0];
  const targetNote = predicted && predicted.classId !== report.target.classId ? ' <span class="bad">(not the predicted class)</span>' : ' <span class="muted">(the predicted class)</span>';
  const cards = report.results
    .map(
      (r) =>
        `<article class="card" data-method="${e(r.method)}"><h3>${e(r.title)}</h3>${mapOf(r, report.input)}<div class="foot">${status(r.ledger)}<span class="muted">${msText(r.ms)}</span></div></article>`,
    )
    .join('');
  const layerSections = report.results.map((r) => layerSection(r, report.input)).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${e(title)}</h1>
<p class="muted">Model <code>${e(report.model)}</code> · explaining <strong>${e(report.target.label)}</strong> (class ${report.target.classId})${targetNote}${report.contrast ? ` rather than <strong>${e(report.contrast.label)}</strong> (class ${report.contrast.classId}): the maps explain the difference of the two logits` : ''}</p>
<div class="top">${inputHtml}${prediction}</div>
<h2>Relevance</h2>
<p class="muted">${report.input.kind === 'image' ? 'Each map over the input; diverging colours (blue − / red +) for signed methods.' : 'Words shaded blue (against) to red (for); hover a word for its value.'} Times are incremental: the first method pays for the shared forward pass.</p>
<div class="grid">${cards}</div>
${layerSections ? `<h2>Layers</h2><p class="muted">The conservation ledger (relevance total at each boundary, head first; the dashed line is the starting total, red points drift beyond the tolerance) and, per block, the relevance that reached its attention, in the [CLS] row.</p>${layerSections}` : ''}
${provenanceSection(report.results)}
<footer>Generated by relprop.</footer>
</main>
</body>
</html>
`;
}

/**
 * Each map's provenance, readable (and printed in the PDF), and as JSON for tools in a hidden element
 * (no script: the report runs none).
 */
function provenanceSection(results: readonly ReportMethodResult[]): string {
  const given = results.filter((r) => r.provenance);
  if (!given.length) return '';
  const blocks = given.map((r) => `<h3>${e(r.title)}</h3><pre class="prov">${e(provenanceLines(r.provenance!).join('\n'))}</pre>`).join('');
  return `<h2>Provenance</h2>${blocks}<pre hidden id="relprop-provenance">${e(JSON.stringify(given.map((r) => r.provenance)))}</pre>`;
}
