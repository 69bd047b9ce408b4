/**
 * Reading and writing image files (Node only: uses sharp). Everything a user can get wrong — a
 * missing file, a text file, a truncated download — surfaces as an InputError naming the file.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import sharp, { type OutputInfo } from 'sharp';
import { InputError } from '../errors.js';
import { assertRgbImage, type RgbImage } from './preprocess.js';

export type { RgbImage } from './preprocess.js';

/** Formats recognised by their leading bytes, to tell "corrupt PNG" from "not an image at all". */
export function sniffImageFormat(bytes: Uint8Array): string | undefined {
  const starts = (...sig: number[]): boolean => sig.every((b, i) => bytes[i] === b);
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'PNG';
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  if (ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    return brand.startsWith('avi') ? 'AVIF' : 'HEIF';
  }
  if (ascii(0, 2) === 'BM') return 'BMP';
  if (starts(0xff, 0x0a) || starts(0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20)) return 'JPEG XL';
  return undefined;
}

/** True when the first bytes look like text (printable ASCII / UTF-8, no NULs). */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  if (n === 0) return false;
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0) return false;
    if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128) printable++;
  }
  return printable / n > 0.95;
}

/** sharp's messages are terse and name internals ("vipspng: ..."); keep them as a detail only. */
function decoderDetail(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].trim().replace(/[:.]$/, '');
}

function decodeError(err: unknown, bytes: Uint8Array, label: string): InputError {
  const detail = decoderDetail(err);
  const format = sniffImageFormat(bytes);
  if (/exceeds pixel limit/i.test(detail)) {
    return new InputError('image is too large to decode (more than 268 million pixels)', label);
  }
  if (format === undefined) {
    if (looksLikeText(bytes)) return new InputError('not an image: the file contains text', label);
    if (/unsupported image format/i.test(detail)) {
      return new InputError('not an image, or an unsupported format (PNG, JPEG and WebP are supported)', label);
    }
    return new InputError(`cannot be read as an image (decoder: ${detail})`, label);
  }
  if (format === 'BMP' || format === 'JPEG XL') {
    return new InputError(`${format} images are not supported; convert it to PNG or JPEG`, label);
  }
  return new InputError(`corrupt or truncated ${format} image (decoder: ${detail})`, label);
}

/**
 * Decode image bytes to 8-bit RGB as HF's `load_image` does with Pillow: EXIF orientation applied
 * (`exif_transpose`), then `convert("RGB")`, which drops alpha (the stored colour of a transparent
 * pixel is kept, not composited on white) and maps palette images through their palette, ignoring
 * their transparency; grey images are replicated to three channels. timm's loader converts the same way.
 * `label` names the input in errors (a file name, or e.g. "dropped image").
 */
export async function decodeImage(bytes: Uint8Array, label: string): Promise<RgbImage> {
  if (bytes.length === 0) throw new InputError('file is empty (0 bytes), not an image', label);
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let result: { data: Buffer; info: OutputInfo };
  try {
    const meta = await sharp(input, { failOn: 'error' }).metadata();
    if (meta.channels === 1 && meta.depth !== undefined && meta.depth !== 'uchar' && meta.depth !== 'char') {
      // Pillow (HF's load_image, timm) opens these as 32-bit integers and convert("RGB") clips them
      // at 255 rather than scaling; no scaling relprop could pick would match it.
      throw new InputError(
        `${meta.depth === 'ushort' ? '16-bit' : meta.depth} greyscale images are not supported: Pillow, which HF and timm load images with, clips such values at 255 when converting to RGB; save it as 8-bit first`,
        label,
      );
    }
    result = await sharp(input, {
      // 'error' rejects truncated and corrupt data but tolerates the harmless warnings (stray bytes
      // after a JPEG marker, say) that many cameras produce and that Pillow also accepts.
      failOn: 'error',
      // Pillow ignores embedded ICC profiles, so HF/timm preprocessing sees the stored values;
      // converting through the profile would shift pixels away from what the model was evaluated on.
      ignoreIcc: true,
    })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw decodeError(err, bytes, label);
  }
  const { data, info } = result;
  if (info.width <= 0 || info.height <= 0) {
    throw new InputError(`image has no pixels (size ${info.width}×${info.height})`, label);
  }
  return { width: info.width, height: info.height, data: toRgb(data, info.width * info.height, info.channels, label) };
}

function toRgb(data: Buffer, pixels: number, channels: number, label: string): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, pixels * 3).slice();
  // toColourspace('srgb') should already give 3 bands; handle 1 (grey) and 4 (alpha left behind)
  // rather than trusting every libvips loader to honour it.
  if (channels !== 1 && channels !== 2 && channels !== 4) {
    throw new InputError(`decoded to ${channels} channels, expected RGB`, label);
  }
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const s = i * channels;
    if (channels <= 2) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[s];
    } else {
      out[i * 3] = data[s];
      out[i * 3 + 1] = data[s + 1];
      out[i * 3 + 2] = data[s + 2];
    }
  }
  return out;
}

function fsProblem(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder, not an image file';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    default:
      return undefined;
  }
}

/** Read an image file (PNG, JPEG, WebP, and whatever else sharp decodes) as 8-bit RGB. */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new InputError('is a folder, not an image file', path);
    if (st.size === 0) throw new InputError('file is empty (0 bytes), not an image', path);
    bytes = await readFile(path);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(fsProblem(err) ?? `cannot read file (${decoderDetail(err)})`, path);
  }
  return decodeImage(bytes, path);
}

/** Encode as an 8-bit RGB PNG. */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  assertRgbImage(img);
  const input = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const buf = await sharp(input, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Write an 8-bit RGB PNG. Failures (missing folder, no permission) are InputErrors naming the path. */
export async function writePng(path: string, img: RgbImage): Promise<void> {
  const png = await encodePng(img);
  try {
    await writeFile(path, png);
  } catch (err) {
    const problem = fsProblem(err);
    throw new InputError(
      problem === 'file not found' ? 'cannot write PNG: the folder does not exist' : `cannot write PNG: ${problem ?? decoderDetail(err)}`,
      path,
    );
  }
}
