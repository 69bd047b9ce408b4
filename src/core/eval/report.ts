/**
 * The report of a `relprop compare` run: one self-contained HTML page (results table, perturbation
 * curves, Kendall τ grid, example heatmaps) built from a CompareSummary.
 *
 * Like the token-highlight export, the page must open safely from anywhere (an e-mail attachment,
 * file://, the app's sandboxed iframe) and print to PDF: inline CSS only, no scripts, no remote
 * content, a CSP that forbids them even if an escaping bug let markup through, and images only as
 * data: URIs. Charts are hand-written SVG and heatmaps are SVG rects, so this module needs neither a
 * DOM nor an image codec and runs unchanged in Node and in the renderer. The output is a pure
 * function of its input (no dates, no random ids), so a resumed run's report diffs clean.
 */
import { colormap } from '../image/colormap.js';
import { bwr, escapeHtml as e } from '../report/token-highlight.js';
import type { CompareSummary } from './compare.js';

/** provenance.json of the run: what executed it (the rest of its provenance is in the summary's config). */
export interface RunProvenance {
  readonly engine?: string;
  readonly date?: string;
  readonly execution?: Readonly<Record<string, unknown>>;
}

export interface CompareReportOptions {
  readonly title?: string;
  /** Engine and date of the run (provenance.json); shown with the configuration. */
  readonly provenance?: RunProvenance;
  /** PNG bytes of each input as the model saw it, keyed by example id; drawn under its heatmaps. */
  readonly images?: Readonly<Record<string, Uint8Array>>;
}

type Example = CompareSummary['examples'][number];
type Rgb = readonly [number, number, number];

const MAX_EXAMPLES = 6;
const MAX_ERRORS_LISTED = 50;
/** Heatmaps are drawn as one SVG rect per cell; more than 32×32 would bloat the page for no visible gain. */
const MAX_GRID = 32;

// ---------------------------------------------------------------------------------------------
// Numbers

const MINUS = '\u2212';

/** Fixed decimals, typographic minus, '—' for anything that is not a finite number. */
function fixed(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const body = Math.abs(v).toFixed(digits);
  // -0.0004 would otherwise print as "−0.000": a sign on a zero reads as a real difference.
  return v < 0 && /[1-9]/.test(body) ? MINUS + body : body;
}

function ms(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  return fixed(v, v >= 100 ? 0 : v >= 10 ? 1 : 2);
}

