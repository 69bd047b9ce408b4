// Drawing maps in the renderer with the core's own upsampling, normalisation
// and colormaps (plain TypeScript, no Node), so what the app shows and exports
// is what `relprop explain --out` writes: out = (1 − α)·image + α·colour.

import { colormap as colourAt, colormapArray } from '../../../core/image/colormap';
import { normalisedHeatmap } from '../../../core/image/overlay';
import { bwr } from '../../../core/report/token-highlight';
import { DIVERGING_COLORMAPS, type ColormapId } from '../../../shared/api';

export type ColormapChoice = ColormapId | 'auto';

/** 'auto' follows the CLI: diverging for signed maps (so negative evidence shows), jet otherwise. */
export function resolveColormap(choice: ColormapChoice, signed: boolean): ColormapId {
  if (choice !== 'auto') return choice;
  return signed ? 'bwr' : 'jet';
}

export function isDivergingColormap(name: ColormapId): boolean {
  return DIVERGING_COLORMAPS.includes(name);
}

/** The coloured map at width × height, RGB. */
export function heatmapRgb(map: { shape: number[]; data: number[] }, width: number, height: number, colormap: ColormapId): Uint8Array {
  if (map.shape.length !== 2) throw new Error(`an image map must be 2-D, got shape [${map.shape.join(', ')}]`);
  const t = normalisedHeatmap(map.data, map.shape as [number, number], width, height, { colormap });
  return colormapArray(colormap, t);
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

/** A CSS gradient of the colormap, for legends. */
export function colormapGradient(name: ColormapId): string {
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = colourAt(name, i / 10);
    return `rgb(${r},${g},${b}) ${i * 10}%`;
  });
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** Background and text colour of a word with relevance `value` on a scale of ±maxAbs (red for, blue against). */
export function wordColours(value: number, maxAbs: number): { background: string; color: string } {
  const n = maxAbs > 0 ? Math.max(-1, Math.min(1, value / maxAbs)) : 0;
  const [r, g, b] = bwr(n);
  // Dark text stops being readable on the saturated ends of the scale.
  return { background: `rgb(${r}, ${g}, ${b})`, color: Math.abs(n) > 0.6 ? '#fff' : '#1d1d1f' };
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
