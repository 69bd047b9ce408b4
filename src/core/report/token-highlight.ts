/**
 * Token-highlight export for text explanations: a standalone HTML page (and its JSON twin) showing
 * the sentence with each word shaded by its relevance.
 *
 * The page must open safely from anywhere (e-mail attachments, file://, a sandboxed iframe in the
 * app), so it carries its own CSS, no scripts, no remote content, and a CSP that forbids all of them
 * even if an escaping bug let markup through. It is plain string building so the same code runs in
 * Node (CLI) and in the renderer without a DOM.
 *
 * Offsets are JavaScript string indices (UTF-16 code units), as `String.prototype.slice` uses.
 */
import { provenanceLines, type Provenance } from '../provenance.js';
import { InputError } from '../errors.js';

export interface HighlightPiece {
  readonly token: string;
  readonly relevance: number;
}

export interface HighlightWord {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly relevance: number;
  /** The sub-word tokens the word's relevance was summed from, e.g. `wonder`, `##ful`. */
  readonly pieces?: ReadonlyArray<HighlightPiece>;
}

export interface TokenHighlightInput {
  /** The original sentence. */
  readonly text: string;
  /** Char offsets into `text`, non-overlapping and sorted; text between words is shown unshaded. */
  readonly words: readonly HighlightWord[];
  /** Method id, e.g. 'transformer-attribution'. */
  readonly method: string;
  readonly methodTitle?: string;
  readonly target: { readonly id: number; readonly label: string };
  readonly prediction: { readonly id: number; readonly label: string; readonly probability: number };
  readonly model: string;
  /** e.g. [CLS], [SEP]: listed below the sentence, not shaded and not part of the scale. */
  readonly specialTokens?: ReadonlyArray<HighlightPiece>;
  /** One line, e.g. "conserved to 1e-3 (largest drift 2e-7)". */
  readonly ledgerSummary?: string;
  /** What produced the map: printed below it, and as JSON in a hidden element for tools. */
  readonly provenance?: Provenance;
}

export interface TokenHighlightJson {
  text: string;
  method: string;
  methodTitle?: string;
  target: { id: number; label: string };
  prediction: { id: number; label: string; probability: number };
  model: string;
  words: Array<{
    text: string;
    start: number;
    end: number;
    relevance: number;
    /** relevance / scale.maxAbs, in [−1, 1]; 0 when every word has zero relevance. */
    normalised: number;
    pieces?: Array<{ token: string; relevance: number }>;
  }>;
  special?: Array<{ token: string; relevance: number }>;
  ledgerSummary?: string;
  scale: { maxAbs: number };
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  // HTML parsers turn a literal CR (or CRLF) into LF; a reference survives, so the text round-trips.
  '\r': '&#13;',
};

/** Safe for both element content and quoted attribute values (either quote style). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => ESCAPES[c]!);
}

/**
 * Rejects input that would silently render a wrong page: offsets that don't cut the sentence into
 * words in order, or relevance that can't be put on a scale (NaN/∞ would also make the JSON invalid).
 */
function validate(input: Pick<TokenHighlightInput, 'text' | 'words' | 'specialTokens'>): void {
  let previousEnd = 0;
  input.words.forEach((w, i) => {
    const where = `word ${i} (${JSON.stringify(w.text)})`;
    if (!Number.isInteger(w.start) || !Number.isInteger(w.end) || w.start < 0 || w.end > input.text.length || w.start > w.end) {
      throw new InputError(`${where}: offsets [${w.start}, ${w.end}) are not within the sentence (length ${input.text.length})`);
    }
    if (w.start < previousEnd) {
      throw new InputError(`${where}: starts at ${w.start}, before the previous word ends (${previousEnd}); words must be sorted and non-overlapping`);
    }
    if (!Number.isFinite(w.relevance)) {
      throw new InputError(`${where}: relevance is ${w.relevance}, not a finite number`);
    }
    for (const p of w.pieces ?? []) {
      if (!Number.isFinite(p.relevance)) throw new InputError(`${where}: piece ${JSON.stringify(p.token)} has relevance ${p.relevance}`);
    }
    previousEnd = w.end;
  });
  for (const s of input.specialTokens ?? []) {
    if (!Number.isFinite(s.relevance)) throw new InputError(`special token ${JSON.stringify(s.token)} has relevance ${s.relevance}`);
  }
}

