/** Pure helpers of `npm run bench`: summaries of timings and the markdown they are printed as. */

export interface Summary {
  readonly runs: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarise(xs: readonly number[]): Summary {
  if (xs.length === 0) return { runs: 0, median: NaN, min: NaN, max: NaN };
  return { runs: xs.length, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** Milliseconds as a table shows them: two decimals below 1 ms, one below 100 ms, whole ms above. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

/** A longer duration for estimates: ms, s or min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** A multiple (× PyTorch forward, grid / single method): two significant digits below 10. */
export function formatRatio(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return x < 10 ? `${x.toFixed(1)}×` : `${x.toFixed(0)}×`;
}

export function formatMB(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  const mb = bytes / 2 ** 20;
  return mb < 10 ? mb.toFixed(1) : mb.toFixed(0);
}

/** A GitHub markdown table; `align` per column: 'l' or 'r' (default 'l'). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[] = []): string {
  const rule = header.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${rule.join('|')}|`, ...rows.map(line)].join('\n');
}

/** `--name value` from an argument list (undefined when absent; an error when the value is missing). */
export function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

/** A whole number ≥ min from an option, or the default. */
export function intOption(value: string | undefined, fallback: number, name: string, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min} (got '${value}')`);
  return n;
}
