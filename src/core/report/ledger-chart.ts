/**
 * The conservation ledger as a chart: the relevance total at every layer boundary, in the order
 * the relevance pass crosses them (head first, input last). A conservative pass is a flat line at
 * the starting total; a rule that leaks or multiplies relevance shows as a step at its layer.
 *
 * Plain SVG built as a string, with presentation attributes only (no style attributes, no script),
 * so the same markup works in the HTML reports (whose CSP allows no scripts) and in the app's
 * renderer under its strict CSP, in Node and in a browser alike.
 */
import { escapeHtml as e } from './token-highlight.js';

export interface LedgerPoint {
  readonly layer: string;
  readonly kind: string;
  /** Nesting in the module tree (0: the residual stream's boundaries; deeper: inside a block). */
  readonly depth?: number;
  readonly relevanceIn: number;
  readonly relevanceOut: number;
  readonly drift: number;
  /** The rule set does not claim conservation here: drawn apart, not as a violation. */
  readonly expected?: boolean;
  /** float32's resolution here: drifts below it are rounding. */
  readonly resolution?: number;
}

export interface LedgerChartOptions {
  readonly width?: number;
  readonly height?: number;
  /** Boundaries whose drift exceeds this are marked. */
  readonly tolerance?: number;
}

const r2 = (v: number) => String(Math.round(v * 100) / 100);

function tick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2);
}

/** Axis labels: a block by its number (b3), anything else by its last name part, whole (rotated to fit). */
function shortName(layer: string): string {
  const block = /\.(\d+)$/.exec(layer);
  return block ? `b${block[1]}` : (layer.split('.').pop() ?? layer);
}

interface Point extends LedgerPoint {
  /** A boundary nested inside this one drifts (beyond tolerance / expected). */
  readonly nestedDrift: boolean;
  readonly nestedExpected: boolean;
}

/**
 * The residual stream's boundaries are plotted, down to the depth where the blocks are (ViT's
 * `blocks.N` is top-level, BERT's `bert.encoder.layer.N` two levels down); anything deeper (a block's
 * MLP branch, the attention internals) carries just its branch's share, and mixing it in would draw
 * a sawtooth that looks like leakage. A point is marked when anything below it drifts.
 */
function streamBoundaries(rows: readonly LedgerPoint[], tolerance: number): Point[] {
  const blockDepths = rows.filter((r) => /\.\d+$/.test(r.layer)).map((r) => r.depth ?? 0);
  const limit = blockDepths.length ? Math.min(...blockDepths) : Math.min(...rows.map((r) => r.depth ?? 0));
  const out: Point[] = [];
  rows.forEach((r, i) => {
    const depth = r.depth ?? 0;
    if (depth > limit) return;
    let nestedDrift = false;
    let nestedExpected = false;
    for (let j = i + 1; j < rows.length && (rows[j]!.depth ?? 0) > depth; j++) {
      const n = rows[j]!;
      if ((n.depth ?? 0) <= limit) continue; // plotted itself
      if (n.expected) nestedExpected = true;
      else if (!(n.drift <= Math.max(tolerance, n.resolution ?? 0))) nestedDrift = true;
    }
    out.push({ ...r, nestedDrift, nestedExpected });
  });
  return out;
}

/** One point per boundary of the residual stream: the total entering it, then one final point for what leaves the last. */
export function ledgerChartSvg(all: readonly LedgerPoint[], options: LedgerChartOptions = {}): string {
  const width = options.width ?? 640;
  const height = options.height ?? 200;
  const tolerance = options.tolerance ?? 1e-3;
  const rows = all.length ? streamBoundaries(all, tolerance) : [];
  const finite = (v: number) => (Number.isFinite(v) ? v : 0);
  const values = [...rows.map((r) => finite(r.relevanceIn)), ...(rows.length ? [finite(rows[rows.length - 1]!.relevanceOut)] : [])];
  if (values.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="40" role="img" aria-label="empty ledger"><text x="8" y="24" font-size="12" fill="#666">No ledger.</text></svg>`;
  }
  const left = 64;
  const right = 12;
  const top = 12;
  // Room for the boundary names, drawn slanted so that long ones (patch_embed, LayerNorm) are not cut.
  const named = (width - left - right) / Math.max(1, values.length - 1) >= 34;
  const bottom = named ? 64 : 28;
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-12) hi = lo + 1;
  // Headroom so a flat line at the top is not drawn on the frame.
  hi += (hi - lo) * 0.08;
  const x = (i: number) => left + (values.length === 1 ? 0 : (i * (width - left - right)) / (values.length - 1));
  const y = (v: number) => top + ((hi - v) * (height - top - bottom)) / (hi - lo);
  const start = values[0]!;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" data-points="${rows.length}" aria-label="Relevance total at each of ${rows.length} boundaries of the residual stream, from the head to the input">`);
  parts.push(`<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#ccc"/>`);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${r2(y(v))}" y2="${r2(y(v))}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 6}" y="${r2(y(v) + 4)}" font-size="11" text-anchor="end" fill="#666">${e(tick(v))}</text>`);
  }
  // The starting total, dashed: what a conservative pass keeps all the way down.
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${r2(y(start))}" y2="${r2(y(start))}" stroke="#888" stroke-dasharray="4 3"/>`);
  parts.push(`<polyline fill="none" stroke="#2563eb" stroke-width="2" points="${values.map((v, i) => `${r2(x(i))},${r2(y(v))}`).join(' ')}"/>`);
  rows.forEach((row, i) => {
    const bad = row.nestedDrift || (!row.expected && !(row.drift <= Math.max(tolerance, row.resolution ?? 0)));
    const expected = !bad && (row.expected || row.nestedExpected);
    const colour = bad ? '#dc2626' : expected ? '#d97706' : '#2563eb';
    const note = expected ? ' (holds a rule that does not claim conservation)' : row.nestedDrift ? ' (a boundary inside drifts)' : '';
    parts.push(
      `<circle cx="${r2(x(i))}" cy="${r2(y(values[i]!))}" r="${bad || expected ? 4 : 3}" fill="${colour}" data-status="${bad ? 'drift' : expected ? 'expected' : 'ok'}"><title>${e(`${row.layer} (${row.kind}): in ${tick(row.relevanceIn)}, out ${tick(row.relevanceOut)}, drift ${row.drift.toExponential(1)}${note}`)}</title></circle>`,
    );
  });
  // Every boundary named while they fit (a 12-block model has ~16); otherwise the two ends.
  if (named) {
    const label = (cx: number, text: string) =>
      `<text x="${r2(cx)}" y="${height - bottom + 14}" font-size="10" text-anchor="end" fill="#666" transform="rotate(-35 ${r2(cx)} ${height - bottom + 14})">${e(text)}</text>`;
    rows.forEach((row, i) => parts.push(label(x(i), shortName(row.layer))));
    parts.push(label(x(values.length - 1), 'input'));
  } else {
    parts.push(`<text x="${left}" y="${height - 8}" font-size="11" fill="#666">${e(rows[0]!.layer)}</text>`);
    parts.push(`<text x="${width - right}" y="${height - 8}" font-size="11" text-anchor="end" fill="#666">${e(rows[rows.length - 1]!.layer)} → input</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}
