// The numbers behind a drawn map: its range, the ends its colour scale runs
// between, and each unit's value, rank and share. Legends, hover read-outs and
// the token table all read them from here, so they agree with each other and
// with the colours (draw.ts scales against the same ends).

import { isDiverging } from '../../../core/image/colormap';
import type { ColormapId } from '../../../shared/api';

export type Scaling = 'minmax' | 'signed-max';

export interface MapStats {
  min: number;
  max: number;
  /** max |v|. */
  maxAbs: number;
  sum: number;
  /** Σ |v|: what a unit's share is a share of. */
  sumAbs: number;
  count: number;
}

export function mapStats(data: ArrayLike<number>): MapStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumAbs = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sumAbs += Math.abs(v);
  }
  if (data.length === 0) min = max = 0;
  return { min, max, maxAbs: Math.max(Math.abs(min), Math.abs(max)), sum, sumAbs, count: data.length };
}

/** How a colormap scales a map (core/image/overlay.ts): ±max for diverging colormaps, min-max otherwise. */
export function scalingFor(colormap: ColormapId): Scaling {
  return isDiverging(colormap) ? 'signed-max' : 'minmax';
}

/** The values at the two ends of the colour bar. */
export function scaleEnds(stats: MapStats, scaling: Scaling): [number, number] {
  return scaling === 'signed-max' ? [-stats.maxAbs, stats.maxAbs] : [stats.min, stats.max];
}

/** Where on the colour bar (0..1) a value sits, or null when outside it (0 on a min-max bar of a positive map). */
export function positionOn(value: number, ends: [number, number]): number | null {
  const [lo, hi] = ends;
  if (!(hi > lo)) return value === lo ? 0.5 : null;
  const t = (value - lo) / (hi - lo);
  return t >= 0 && t <= 1 ? t : null;
}

/** Rank of every unit, 1 for the largest value (ties share the better rank). */
export function ranks(data: ArrayLike<number>): Int32Array {
  const order = Array.from({ length: data.length }, (_, i) => i).sort((a, b) => data[b]! - data[a]!);
  const out = new Int32Array(data.length);
  order.forEach((idx, pos) => {
    const prev = order[pos - 1];
    out[idx] = pos > 0 && prev !== undefined && data[prev] === data[idx] ? out[prev]! : pos + 1;
  });
  return out;
}

export interface UnitInfo {
  index: number;
  value: number;
  rank: number;
  count: number;
  /** value / Σ|v|, signed. */
  share: number;
}

export function unitInfo(data: ArrayLike<number>, rankOf: Int32Array, stats: MapStats, index: number): UnitInfo {
  const value = data[index]!;
  return { index, value, rank: rankOf[index]!, count: stats.count, share: stats.sumAbs > 0 ? value / stats.sumAbs : 0 };
}

/** The map cell under a point of a picture drawn at width × height (the map spans the whole picture). */
export function cellAt(shape: readonly number[], x: number, y: number, width: number, height: number): number | null {
  const [rows, cols] = shape as [number, number];
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  const r = Math.min(rows - 1, Math.floor((y / height) * rows));
  const c = Math.min(cols - 1, Math.floor((x / width) * cols));
  return r * cols + c;
}

export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.001 && a < 10_000 ? String(Number(v.toPrecision(4))) : v.toExponential(3);
}

/** A share in per cent to 3 significant digits: a fixed number of decimals would print 0.0308 % as 0.031 %. */
export function formatShare(s: number): string {
  if (s === 0) return '0 %';
  const pct = s * 100;
  return `${Math.abs(pct) >= 1e-3 ? String(Number(pct.toPrecision(3))) : pct.toExponential(2)} %`;
}