/** SVG coordinates: two decimals keep files small and are far below a device pixel. */
function c(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function hex([r, g, b]: Rgb): string {
  return '#' + [r, g, b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function luminance([r, g, b]: Rgb): number {
  const lin = (x: number) => {
    const s = x / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Dark or white text, whichever has the higher WCAG contrast on this fill. */
function inkOn(bg: Rgb): string {
  const l = luminance(bg);
  return 1.05 / (l + 0.05) > (l + 0.05) / (luminance([0x1a, 0x1a, 0x1a]) + 0.05) ? '#fff' : '#1a1a1a';
}

/** btoa needs a binary string and Buffer is Node-only; this works in both and is plain arithmetic. */
function base64(bytes: Uint8Array): string {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += A[(n >> 18) & 63]! + A[(n >> 12) & 63]! + (i + 1 < bytes.length ? A[(n >> 6) & 63]! : '=') + (i + 2 < bytes.length ? A[n & 63]! : '=');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Method colours: Tableau 10, in the order methods were given, so a method keeps its colour
// across reports of runs with the same method list. The random baseline is a grey dashed line:
// it is the reference every other curve is read against, not a competitor.

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#17becf'];
const BASELINE = 'random';

function methodStyles(methods: readonly string[]): Map<string, { colour: string; dash: string | null }> {
  const out = new Map<string, { colour: string; dash: string | null }>();
  let k = 0;
  for (const m of methods) {
    if (m === BASELINE) out.set(m, { colour: '#8c8c8c', dash: '5 3' });
    else out.set(m, { colour: PALETTE[k++ % PALETTE.length]!, dash: k > PALETTE.length ? '2 2' : null });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Results table

interface Column {
  readonly key: string;
  readonly label: string;
  readonly better: 'lower' | 'higher';
  readonly value: (m: string) => number | undefined;
  readonly format: (v: number | undefined) => string;
  readonly title?: (m: string) => string | undefined;
}

const LOCALISATION: ReadonlyArray<readonly [string, string]> = [
  ['pixel_accuracy', 'pixel acc.'],
  ['miou', 'mIoU'],
  ['ap', 'AP'],
  ['pointing_game', 'pointing'],
  ['relevance_mass', 'rel. mass'],
  ['relevance_rank', 'rel. rank'],
];

function renderTable(s: CompareSummary): string {
  const groups: Array<{ label: string; note: string; columns: Column[] }> = [];
  const pert = (m: string, test: string) => s.perturbation[m]?.[test];
  for (const test of ['positive', 'negative'] as const) {
    if (!s.methods.some((m) => pert(m, test))) continue;
    const better = test === 'positive' ? 'lower' : 'higher';
    groups.push({
      label: `${test === 'positive' ? 'Positive' : 'Negative'} perturbation AUC`,
      note: test === 'positive' ? 'most relevant removed first; lower is better ↓' : 'least relevant removed first; higher is better ↑',
      columns: (['accuracy', 'probability'] as const).map((kind) => ({
        key: `${test}.${kind}`,
        label: kind,
        better,
        value: (m: string) => (kind === 'accuracy' ? pert(m, test)?.aucAccuracy : pert(m, test)?.aucProbability),
        format: (v: number | undefined) => fixed(v, 1),
      })),
    });
  }
  const eraser = (m: string, k: string) => s.perMethod[m]?.[`eraser.${k}`];
  if (s.methods.some((m) => eraser(m, 'comprehensiveness'))) {
    groups.push({
      label: 'ERASER (mean)',
      note: 'probability drop with the top 1–50 % of tokens removed (comprehensiveness ↑) or kept alone (sufficiency ↓)',
      columns: (
        [
          ['comprehensiveness', 'compr.', 'higher'],
          ['sufficiency', 'suff.', 'lower'],
        ] as const
      ).map(([k, label, better]) => ({
        key: `eraser.${k}`,
        label,
        better,
        value: (m: string) => eraser(m, k)?.mean,
        format: (v: number | undefined) => fixed(v, 3),
        title: (m: string) => {
          const x = eraser(m, k);
          return x ? `n = ${x.n}, median ${fixed(x.median, 3)}, IQR ${fixed(x.iqr, 3)}` : undefined;
        },
      })),
    });
  }
  const loc = (m: string, k: string) => s.perMethod[m]?.[`localisation.${k}`];
  if (s.methods.some((m) => LOCALISATION.some(([k]) => loc(m, k)))) {
    groups.push({
      label: 'Localisation (mean, %)',
      note: 'against the ground-truth mask or spans; higher is better ↑',
      columns: LOCALISATION.map(([k, label]) => ({
        key: `localisation.${k}`,
        label,
        better: 'higher',
        value: (m: string) => {
          const v = loc(m, k)?.mean;
          return v === undefined ? undefined : v * 100;
        },
        format: (v: number | undefined) => fixed(v, 1),
        title: (m: string) => {
          const x = loc(m, k);
          return x ? `n = ${x.n}, median ${fixed(x.median * 100, 1)}, IQR ${fixed(x.iqr * 100, 1)}` : undefined;
        },
      })),
    });
  }
  groups.push({
    label: 'Time',
    note: 'per explanation ↓',
    columns: [{ key: 'ms', label: 'mean ms', better: 'lower', value: (m: string) => s.timing[m], format: ms }],
  });

  const columns = groups.flatMap((g) => g.columns);
  // The best value is judged on what is printed, so two methods that read the same are both bold.
  const best = columns.map((col) => {
    const shown = s.methods.map((m) => Number(col.format(col.value(m)).replace(MINUS, '-'))).filter((v) => Number.isFinite(v));
    if (shown.length < 2) return NaN;
    return col.better === 'lower' ? Math.min(...shown) : Math.max(...shown);
  });

  const head1 = ['<th rowspan="2" class="method">Method</th>']
    .concat(groups.map((g) => `<th colspan="${g.columns.length}" class="group" title="${e(g.note)}">${e(g.label)}<div class="note">${e(g.note)}</div></th>`))
    .join('');
  const head2 = columns.map((col) => `<th class="num">${e(col.label)}</th>`).join('');
  const styles = methodStyles(s.methods);
  const rows = s.methods.map((m) => {
    const cells = columns.map((col, i) => {
      const text = col.format(col.value(m));
      const isBest = text !== '—' && Number(text.replace(MINUS, '-')) === best[i];
      const title = col.title?.(m);
      return `<td class="num${isBest ? ' best' : ''}" data-col="${e(col.key)}"${title ? ` title="${e(title)}"` : ''}>${isBest ? `<strong>${text}</strong>` : text}</td>`;
    });
    const st = styles.get(m)!;
    return `<tr data-method="${e(m)}"><th scope="row" class="method">${swatch(st.colour, st.dash)}<code>${e(m)}</code></th>${cells.join('')}</tr>`;
  });
  return (
    `<table class="results"><thead><tr>${head1}</tr><tr>${head2}</tr></thead><tbody>${rows.join('')}</tbody></table>` +
    `<p class="caption">AUC: area under the accuracy (or probability of the explained class) curve as 0–90 % of the input is removed, ×100 (as Chefer et al. report it). ` +
    `Bold: the best value in each column. “—”: not measured or not defined.</p>`
  );
}

function swatch(colour: string, dash: string | null): string {
  return `<svg class="swatch" width="22" height="10" viewBox="0 0 22 10" aria-hidden="true"><line x1="1" y1="5" x2="21" y2="5" stroke="${colour}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/></svg>`;
}

// ---------------------------------------------------------------------------------------------
// Perturbation curves

const CHART = { width: 360, height: 250, left: 46, right: 12, top: 12, bottom: 42 } as const;

function renderCurves(s: CompareSummary): string {
  const tests = (['positive', 'negative'] as const).filter((t) => s.methods.some((m) => s.perturbation[m]?.[t]));
  if (tests.length === 0) return '';
  const styles = methodStyles(s.methods);
  const allX = s.methods.flatMap((m) => tests.flatMap((t) => s.perturbation[m]?.[t]?.fractions ?? []));
  const xMax = Math.max(0.9, ...allX.filter((x) => Number.isFinite(x)));
  const pw = CHART.width - CHART.left - CHART.right;
  const ph = CHART.height - CHART.top - CHART.bottom;
  const X = (f: number) => CHART.left + (f / xMax) * pw;
  const Y = (v: number) => CHART.top + (1 - v) * ph;

  const panel = (test: 'positive' | 'negative') => {
    const parts: string[] = [];
    for (let i = 0; i <= 4; i++) {
      const v = i / 4;
      parts.push(`<line class="grid" x1="${c(CHART.left)}" x2="${c(CHART.left + pw)}" y1="${c(Y(v))}" y2="${c(Y(v))}"/>`);
      parts.push(`<text class="tick" x="${c(CHART.left - 6)}" y="${c(Y(v) + 3.5)}" text-anchor="end">${fixed(v, 2)}</text>`);
    }
    for (let k = 0; k <= Math.round(xMax * 10); k++) {
      const f = k / 10;
      parts.push(`<line class="axis" x1="${c(X(f))}" x2="${c(X(f))}" y1="${c(CHART.top + ph)}" y2="${c(CHART.top + ph + 4)}"/>`);
      parts.push(`<text class="tick" x="${c(X(f))}" y="${c(CHART.top + ph + 15)}" text-anchor="middle">${k * 10}</text>`);
    }
    parts.push(`<line class="axis" x1="${c(CHART.left)}" x2="${c(CHART.left + pw)}" y1="${c(CHART.top + ph)}" y2="${c(CHART.top + ph)}"/>`);
    parts.push(`<line class="axis" x1="${c(CHART.left)}" x2="${c(CHART.left)}" y1="${c(CHART.top)}" y2="${c(CHART.top + ph)}"/>`);
    parts.push(
      `<text class="label" x="${c(CHART.left + pw / 2)}" y="${c(CHART.height - 6)}" text-anchor="middle">% of input removed (${test === 'positive' ? 'most' : 'least'} relevant first)</text>`,
    );
    parts.push(`<text class="label" transform="translate(11 ${c(CHART.top + ph / 2)}) rotate(-90)" text-anchor="middle">accuracy</text>`);
    // The baseline first, so the methods' lines are drawn over it.
    const order = [...s.methods.filter((m) => m === BASELINE), ...s.methods.filter((m) => m !== BASELINE)];
    for (const m of order) {
      const curve = s.perturbation[m]?.[test];
      if (!curve) continue;
      const st = styles.get(m)!;
      // A NaN step (no input reached it) is left out rather than drawn as 0.
      const pts = curve.fractions.flatMap((f, i) => (Number.isFinite(curve.accuracy[i]) && Number.isFinite(f) ? [[X(f), Y(curve.accuracy[i]!)] as const] : []));
      parts.push(
        `<polyline class="curve" data-method="${e(m)}" data-test="${test}" fill="none" stroke="${st.colour}" stroke-width="2"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}` +
          ` points="${pts.map(([x, y]) => `${c(x)},${c(y)}`).join(' ')}"><title>${e(`${m}: AUC ${fixed(curve.aucAccuracy, 1)}`)}</title></polyline>`,
      );
      for (const [x, y] of pts) parts.push(`<circle cx="${c(x)}" cy="${c(y)}" r="2" fill="${st.colour}"/>`);
    }
    const heading = test === 'positive' ? 'Positive test <span class="muted">(lower curve is better)</span>' : 'Negative test <span class="muted">(higher curve is better)</span>';
    return (
      `<figure class="chart"><figcaption>${heading}</figcaption>` +
      `<svg class="curves" data-test="${test}" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="${test} perturbation curves">${parts.join('')}</svg></figure>`
    );
  };
  const legend = s.methods
    .filter((m) => tests.some((t) => s.perturbation[m]?.[t]))
    .map((m) => {
      const st = styles.get(m)!;
      return `<span class="key">${swatch(st.colour, st.dash)}<code>${e(m)}</code></span>`;
    })
    .join('');
  return (
    `<section class="block"><h2>Perturbation curves</h2>` +
    `<div class="legend-row">${legend}</div><div class="charts">${tests.map(panel).join('')}</div>` +
    `<p class="caption">Accuracy of the model as a growing share of the input is removed in the order the explanation ranks it, averaged over the inputs. ` +
    `A faithful explanation makes accuracy fall fast when the most relevant parts go (positive test) and slowly when the least relevant go (negative test).</p></section>`
  );
}

// ---------------------------------------------------------------------------------------------
// Kendall τ grid

const CHAR_W = 6.4;

/** Measures of the model itself: attention tests (Jain & Wallace) and token identity per layer (Meister et al.). */
function renderModelTests(s: CompareSummary): string {
  const t = s.model_tests ?? {};
  const names = Object.keys(t).sort();
  if (names.length === 0) return '';
  const meaning: Record<string, string> = {
    'attention.permutation_median_tvd': 'output change (total variation) when the last layer\'s attention is shuffled, median over shuffles: small means the output does not depend on which position gets which weight',
    'attention.adversarial_jsd': 'divergence (JSD, ≤ ln 2 ≈ 0.69) of the most different last-layer attention found that moves the output by less than ε = 0.01: large means other attention explains the output as well',
  };
  const rows = names.map((k) => {
    const v = t[k]!;
    const layer = /^identity\.layer(\d+)$/.exec(k);
    const what = layer ? `share of the representation after layer ${layer[1]} attributable to its own input token or patch (gradient × input)` : meaning[k] ?? '';
    return `<tr><td><code>${e(k)}</code></td><td class="num">${v.n}</td><td class="num">${fixed(v.median, 3)}</td><td class="num">${fixed(v.q1, 3)}–${fixed(v.q3, 3)}</td><td>${e(what)}</td></tr>`;
  });
  return (
    `<section class="block"><h2>The model's attention</h2>` +
    `<table class="results"><thead><tr><th>measure</th><th>n</th><th>median</th><th>IQR</th><th>meaning</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    `</section>`
  );
}

function renderAgreement(s: CompareSummary): string {
  const a = s.agreement;
  if (!a || a.names.length === 0) return '';
  const n = a.names.length;
  const cell = 50;
  const longest = Math.max(...a.names.map((x) => x.length));
  const left = Math.ceil(longest * CHAR_W + 12);
  // Column names run up and to the right at 45°, so they need room above and past the last column.
  const diag = Math.ceil(longest * CHAR_W * Math.SQRT1_2);
  const top = diag + 14;
  const right = Math.max(diag - cell / 2, 0) + 10;
  const barH = 40;
  const width = left + n * cell + right;
  const height = top + n * cell + barH;
  const parts: string[] = [];
  const fill = (t: number): Rgb => colormap('rdbu', (t + 1) / 2);
  a.names.forEach((name, i) => {
    parts.push(`<text class="name" x="${c(left - 8)}" y="${c(top + i * cell + cell / 2 + 4)}" text-anchor="end">${e(name)}</text>`);
    const x = left + i * cell + cell / 2;
    parts.push(`<text class="name" transform="translate(${c(x)} ${c(top - 6)}) rotate(-45)">${e(name)}</text>`);
  });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = a.median[i]?.[j];
      const q = a.iqr[i]?.[j];
      const u = a.undefined?.[i]?.[j] ?? 0;
      const defined = a.n?.[i]?.[j] ?? 0;
      const ok = v !== undefined && Number.isFinite(v);
      const note = u > 0 ? `; undefined for ${u} of ${u + defined} inputs (a constant map), left out` : '';
      const bg: Rgb = ok ? fill(v) : [238, 238, 238];
      const x = left + j * cell;
      const y = top + i * cell;
      parts.push(
        `<g class="tau" data-row="${e(a.names[i]!)}" data-col="${e(a.names[j]!)}"${u > 0 ? ` data-undefined="${u}"` : ''}><title>${e(`${a.names[i]} vs ${a.names[j]}: median τ ${fixed(v, 2)}, IQR ${fixed(q, 2)}${note}`)}</title>` +
          `<rect x="${c(x)}" y="${c(y)}" width="${cell}" height="${cell}" fill="${hex(bg)}" stroke="#fff" stroke-width="1"/>` +
          `<text class="val" x="${c(x + cell / 2)}" y="${c(y + cell / 2 + 4)}" text-anchor="middle" fill="${inkOn(bg)}">${fixed(v, 2)}</text></g>`,
      );
    }
  }
  // Colour bar from −1 to 1 under the grid.
  const bx = left;
  const bw = n * cell;
  const by = top + n * cell + 10;
  const steps = 40;
  for (let k = 0; k < steps; k++) {
    const t = -1 + (2 * (k + 0.5)) / steps;
    parts.push(`<rect x="${c(bx + (k * bw) / steps)}" y="${c(by)}" width="${c(bw / steps + 0.3)}" height="8" fill="${hex(fill(t))}"/>`);
  }
  [-1, 0, 1].forEach((t) => {
    parts.push(`<text class="tick" x="${c(bx + ((t + 1) / 2) * bw)}" y="${c(by + 20)}" text-anchor="middle">${t < 0 ? MINUS + '1' : String(t)}</text>`);
  });
  return (
    `<section class="block"><h2>Agreement between methods</h2>` +
    `<svg class="agreement" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Kendall tau matrix">${parts.join('')}</svg>` +
    `<p class="caption">Median Kendall τ between the rankings two methods give the units of the same input (1: same order, 0: unrelated, −1: reversed); hover a cell for the IQR. ` +
    `τ is undefined where a map is constant (it ranks no pair); such inputs are left out of the median.</p>${undefinedList(a)}</section>`
  );
}

function undefinedList(a: NonNullable<CompareSummary['agreement']>): string {
  const items: string[] = [];
  a.names.forEach((x, i) =>
    a.names.forEach((y, j) => {
      const u = a.undefined?.[i]?.[j] ?? 0;
      if (j > i && u > 0) items.push(`<li><code>${e(x)}</code> vs <code>${e(y)}</code>: τ undefined for ${u} of ${u + (a.n?.[i]?.[j] ?? 0)} inputs</li>`);
    }),
  );
  return items.length ? `<ul class="undefined-tau">${items.join('')}</ul>` : '';
}

// ---------------------------------------------------------------------------------------------
// Example heatmaps

interface Grid {
  readonly h: number;
  readonly w: number;
  readonly values: Float64Array;
}

/** Block means with one factor for both axes (keeps the aspect); edge blocks average what they hold. */
function downsample(data: readonly number[], h: number, w: number): Grid {
  const f = Math.max(1, Math.ceil(Math.max(h, w) / MAX_GRID));
  const oh = Math.ceil(h / f);
  const ow = Math.ceil(w / f);
  const sum = new Float64Array(oh * ow);
  const count = new Float64Array(oh * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x]!;
      const o = Math.floor(y / f) * ow + Math.floor(x / f);
      // Like the overlay code: a NaN or ∞ has no colour and must not poison a whole block.
      sum[o] += Number.isFinite(v) ? v : 0;
      count[o]++;
    }
  }
  return { h: oh, w: ow, values: sum.map((v, i) => v / count[i]!) };
}

/**
 * Signed maps get the diverging colormap. A negative value smaller than 1e-6 of the largest
 * magnitude is rounding noise in a non-negative method, not evidence against the class.
 */
function isSigned(values: ArrayLike<number>): boolean {
  let min = 0;
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
  }
  return min < 0 && -min > 1e-6 * maxAbs;
}

/** Each cell's colour: jet over min–max for unsigned maps, bwr over ±max|v| for signed ones. */
function colours(values: Float64Array, signed: boolean): Rgb[] {
  let min = Infinity;
  let max = -Infinity;
  let maxAbs = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  if (signed) return Array.from(values, (v) => colormap('bwr', maxAbs > 0 ? (v / maxAbs + 1) / 2 : 0.5));
  const range = max - min;
  return Array.from(values, (v) => colormap('jet', range > 0 ? (v - min) / range : 0));
}

function imageShape(shape: readonly number[], length: number): [number, number] | null {
  if (shape.length < 2) return null;
  const h = shape[shape.length - 2]!;
  const w = shape[shape.length - 1]!;
  return Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0 && h * w === length ? [h, w] : null;
}

function heatmapSvg(grid: Grid, rgb: Rgb[], overImage: boolean, label: string): string {
  const rects: string[] = [];
  for (let y = 0; y < grid.h; y++) {
    for (let x = 0; x < grid.w; x++) rects.push(`<rect x="${x}" y="${y}" width="1" height="1" fill="${hex(rgb[y * grid.w + x]!)}"/>`);
  }
  return (
    `<svg class="heat" viewBox="0 0 ${grid.w} ${grid.h}" preserveAspectRatio="none" shape-rendering="crispEdges" role="img" aria-label="${e(label)}">` +
    `<g${overImage ? ' opacity="0.5"' : ''}>${rects.join('')}</g></svg>`
  );
}

function exampleCaption(ex: Example): string {
  const x = ex.example!;
  const named = (k: number, name: string | undefined) => `${k}${name !== undefined ? ` (${name})` : ''}`;
  const label = x.label === null ? '—' : named(x.label, x.labelName);
  const mark = x.label === null ? '' : x.label === x.prediction ? ' <span class="ok">✓</span>' : ' <span class="bad">✗</span>';
  return `<div class="id">${e(ex.id)}</div><div class="muted small">label ${e(label)} · predicted ${e(named(x.prediction, x.predictionName))}${mark}</div>`;
}

function renderImageExamples(examples: Array<{ ex: Example; index: number }>, s: CompareSummary, images: Readonly<Record<string, Uint8Array>>): { html: string; css: string; used: Set<string> } {
  const used = new Set<string>();
  const css: string[] = [];
  const rows = examples.map(({ ex, index }) => {
    const x = ex.example!;
    const png = Object.prototype.hasOwnProperty.call(images, ex.id) ? images[ex.id] : undefined;
    // One CSS rule per image, used by every cell of the row, so the PNG is embedded once rather than once per method.
    const cls = png ? `in-${index}` : '';
    if (png) css.push(`.${cls}{background-image:url("data:image/png;base64,${base64(png)}")}`);
    let aspect = 1;
    const cells = s.methods.map((m) => {
      const map = x.maps[m];
      const shape = map ? imageShape(map.shape, map.data.length) : null;
      if (!map || !shape) return `<td class="hm-cell" data-example="${e(ex.id)}" data-method="${e(m)}"><div class="missing">—</div></td>`;
      aspect = shape[0] / shape[1];
      const grid = downsample(map.data, shape[0], shape[1]);
      const signed = isSigned(grid.values);
      used.add(signed ? 'bwr' : 'jet');
      return (
        `<td class="hm-cell" data-example="${e(ex.id)}" data-method="${e(m)}" data-colormap="${signed ? 'bwr' : 'jet'}">` +
        `<div class="frame${png ? ` ${cls}` : ''}" style="aspect-ratio:${shape[1]}/${shape[0]}">${heatmapSvg(grid, colours(grid.values, signed), !!png, `${m} on ${ex.id}`)}</div></td>`
      );
    });
    const input = png ? `<div class="frame ${cls}" style="aspect-ratio:${c(1 / aspect)}"></div>` : '';
    return `<tr><th scope="row" class="input">${input}${exampleCaption(ex)}</th>${cells.join('')}</tr>`;
  });
  const head = `<tr><th class="input">Input</th>${s.methods.map((m) => `<th><code>${e(m)}</code></th>`).join('')}</tr>`;
  return { html: `<table class="heatmaps"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`, css: css.join('\n'), used };
}

const SPECIAL = /^(\[(CLS|SEP|PAD)\]|<\/?s>|<pad>)$/;

function tokenLine(tokens: readonly string[] | undefined, values: readonly number[]): string {
  const toks = tokens && tokens.length === values.length ? tokens : values.map((_, i) => `#${i}`);
  // Byte-level BPE and SentencePiece mark word starts (Ġ, ▁); WordPiece marks continuations (##).
  const marksStarts = toks.some((t) => t.startsWith('Ġ') || t.startsWith('▁'));
  const real = toks.map((t, i) => i).filter((i) => !SPECIAL.test(toks[i]!));
  // Scaled over the real tokens only: [CLS] and [SEP] often carry most of the relevance and
  // would wash out the words (compare excludes them from its measures for the same reason).
  let maxAbs = 0;
  for (const i of real) if (Number.isFinite(values[i]!)) maxAbs = Math.max(maxAbs, Math.abs(values[i]!));
  const out: string[] = [];
  real.forEach((i, k) => {
    let t = toks[i]!;
    let glue = false;
    if (marksStarts) {
      glue = !(t.startsWith('Ġ') || t.startsWith('▁'));
      if (!glue) t = t.slice(1);
    } else if (t.startsWith('##')) {
      glue = true;
      t = t.slice(2);
    }
    const v = values[i]!;
    const n = maxAbs > 0 && Number.isFinite(v) ? Math.max(-1, Math.min(1, v / maxAbs)) : 0;
    const bg = bwr(n);
    const ink = inkOn(bg);
    if (k > 0 && !glue) out.push(' ');
    out.push(`<span class="tk" title="${e(`${toks[i]}: ${Number.isFinite(v) ? v.toPrecision(3) : 'NaN'}`)}" style="background:${hex(bg)}${ink === '#fff' ? ';color:#fff' : ''}">${e(t)}</span>`);
  });
  return out.join('');
}

function renderTextExamples(examples: Array<{ ex: Example; index: number }>, s: CompareSummary): string {
  return examples
    .map(({ ex }) => {
      const x = ex.example!;
      const rows = s.methods.map((m) => {
        const map = x.maps[m];
        const body = map ? tokenLine(x.tokens, map.data) : '<span class="missing">—</span>';
        return `<tr><th scope="row" class="method"><code>${e(m)}</code></th><td class="hm-cell tokens" data-example="${e(ex.id)}" data-method="${e(m)}" data-colormap="bwr">${body}</td></tr>`;
      });
      return `<div class="text-example">${exampleCaption(ex)}<table class="token-maps"><tbody>${rows.join('')}</tbody></table></div>`;
    })
    .join('');
}

function colourBar(name: 'jet' | 'bwr'): string {
  const steps = 40;
  const rects: string[] = [];
  for (let k = 0; k < steps; k++) rects.push(`<rect x="${k * 4}" y="0" width="4.3" height="10" fill="${hex(colormap(name, (k + 0.5) / steps))}"/>`);
  const ticks = name === 'jet' ? ['min', 'max'] : [`${MINUS}max|r|`, '0', '+max|r|'];
  return (
    `<span class="bar"><svg width="160" height="10" viewBox="0 0 160 10" shape-rendering="crispEdges" aria-hidden="true">${rects.join('')}</svg>` +
    `<span class="bar-ticks">${ticks.map((t) => `<span>${t}</span>`).join('')}</span></span>`
  );
}

function renderExamples(s: CompareSummary, images: Readonly<Record<string, Uint8Array>>): { html: string; css: string } {
  const shown = s.examples
    .filter((ex) => ex.example)
    .slice(0, MAX_EXAMPLES)
    .map((ex, index) => ({ ex, index }));
  if (shown.length === 0) return { html: '', css: '' };
  const isImage = ({ ex }: { ex: Example }) => Object.values(ex.example!.maps).some((m) => imageShape(m.shape, m.data.length) !== null);
  const img = shown.filter(isImage);
  const txt = shown.filter((x) => !isImage(x));
  const parts: string[] = [];
  let css = '';
  if (img.length > 0) {
    const r = renderImageExamples(img, s, images);
    css = r.css;
    parts.push(r.html);
    const keys: string[] = [];
    if (r.used.has('jet')) keys.push(`<span class="key">${colourBar('jet')} non-negative maps (jet, min–max per map)</span>`);
    if (r.used.has('bwr')) keys.push(`<span class="key">${colourBar('bwr')} signed maps (bwr, ±max per map)</span>`);
    parts.push(`<div class="legend-row">${keys.join('')}</div>`);
  }
  if (txt.length > 0) {
    parts.push(renderTextExamples(txt, s));
    parts.push(
      `<div class="legend-row"><span class="key">${colourBar('bwr')} token relevance (red: for the explained class, blue: against), scaled per map over the real tokens; special tokens not shown</span></div>`,
    );
  }
  const many = s.examples.filter((ex) => ex.example).length > MAX_EXAMPLES ? ` (the first ${MAX_EXAMPLES})` : '';
  return {
    html:
      `<section class="block"><h2>Example explanations${many}</h2>${parts.join('')}` +
      `<p class="caption">Each map explains the predicted class and is normalised on its own, so colours compare regions within a map, not strength across maps.` +
      `${img.length > 0 ? ' Pixel maps are averaged down to at most 32×32 cells.' : ''}</p></section>`,
    css,
  };
}

// ---------------------------------------------------------------------------------------------
// Page

const CSS = `
:root{--ink:#1a1a1a;--muted:#666;--rule:#d9d9d9;--soft:#f5f6f8;--accent:#2b5d9b}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:#fff;color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:28px 28px 40px}
h1{font-size:24px;margin:0 0 4px;font-weight:650;letter-spacing:-.01em}
h2{font-size:17px;margin:0 0 10px;font-weight:650;border-bottom:1px solid var(--rule);padding-bottom:4px}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"Liberation Mono",monospace;font-size:.92em}
.muted{color:var(--muted);font-weight:normal}
.small{font-size:12px}
.subtitle{color:var(--muted);margin:0 0 16px}
.block{margin:26px 0 0;break-inside:avoid}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0;padding:12px 16px;background:var(--soft);border-radius:6px}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
.errors{margin:10px 0 0;padding:10px 16px 10px 34px;background:#fff6f4;border:1px solid #f0c9c0;border-radius:6px;font-size:13px}
.errors li{overflow-wrap:anywhere}
.errors .more{list-style:none;margin-left:-18px;color:var(--muted)}
table{border-collapse:collapse}
table.results{width:100%;font-size:13px;font-variant-numeric:tabular-nums}
table.results th,table.results td{padding:5px 8px;border-bottom:1px solid var(--rule)}
table.results thead th{background:var(--soft);font-weight:600;vertical-align:bottom}
table.results th.group{text-align:center;border-left:2px solid #fff}
table.results .note{font-weight:normal;color:var(--muted);font-size:11px}
table.results th.method{text-align:left;font-weight:normal;white-space:nowrap;overflow-wrap:anywhere}
table.results td.num,table.results th.num{text-align:right}
table.results td.best strong{font-weight:700;color:#000}
table.results td.best{background:#eaf1fb}
table.results tbody tr:last-child th,table.results tbody tr:last-child td{border-bottom:2px solid #bbb}
.swatch{vertical-align:middle;margin-right:6px}
.caption{color:var(--muted);font-size:12px;margin:6px 0 0;max-width:900px}
.legend-row{display:flex;flex-wrap:wrap;gap:6px 18px;margin:4px 0 8px;font-size:13px}
.legend-row .key{display:inline-flex;align-items:center;gap:2px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{flex:1 1 320px;margin:0;min-width:0}
figure.chart figcaption{font-weight:600;font-size:13px;margin-bottom:2px}
svg.curves{width:100%;height:auto;display:block}
svg .grid{stroke:#e6e6e6;stroke-width:1}
svg .axis{stroke:#999;stroke-width:1}
svg .tick{font-size:10px;fill:#666}
svg .label{font-size:11px;fill:#444}
svg .name{font-size:11px;fill:#333;font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"Liberation Mono",monospace}
svg .val{font-size:11px;font-variant-numeric:tabular-nums}
svg.agreement{max-width:100%;height:auto;display:block}
table.heatmaps{width:100%;table-layout:fixed;font-size:12px}
table.heatmaps th{font-weight:600;text-align:center;padding:4px;overflow-wrap:anywhere}
table.heatmaps th.input{text-align:left;font-weight:normal;vertical-align:top}
table.heatmaps td{padding:4px;vertical-align:top}
table.heatmaps tr{break-inside:avoid}
.frame{width:100%;max-width:160px;margin:0 auto;background-color:#f0f0f0;background-size:100% 100%;border-radius:2px;overflow:hidden}
th.input .frame{margin:0 0 4px}
.frame svg.heat{width:100%;height:100%;display:block}
.missing{color:var(--muted);text-align:center;padding:24px 0}
.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px;overflow-wrap:anywhere}
.incomplete{margin:0 0 14px;padding:10px 16px;background:#fff3cd;border:2px solid #e0a800;border-radius:6px;font-weight:600}
ul.undefined-tau{font-size:12px;color:var(--muted);margin:4px 0 0}
.ok{color:#2e7d32}.bad{color:#c62828}
.text-example{margin:0 0 14px;padding:10px 12px;border:1px solid var(--rule);border-radius:6px;break-inside:avoid}
.text-example .id{font-size:12px}
table.token-maps{width:100%;margin-top:6px}
table.token-maps th.method{text-align:left;font-weight:normal;vertical-align:top;padding:3px 12px 3px 0;white-space:nowrap;width:1%;line-height:1.9}
table.token-maps td{padding:3px 0;line-height:1.9}
.tk{padding:1px 2px;border-radius:2px}
.bar{display:inline-flex;flex-direction:column;margin-right:6px;vertical-align:middle}
.bar svg{border:1px solid #ccc}
.bar-ticks{display:flex;justify-content:space-between;font-size:10px;color:var(--muted);width:162px}
footer{margin-top:30px;color:var(--muted);font-size:11px;border-top:1px solid var(--rule);padding-top:6px}
@page{size:A4;margin:12mm}
@media print{main{max-width:none;padding:0}body{font-size:12px}table.results{font-size:11px}table.results th,table.results td{padding:4px 5px}}
`;

function incompleteText(s: CompareSummary): string {
  const shards = s.missingShards?.length ? `shards ${s.missingShards.join(', ')} are missing; ` : '';
  const n = s.missing?.length ?? 0;
  const inputs = n ? `${n} of ${s.expected} inputs were not evaluated (${s.missing.slice(0, 5).join(', ')}${n > 5 ? ', …' : ''}); ` : '';
  return `Incomplete: ${shards}${inputs}these numbers are not those of the whole data set.`;
}

/** What made the numbers: relprop, the model's bytes, the data, each method's rules and options, the engine and date. */
function provenanceRows(s: CompareSummary, p: RunProvenance | undefined): string {
  const c = s.config;
  if (!c) return '';
  const rows: string[] = [];
  rows.push(`<dt>relprop</dt><dd>${e(c.relprop.version)}${c.relprop.commit ? ` (commit <code>${e(c.relprop.commit)}</code>)` : ''}</dd>`);
  if (c.model.folder) rows.push(`<dt>Model folder</dt><dd><code>${e(c.model.folder)}</code></dd>`);
  if (c.model.weightsSha256) rows.push(`<dt>Weights SHA-256</dt><dd><code>${e(c.model.weightsSha256)}</code></dd>`);
  if (c.model.configSha256) rows.push(`<dt>Config SHA-256</dt><dd><code>${e(c.model.configSha256)}</code></dd>`);
  rows.push(`<dt>Data spec</dt><dd><code>${e(c.data.spec)}</code>${c.data.seeds ? ` (generator seed ${c.data.seeds.generator}, samples ${c.data.seeds.first}–${c.data.seeds.first + c.data.count - 1})` : ''}${c.data.masks ? `, masks <code>${e(c.data.masks)}</code>` : ''}</dd>`);
  rows.push(`<dt>Target</dt><dd>the predicted class of each input</dd>`);
  if (c.removal) rows.push(`<dt>Removal</dt><dd>${e(c.removal)}</dd>`);
  const opts = s.methods.map((m) => {
    const o = s.options?.[m];
    const body = o && Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ') : 'no options';
    return `<code>${e(m)}</code>: ${e(body)}`;
  });
  rows.push(`<dt>Options</dt><dd>${opts.join('<br>')}</dd>`);
  if (p?.engine) rows.push(`<dt>Engine</dt><dd>${e(p.engine)}</dd>`);
  if (p?.date) rows.push(`<dt>Date</dt><dd>${e(p.date)}</dd>`);
  return rows.join('\n');
}

/** The report of a compare run as one self-contained HTML page; the same summary always gives the same bytes. */
export function compareReportHtml(summary: CompareSummary, options: CompareReportOptions = {}): string {
  const s = summary;
  const title = options.title ?? 'Explanation methods compared';
  const examples = renderExamples(s, options.images ?? {});
  const errors =
    s.errors.length === 0
      ? ''
      : `<ol class="errors">${s.errors
          .slice(0, MAX_ERRORS_LISTED)
          .map((x) => `<li><code>${e(x.id)}</code>: ${e(x.error)}</li>`)
          .join('')}${s.errors.length > MAX_ERRORS_LISTED ? `<li class="more">… and ${s.errors.length - MAX_ERRORS_LISTED} more (see journal.jsonl)</li>` : ''}</ol>`;
  const list = (xs: readonly string[]) => (xs.length ? xs.map((x) => `<code>${e(x)}</code>`).join(', ') : '—');
  const banner = s.complete === false ? `<p class="incomplete" role="alert">${e(incompleteText(s))}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${CSS}${examples.css}</style>
</head>
<body>
<main>
<header>
${banner}
<h1>${e(title)}</h1>
<p class="subtitle">${e(s.model)} · ${e(s.data)}</p>
<dl class="meta">
<dt>Model</dt><dd><code>${e(s.model)}</code></dd>
<dt>Data</dt><dd>${e(s.data)}</dd>
<dt>Inputs</dt><dd>${s.inputs} evaluated${s.expected !== undefined ? ` of ${s.expected}` : ''}${s.shard ? ` (shard ${s.shard.k}/${s.shard.n})` : ''}</dd>
<dt>Methods</dt><dd>${list(s.methods)}</dd>
<dt>Metrics</dt><dd>${list(s.metrics)}</dd>
<dt>Errors</dt><dd>${s.errors.length === 0 ? 'none' : `${s.errors.length} input${s.errors.length === 1 ? '' : 's'} skipped`}</dd>
${provenanceRows(s, options.provenance)}
</dl>
${errors}
</header>
<section class="block"><h2>Results</h2>${renderTable(s)}</section>
${renderCurves(s)}
${renderAgreement(s)}
${renderModelTests(s)}
${examples.html}
<footer>Generated by relprop from summary.json of a <code>relprop compare</code> run.</footer>
</main>
</body>
</html>
`;
}
