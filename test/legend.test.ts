/** The PNG legend's printed numbers are the ends of the overlay's own colour scale (issue 15, item 16). */
import { describe, it, expect } from 'vitest';
import { legendNumber, legendScale, withLegend } from '../src/core/image/legend.js';

describe('legend', () => {
  const map = Float32Array.from([-0.25, 0.5, 1.75, -3e-4, 0.125, 0.0625]);
  it('min-max (jet) prints the map\'s own min and max; signed-max (bwr) ±max|v| around 0', () => {
    // At the map's own size the bilinear upsampling is the identity, so the scale is the map's.
    expect(legendScale(map, [2, 3], 3, 2, { colormap: 'jet' })).toEqual({ low: Math.min(...map), high: Math.max(...map) });
    expect(legendScale(map, [2, 3], 3, 2, { colormap: 'bwr' })).toEqual({ low: -Math.max(...Array.from(map, Math.abs)), high: Math.max(...Array.from(map, Math.abs)) });
    expect([legendNumber(Math.min(...map)), legendNumber(1.75), legendNumber(-3e-4), legendNumber(1234567)]).toEqual(['-0.25', '1.75', '-3e-4', '1.23e6']);
  });
  it('adds a strip below the overlay and leaves the overlay\'s pixels as they were', () => {
    const overlay = { width: 30, height: 20, data: Uint8Array.from({ length: 30 * 20 * 3 }, (_, i) => i % 251) };
    const img = withLegend(overlay, map, [2, 3], { colormap: 'bwr', lines: ['lrp: class 1 (b)'] });
    expect(img.height).toBeGreaterThan(20);
    expect(img.width).toBeGreaterThanOrEqual(30);
    for (let y = 0; y < 20; y++) expect(Array.from(img.data.subarray(y * img.width * 3, y * img.width * 3 + 90))).toEqual(Array.from(overlay.data.subarray(y * 90, (y + 1) * 90)));
  });
});
