// Files the renderer writes itself: the overlay as a PNG with its legend drawn
// in and its provenance in text chunks, and the raw map as JSON and as NumPy's
// .npy. Each carries what made it (relprop version, model folder and weights
// hash, method, rules, options, target, contrast, date), so a saved picture or
// number can be traced back.

import type { ColormapId, ExplainResult, ResultProvenance } from '../../../shared/api';
import { colormap as colour } from '../../../core/image/colormap';
import { formatValue, mapStats, scaleEnds, type Scaling } from './mapstats';

/** One line per field, as core/provenance.ts's provenanceLines writes them. */
export function provenanceLines(p: ResultProvenance): string[] {
  const lines = [`relprop ${p.relprop.version}${p.relprop.commit ? ` (${p.relprop.commit.slice(0, 12)})` : ''}`];
  lines.push(`model ${p.model.folder ?? p.model.name} (${p.model.family})${p.model.weightsSha256 ? ` weights sha256 ${p.model.weightsSha256}` : ''}`);
  lines.push(`method ${p.method}${p.rules ? `, rules ${p.rules}` : ''}`);
  if (Object.keys(p.options).length) lines.push(`options ${JSON.stringify(p.options)}`);
  lines.push(`target ${p.target} (${p.targetLabel})`);
  if (p.contrast !== undefined) lines.push(`contrast ${p.contrast} (${p.contrastLabel ?? ''})`);
  lines.push(`engine ${p.engine}`, `date ${p.date}`);
  return lines;
}

export type ExportView = 'explain' | 'compare';

/** relprop-<input>-<method>-<class>-<view>: the Explain and Compare tabs never write the same name. */
export function exportName(inputName: string, r: ExplainResult, view: ExportView, ext: string): string {
  const stem = inputName.replace(/\.[^.]*$/, '');
  const cls = r.contrast ? `${r.targetLabel}-vs-${r.contrast.label}` : r.targetLabel;
  return `relprop-${stem}-${r.method}-${cls}-${view}`.replace(/[^\w.-]+/g, '_').slice(0, 150) + `.${ext}`;
}

/** The raw map with everything needed to read it again. */
export function mapJson(r: ExplainResult, inputName: string): string {
  return JSON.stringify(
    {
      format: 'relprop-map',
      version: 1,
      input: inputName,
      method: r.method,
      methodTitle: r.methodTitle,
      signed: r.signed,
      target: r.target,
      targetLabel: r.targetLabel,
      ...(r.contrast ? { contrast: r.contrast } : {}),
      space: r.space,
      shape: r.map.shape,
      data: r.map.data,
      ...(r.kind === 'text' ? { tokens: r.tokens.map((t) => t.token), special: r.tokens.map((t) => t.special) } : {}),
      ledger: r.ledger ? { conserved: r.ledger.conserved, tolerance: r.ledger.tolerance, largestDrift: r.ledger.largestDrift, largestDriftLayer: r.ledger.largestDriftLayer, ...(r.ledger.byDesign ? { byDesign: r.ledger.byDesign } : {}), ...(r.ledger.embeddingShare !== undefined ? { embeddingShare: r.ledger.embeddingShare } : {}) } : null,
      ...(r.completeness ? { completeness: r.completeness } : {}),
      provenance: r.provenance,
    },
    null,
    1,
  );
}

/** NumPy's .npy (format 1.0): little-endian float32, C order, the map's shape. */
export function npyBytes(shape: readonly number[], data: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, total);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Latin-1 only (tEXt): anything else as a JSON-style \\u escape. */
function latin1(s: string): string {
  return s.replace(/[^\x20-\x7e\n]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The PNG with tEXt chunks inserted after IHDR. */
export function withTextChunks(png: Uint8Array, texts: Record<string, string>): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const [key, value] of Object.entries(texts)) {
    const body = latin1(`${key}\u0000${value}`).replace('\\u0000', '\u0000');
    const data = Uint8Array.from(body, (c) => c.charCodeAt(0));
    const chunk = new Uint8Array(12 + data.length);
    const dv = new DataView(chunk.buffer);
    dv.setUint32(0, data.length);
    chunk.set([0x74, 0x45, 0x58, 0x74], 4); // tEXt
    chunk.set(data, 8);
    dv.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
    chunks.push(chunk);
  }
  const ihdrEnd = 8 + 8 + 13 + 4;
  const size = png.length + chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(size);
  out.set(png.subarray(0, ihdrEnd), 0);
  let at = ihdrEnd;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  out.set(png.subarray(ihdrEnd), at);
  return out;
}

/**
 * The overlay with its legend drawn under it: a colour bar with its end values (and 0), what the
 * ends mean, how the map was scaled, and the method and class.
 */
export async function pngWithLegend(overlay: HTMLCanvasElement, r: ExplainResult, colormap: ColormapId, scaling: Scaling): Promise<Uint8Array> {
  const w = Math.max(overlay.width, 360);
  const pad = 10;
  const strip = 96;
  const c = document.createElement('canvas');
  c.width = w;
  c.height = overlay.height + strip;
  const g = c.getContext('2d')!;
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, c.width, c.height);
  g.drawImage(overlay, Math.floor((w - overlay.width) / 2), 0);
  const stats = mapStats(r.map.data);
  const [lo, hi] = scaleEnds(stats, scaling);
  const y0 = overlay.height + pad;
  g.fillStyle = '#1d1d1f';
  g.font = '12px system-ui, sans-serif';
  g.textBaseline = 'top';
  g.fillText(`${r.methodTitle} · class ${r.targetLabel} (${r.target})${r.contrast ? ` rather than ${r.contrast.label}` : ''}`, pad, y0);
  const barY = y0 + 20;
  const loText = formatValue(lo);
  const hiText = formatValue(hi);
  const left = pad + g.measureText(loText).width + 6;
  const right = w - pad - g.measureText(hiText).width - 6;
  for (let x = Math.floor(left); x < right; x++) {
    const [cr, cg, cb] = colour(colormap, (x - left) / (right - left));
    g.fillStyle = `rgb(${cr},${cg},${cb})`;
    g.fillRect(x, barY, 1, 12);
  }
  g.fillStyle = '#1d1d1f';
  g.fillText(loText, pad, barY);
  g.fillText(hiText, right + 6, barY);
  if (hi > lo && lo < 0 && hi > 0) {
    const zx = left + ((0 - lo) / (hi - lo)) * (right - left);
    g.fillRect(zx, barY + 12, 1, 4);
    g.fillText('0', zx - 3, barY + 17);
  }
  const diverging = scaling === 'signed-max';
  g.fillText(diverging ? '− against' : 'low', left, barY + 32);
  const highLabel = diverging ? '+ for' : 'high';
  g.fillText(highLabel, right - g.measureText(highLabel).width, barY + 32);
  g.fillStyle = '#555';
  g.fillText(diverging ? `scaled ±max (±${formatValue(stats.maxAbs)}); map min ${formatValue(stats.min)}, max ${formatValue(stats.max)}` : `scaled min-max (${formatValue(stats.min)} to ${formatValue(stats.max)})`, pad, barY + 50);
  const blob = await new Promise<Blob>((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('the PNG could not be encoded'))), 'image/png'));
  const png = new Uint8Array(await blob.arrayBuffer());
  return withTextChunks(png, {
    Software: `relprop ${r.provenance.relprop.version}`,
    Description: provenanceLines(r.provenance).join('\n'),
    'relprop-provenance': JSON.stringify(r.provenance),
  });
}

export function saveBytes(bytes: Uint8Array, name: string, mime: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
