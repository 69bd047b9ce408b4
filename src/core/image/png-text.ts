/**
 * Text chunks in PNG files (ISO/IEC 15948 §11.3.4): an uncompressed iTXt chunk, UTF-8, placed right
 * after IHDR. Every overlay relprop writes carries its provenance there ("relprop" keyword, JSON),
 * readable with `exiftool`, Pillow's `Image.open(f).text` or readPngText.
 */
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let crcTable: Uint32Array | null = null;
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function isPng(png: Uint8Array): boolean {
  return png.length >= 8 && SIGNATURE.every((b, i) => png[i] === b);
}

/** `png` with an iTXt chunk `keyword` = `text` after its IHDR chunk. */
export function addPngText(png: Uint8Array, keyword: string, text: string): Uint8Array {
  if (!isPng(png)) throw new Error('not a PNG');
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new Error(`bad PNG keyword '${keyword}'`);
  const enc = new TextEncoder();
  const kw = enc.encode(keyword);
  const body = enc.encode(text);
  // keyword NUL, compression flag 0, method 0, language tag "" NUL, translated keyword "" NUL, text.
  const data = new Uint8Array(kw.length + 5 + body.length);
  data.set(kw, 0);
  data.set(body, kw.length + 5);
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  chunk.set(enc.encode('iTXt'), 4);
  chunk.set(data, 8);
  view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  const ihdrEnd = 8 + 12 + new DataView(png.buffer, png.byteOffset).getUint32(8);
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd), 0);
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return out;
}

/** The tEXt and uncompressed iTXt chunks of a PNG, keyword → text. */
export function readPngText(png: Uint8Array): Record<string, string> {
  if (!isPng(png)) throw new Error('not a PNG');
  const out: Record<string, string> = {};
  const dec = new TextDecoder();
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at + 12 <= png.length; ) {
    const len = view.getUint32(at);
    const type = dec.decode(png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + len);
    const nul = data.indexOf(0);
    if (type === 'tEXt' && nul > 0) out[dec.decode(data.subarray(0, nul))] = new TextDecoder('latin1').decode(data.subarray(nul + 1));
    if (type === 'iTXt' && nul > 0 && data[nul + 1] === 0) {
      const lang = data.indexOf(0, nul + 3);
      const translated = data.indexOf(0, lang + 1);
      out[dec.decode(data.subarray(0, nul))] = dec.decode(data.subarray(translated + 1));
    }
    if (type === 'IEND') break;
    at += 12 + len;
  }
  return out;
}