function maxAbsOf(words: readonly HighlightWord[]): number {
  let m = 0;
  for (const w of words) m = Math.max(m, Math.abs(w.relevance));
  return m;
}

/** Signed and symmetric, so the colour's hue always means the sign; 0 (not NaN) when all relevance is 0. */
function normalise(relevance: number, maxAbs: number): number {
  if (maxAbs === 0) return 0;
  return Math.max(-1, Math.min(1, relevance / maxAbs));
}

type Rgb = readonly [number, number, number];

/** matplotlib's 'bwr': linear blue (0,0,255) → white → red (255,0,0); `n` in [−1, 1]. */
export function bwr(n: number): Rgb {
  const t = Math.max(-1, Math.min(1, n));
  const fade = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

function rgbCss([r, g, b]: Rgb): string {
  return `rgb(${r},${g},${b})`;
}

const DARK_TEXT = '#1a1a1a';
const DARK_TEXT_RGB: Rgb = [0x1a, 0x1a, 0x1a];

function luminance([r, g, b]: Rgb): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/**
 * Picks whichever of dark or white text has the higher WCAG contrast on this shade. A fixed
 * |n| threshold would be wrong for one side: white wins on strong blue, but on pure red dark text
 * still has the better contrast (≈4.7:1 against ≈4.0:1).
 */
function textColourOn(bg: Rgb): string | undefined {
  const l = luminance(bg);
  const onDark = (l + 0.05) / (luminance(DARK_TEXT_RGB) + 0.05);
  const onWhite = 1.05 / (l + 0.05);
  return onWhite > onDark ? '#fff' : undefined;
}

function shadeStyle(n: number): string {
  const bg = bwr(n);
  const fg = textColourOn(bg);
  return `background: ${rgbCss(bg)}${fg ? `; color: ${fg}` : ''}`;
}

function sign(x: number): string {
  return x < 0 ? '\u2212' : '+';
}

/** For one value on its own (hover titles): 3 significant digits, typographic minus, explicit plus. */
function fmt(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  const body = a >= 1e-3 && a < 1e4 ? String(Number(a.toPrecision(3))) : a.toExponential(2);
  return sign(x) + body;
}

/**
 * For values read against each other (table, legend, special tokens): one fixed number of decimals
 * chosen from the scale, so columns line up and a small value looks small rather than gaining
 * digits the way 3 significant figures would.
 */
function scaledFormatter(maxAbs: number): (x: number) => string {
  if (maxAbs === 0) return fmt;
  if (maxAbs < 1e-3 || maxAbs >= 1e5) return (x) => (x === 0 ? '0' : sign(x) + Math.abs(x).toExponential(2));
  const decimals = Math.min(6, Math.max(0, 2 - Math.floor(Math.log10(maxAbs))));
  return (x) => (x === 0 ? '0' : sign(x) + Math.abs(x).toFixed(decimals));
}

function fmtPercent(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  const pct = p * 100;
  // 99.96% rounded to one decimal reads as a certain "100.0%"; keep the digits that show it isn't.
  let digits = 1;
  while (pct < 100 && digits < 4 && pct.toFixed(digits).startsWith('100')) digits++;
  return `${pct.toFixed(digits)}%`;
}

function hoverTitle(w: HighlightWord): string {
  let s = `${w.text}: ${fmt(w.relevance)}`;
  if (w.pieces && w.pieces.length > 0) {
    s += ` (pieces: ${w.pieces.map((p) => `${p.token} ${fmt(p.relevance)}`).join(', ')})`;
  }
  return s;
}

export function tokenHighlightJson(input: TokenHighlightInput): TokenHighlightJson {
  validate(input);
  const maxAbs = maxAbsOf(input.words);
  const out: TokenHighlightJson = {
    text: input.text,
    method: input.method,
    ...(input.methodTitle !== undefined ? { methodTitle: input.methodTitle } : {}),
    target: { id: input.target.id, label: input.target.label },
    prediction: { id: input.prediction.id, label: input.prediction.label, probability: input.prediction.probability },
    model: input.model,
    words: input.words.map((w) => ({
      text: w.text,
      start: w.start,
      end: w.end,
      relevance: w.relevance,
      normalised: normalise(w.relevance, maxAbs),
      ...(w.pieces ? { pieces: w.pieces.map((p) => ({ token: p.token, relevance: p.relevance })) } : {}),
    })),
    scale: { maxAbs },
  };
  if (input.specialTokens) out.special = input.specialTokens.map((s) => ({ token: s.token, relevance: s.relevance }));
  if (input.ledgerSummary !== undefined) out.ledgerSummary = input.ledgerSummary;
  return out;
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; background: #fff; color: ${DARK_TEXT};
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
main { max-width: 860px; margin: 0 auto; }
header { border-bottom: 1px solid #ddd; padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 17px; margin: 0 0 6px; font-weight: 600; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-size: 14px; }
dl.meta dt { color: #666; }
dl.meta dd { margin: 0; }
.muted { color: #666; }
.note { color: #8a4b00; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
p.sentence { font-size: 22px; line-height: 2.1; margin: 0 0 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
/* Vertical padding only: horizontal padding would look like a space between adjacent words. */
span.w { padding: 0.12em 0; border-radius: 3px; box-shadow: inset 0 -1px 0 rgba(0,0,0,0.18); }
.special { font-size: 13px; margin: 0 0 16px; }
.special span.tok { display: inline-block; margin: 0 8px 4px 0; padding: 1px 6px; border: 1px solid #ccc; border-radius: 3px; }
.legend { margin: 0 0 20px; font-size: 13px; }
.legend .bar { height: 14px; width: 100%; max-width: 420px; border: 1px solid #999; border-radius: 2px;
  background: linear-gradient(to right, rgb(0,0,255), rgb(255,255,255), rgb(255,0,0)); }
.legend .ticks { display: flex; justify-content: space-between; max-width: 420px; font-variant-numeric: tabular-nums; }
.legend .caption { margin-top: 4px; }
table.top { border-collapse: collapse; font-size: 14px; margin-bottom: 18px; font-variant-numeric: tabular-nums; }
table.top th, table.top td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; }
table.top th { font-weight: 600; color: #444; border-bottom: 1px solid #ccc; }
table.top td.num { text-align: right; }
table.top td.rank { color: #888; text-align: right; }
table.top td.gap, table.top th.gap { border: none; width: 18px; padding: 0; }
table.top span.t { padding: 1px 4px; border-radius: 3px; }
footer { border-top: 1px solid #ddd; padding-top: 8px; font-size: 13px; color: #666; }
`;

/** The sentence with each word shaded (bwr, scaled by the largest |relevance|) and its value on hover; for other reports too. */
export function sentenceHtml(text: string, words: readonly HighlightWord[]): string {
  validate({ text, words });
  return renderSentence({ text, words }, maxAbsOf(words));
}

function renderSentence(input: Pick<TokenHighlightInput, 'text' | 'words'>, maxAbs: number): string {
  const parts: string[] = [];
  let cursor = 0;
  input.words.forEach((w, i) => {
    parts.push(escapeHtml(input.text.slice(cursor, w.start)));
    parts.push(
      `<span class="w" data-i="${i}" data-relevance="${w.relevance}" title="${escapeHtml(hoverTitle(w))}"` +
        ` style="${shadeStyle(normalise(w.relevance, maxAbs))}">${escapeHtml(input.text.slice(w.start, w.end))}</span>`,
    );
    cursor = w.end;
  });
  parts.push(escapeHtml(input.text.slice(cursor)));
  // No whitespace inside <p>: with white-space: pre-wrap it would show, and the text content must
  // be exactly the sentence.
  return `<p class="sentence" dir="auto">${parts.join('')}</p>`;
}

function renderTopTable(input: TokenHighlightInput, maxAbs: number): string {
  const num = scaledFormatter(maxAbs);
  const indexed = input.words.map((w, i) => ({ w, i }));
  const positive = indexed.filter((x) => x.w.relevance > 0).sort((a, b) => b.w.relevance - a.w.relevance || a.i - b.i).slice(0, 5);
  const negative = indexed.filter((x) => x.w.relevance < 0).sort((a, b) => a.w.relevance - b.w.relevance || a.i - b.i).slice(0, 5);
  // Only when every word is 0, which the legend caption already says.
  if (positive.length === 0 && negative.length === 0) return '';
  const cell = (x: { w: HighlightWord; i: number } | undefined) =>
    x
      ? `<td><span class="t" data-i="${x.i}" title="${escapeHtml(hoverTitle(x.w))}" style="${shadeStyle(normalise(x.w.relevance, maxAbs))}">${escapeHtml(x.w.text)}</span></td><td class="num">${num(x.w.relevance)}</td>`
      : '<td></td><td></td>';
  const rows: string[] = [];
  for (let r = 0; r < Math.max(positive.length, negative.length); r++) {
    rows.push(`<tr><td class="rank">${r + 1}</td>${cell(positive[r])}<td class="gap"></td>${cell(negative[r])}</tr>`);
  }
  return (
    '<table class="top"><thead><tr><th></th><th>Most positive</th><th>Relevance</th><th class="gap"></th><th>Most negative</th><th>Relevance</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

export function tokenHighlightHtml(input: TokenHighlightInput): string {
  validate(input);
  const maxAbs = maxAbsOf(input.words);
  const e = escapeHtml;
  const num = scaledFormatter(maxAbs);

  const methodText = input.methodTitle
    ? `${e(input.methodTitle)} <span class="muted">(<code>${e(input.method)}</code>)</span>`
    : `<code>${e(input.method)}</code>`;
  const targetNote =
    input.target.id === input.prediction.id
      ? ' <span class="muted">(the predicted class)</span>'
      : ' <span class="note">(not the predicted class)</span>';

  const special =
    input.specialTokens && input.specialTokens.length > 0
      ? `<p class="special"><span class="muted">Special tokens (not shaded, not in the scale):</span> ` +
        input.specialTokens.map((s) => `<span class="tok"><code>${e(s.token)}</code> ${num(s.relevance)}</span>`).join('') +
        '</p>'
      : '';

  const legend =
    `<div class="legend"><div class="bar" role="img" aria-label="colour scale from ${num(-maxAbs)} (blue) through 0 (white) to ${num(maxAbs)} (red)"></div>` +
    `<div class="ticks"><span>${num(-maxAbs)}</span><span>0</span><span>${num(maxAbs)}</span></div>` +
    `<div class="caption muted">${
      maxAbs === 0
        ? 'All word relevance is zero, so every word is white.'
        : `Red: evidence for “${e(input.target.label)}”, blue: against. Scaled by the largest |relevance| over the words (${num(maxAbs).slice(1)}). Hover a word for its value.`
    }</div></div>`;

  const ledger = input.ledgerSummary !== undefined ? `<footer>Relevance ledger: ${e(input.ledgerSummary)}</footer>` : '';

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(`relprop: ${input.method} — ${input.target.label}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>Token relevance</h1>
<dl class="meta">
<dt>Model</dt><dd><code>${e(input.model)}</code></dd>
<dt>Method</dt><dd>${methodText}</dd>
<dt>Explaining</dt><dd>${e(input.target.label)} <span class="muted">(class ${e(String(input.target.id))})</span>${targetNote}</dd>
<dt>Prediction</dt><dd>${e(input.prediction.label)} <span class="muted">(class ${e(String(input.prediction.id))})</span>, ${fmtPercent(input.prediction.probability)}</dd>
</dl>
</header>
${renderSentence(input, maxAbs)}
${special}
${legend}
${renderTopTable(input, maxAbs)}
${ledger}
${input.provenance ? `<footer><pre class="prov">${e(provenanceLines(input.provenance).join('\n'))}</pre></footer><pre hidden id="relprop-provenance">${e(JSON.stringify(input.provenance))}</pre>` : ''}
</main>
</body>
</html>
`;
}
