/**
 * The legend under a PNG overlay: the colour bar with the values its ends and its zero stand for,
 * and a line naming the method and the class. A figure cut out of its context still says what its
 * colours mean. Pure TypeScript (a bitmap font, font.ts), so it is the same on every machine.
 */
import { colormapArray, isDiverging, type ColormapName } from './colormap.js';
import { FONT } from './font.js';
import { upsampleBilinear } from './overlay.js';
import type { RgbImage } from './preprocess.js';

export interface LegendSpec {
  readonly colormap: ColormapName;
  /** As in OverlayOptions; default by colormap, as the overlay chooses it. */
  readonly normalise?: 'minmax' | 'signed-max';
  /** Lines of text under the bar (ASCII; anything else is drawn as '?'). */
  readonly lines: readonly string[];
}

const glyphBits = Uint8Array.from(atob(FONT.bits), (c) => c.charCodeAt(0));
const PAD = 4;
const BAR = 10;
const LINE = FONT.height + 2;

/** A number as short as it can be and still be read back to 3 significant digits. */
export function legendNumber(v: number): string {
  if (v === 0) return '0';
  const p = Number(v.toPrecision(3));
  const plain = String(p);
  const exp = p.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return plain.length <= exp.length ? plain : exp;
}

function drawText(img: RgbImage, text: string, x0: number, y0: number): void {
  const { width: gw, height: gh, first, last } = FONT;
  for (let k = 0; k < text.length; k++) {
    let code = text.charCodeAt(k);
    if (code < first || code > last) code = 63; // '?'
    const base = (code - first) * gw * gh;
    for (let y = 0; y < gh; y++)
      for (let x = 0; x < gw; x++) {
        const bit = base + y * gw + x;
        if (!(glyphBits[bit >> 3]! & (0x80 >> (bit & 7)))) continue;
        const px = x0 + k * gw + x;
        const py = y0 + y;
        if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
        img.data.fill(34, 3 * (py * img.width + px), 3 * (py * img.width + px) + 3);
      }
  }
}

/**
 * The values at the ends of the colour scale, as the overlay maps them (overlay.ts's normalise):
 * min-max over the upsampled map, or ±max|v| around 0 for signed-max.
 */
export function legendScale(map: ArrayLike<number>, mapShape: [number, number], width: number, height: number, spec: Pick<LegendSpec, 'colormap' | 'normalise'>): { low: number; high: number } {
  const clean = Float64Array.from(map, (v) => (Number.isFinite(v) ? v : 0));
  const up = upsampleBilinear(clean, mapShape, height, width);
  let min = Infinity;
  let max = -Infinity;
  for (const v of up) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mode = spec.normalise ?? (isDiverging(spec.colormap) ? 'signed-max' : 'minmax');
  if (mode === 'signed-max') {
    const m = Math.max(Math.abs(min), Math.abs(max));
    return { low: -m, high: m };
  }
  return { low: min, high: max };
}

/** `overlay` with the legend of `map` (drawn over it with `spec`) added below, on white. */
export function withLegend(overlay: RgbImage, map: ArrayLike<number>, mapShape: [number, number], spec: LegendSpec): RgbImage {
  const { low, high } = legendScale(map, mapShape, overlay.width, overlay.height, spec);
  const labels = [legendNumber(low), legendNumber(high)];
  const textWidth = Math.max(...spec.lines.map((l) => l.length), labels.join('   0   ').length) * FONT.width;
  const width = Math.max(overlay.width, textWidth + 2 * PAD);
  const height = overlay.height + PAD + BAR + 2 + LINE * (1 + spec.lines.length) + PAD;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let y = 0; y < overlay.height; y++) data.set(overlay.data.subarray(y * overlay.width * 3, (y + 1) * overlay.width * 3), y * width * 3);
  const img = { width, height, data };
  // The bar spans the colour scale from its low end (left) to its high end (right).
  const x0 = PAD;
  const barWidth = width - 2 * PAD;
  const yBar = overlay.height + PAD;
  const t = Float32Array.from({ length: barWidth }, (_, i) => (barWidth > 1 ? i / (barWidth - 1) : 0.5));
  const colours = colormapArray(spec.colormap, t);
  for (let y = yBar; y < yBar + BAR; y++) data.set(colours, 3 * (y * width + x0));
  const yLabels = yBar + BAR + 2;
  drawText(img, labels[0]!, x0, yLabels);
  drawText(img, labels[1]!, x0 + barWidth - labels[1]!.length * FONT.width, yLabels);
  if (high > low && low < 0 && high > 0) {
    // Zero's place on the bar, with a tick, where the scale crosses it.
    const xz = x0 + Math.round(((0 - low) / (high - low)) * (barWidth - 1));
    for (let y = yBar - 2; y < yBar + BAR + 1; y++) data.fill(34, 3 * (y * width + xz), 3 * (y * width + xz) + 3);
    drawText(img, '0', Math.min(Math.max(xz - 2, x0 + labels[0]!.length * FONT.width + FONT.width), x0 + barWidth - (labels[1]!.length + 2) * FONT.width), yLabels);
  }
  spec.lines.forEach((line, i) => drawText(img, line, x0, yLabels + LINE * (i + 1)));
  return img;
}
