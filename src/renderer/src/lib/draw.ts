// Drawing maps in the renderer with the core's own upsampling, normalisation
// and colormaps (plain TypeScript, no Node), so what the app shows and exports
// is what `relprop explain --out` writes: out = (1 − α)·image + α·colour.

import { colormap as colourAt, colormapArray } from '../../../core/image/colormap';
import { normalisedHeatmap } from '../../../core/image/overlay';
import { DIVERGING_COLORMAPS, type ColormapId } from '../../../shared/api';

export type ColormapChoice = ColormapId | 'auto';

/**
 * 'auto': diverging for signed maps (so negative evidence shows), jet otherwise. The diverging
 * default is RdBu (ColorBrewer; red for, blue against), which colour-blind readers tell apart; bwr's
 * saturated red and blue are not.
 */
export function resolveColormap(choice: ColormapChoice, signed: boolean): ColormapId {
  if (choice !== 'auto') return choice;
  return signed ? 'rdbu' : 'jet';
}

export function isDivergingColormap(name: ColormapId): boolean {
  return DIVERGING_COLORMAPS.includes(name);
}

/**
 * The coloured map at width × height, RGB, scaled against `range` (the map's own [min, max], the
 * numbers its legend shows) rather than the upsampled map's, so the colours and the legend agree.
 */
export function heatmapRgb(map: { shape: number[]; data: number[] }, width: number, height: number, colormap: ColormapId, range: [number, number]): Uint8Array {
  if (map.shape.length !== 2) throw new Error(`an image map must be 2-D, got shape [${map.shape.join(', ')}]`);
  const t = normalisedHeatmap(map.data, map.shape as [number, number], width, height, { colormap, range });
  return colormapArray(colormap, t);
}

/**
 * The picture in grey (mean of the channels), in place, RGBA. Diverging maps are drawn over it, as
 * Captum's blended heat map does: over the colour picture a red object would read as evidence for.
 */
export function greyInPlace(rgba: Uint8ClampedArray): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const g = Math.round((rgba[i]! + rgba[i + 1]! + rgba[i + 2]!) / 3);
    rgba[i] = rgba[i + 1] = rgba[i + 2] = g;
  }
}

/** Blend into `out` (RGBA, as canvases hold pixels). */
export function blendInto(base: Uint8ClampedArray, heat: Uint8Array, alpha: number, out: Uint8ClampedArray): void {
  const n = base.length / 4;
  for (let i = 0; i < n; i++) {
    out[i * 4] = Math.round((1 - alpha) * base[i * 4]! + alpha * heat[i * 3]!);
    out[i * 4 + 1] = Math.round((1 - alpha) * base[i * 4 + 1]! + alpha * heat[i * 3 + 1]!);
    out[i * 4 + 2] = Math.round((1 - alpha) * base[i * 4 + 2]! + alpha * heat[i * 3 + 2]!);
    out[i * 4 + 3] = 255;
  }
}

/** A CSS gradient of the colormap between t0 and t1 (all of it by default), for legends. */
export function colormapGradient(name: ColormapId, t0 = 0, t1 = 1): string {
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = colourAt(name, t0 + ((t1 - t0) * i) / 10);
    return `rgb(${r},${g},${b}) ${i * 10}%`;
  });
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/**
 * How words are shaded: always with a diverging colormap, white at its centre. Signed maps use all
 * of it, ±max|v| at the ends; unsigned maps its upper half, min-max (white at the smallest value).
 */
export function textScale(colormap: ColormapId, signed: boolean): { colormap: ColormapId; t0: number; t1: number; scaling: 'signed-max' | 'minmax' } {
  const cm = isDivergingColormap(colormap) ? colormap : 'rdbu';
  return signed ? { colormap: cm, t0: 0, t1: 1, scaling: 'signed-max' } : { colormap: cm, t0: 0.5, t1: 1, scaling: 'minmax' };
}

/** Background and text colour of a word with relevance `value`, its scale's ends `ends`. */
export function wordColours(value: number, ends: [number, number], scale: ReturnType<typeof textScale>): { background: string; color: string } {
  const [lo, hi] = ends;
  const u = hi > lo ? Math.max(0, Math.min(1, (value - lo) / (hi - lo))) : scale.scaling === 'signed-max' ? 0.5 : 0;
  const t = scale.t0 + (scale.t1 - scale.t0) * u;
  const [r, g, b] = colourAt(scale.colormap, t);
  // Dark text stops being readable on the saturated ends of the scale.
  return { background: `rgb(${r}, ${g}, ${b})`, color: Math.abs(2 * t - 1) > 0.6 ? '#fff' : '#1d1d1f' };
}

export function formatRelevance(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.01 && a < 1000 ? v.toPrecision(3) : v.toExponential(2);
}

export function formatMs(ms: number): string {
  // Methods that reuse an earlier method's passes can take a fraction of a millisecond.
  if (ms < 1) return '< 1 ms';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function formatDrift(d: number): string {
  return d === 0 ? '0' : d.toExponential(1);
}

/** A file's bytes as base64, without the data-URL prefix. */
export function fileToBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error ?? new Error('the file could not be read'));
    reader.readAsDataURL(file);
  });
}

export function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the preview image could not be decoded'));
    img.src = src;
  });
}
