/**
 * Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON header, then the data buffer.
 *
 * The reader validates the whole header against the file before any tensor data is read, so a
 * broken or truncated checkpoint fails at load time with one message that says what is wrong,
 * instead of surfacing later as a shape error or as garbage weights.
 */
import fsSync, { promises as fs } from 'node:fs';
import { CheckpointError } from '../errors.js';

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  /** The path (or label) used in error messages. */
  file: string;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, TensorInfo>;
  /**
   * The tensor's values as float32 (F32 copied, F16 and BF16 widened exactly, F64 narrowed;
   * integer and BOOL dtypes converted to numbers). Always a fresh copy the caller may modify.
   * Throws CheckpointError for an unknown name or unsupported dtype. With `into` (at least the
   * tensor's length), the values are written there instead and its leading subarray is returned.
   */
  getFloat32(name: string, into?: Float32Array): Float32Array;
  /** The tensor's raw little-endian bytes (read from the file; a view for an in-memory file). */
  getBytes(name: string): Uint8Array;
  /** Releases the file (no-op in memory); reads after it fail. Idempotent. */
  close(): void;
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Bytes per element of every dtype this reader accepts. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
});

/** The dtypes a model parameter may have: floating point, widened (or F64 narrowed) to float32. */
export const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'F64', 'F8_E5M2', 'F8_E4M3']);

/** Same limit as the reference implementation; a larger value means a corrupt or foreign file. */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Reading

/** Where the bytes come from: a buffer in memory, or a file read at offsets. */
interface ByteSource {
  readonly size: number;
  /**
   * `length` bytes at `position`. `into` (of that length) is filled and returned where given;
   * otherwise the result may be a view of the source (memory) or a fresh buffer (file).
   */
  read(position: number, length: number, into?: Uint8Array): Uint8Array;
  close(): void;
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read(position, length, into) {
      const view = bytes.subarray(position, position + length);
      if (!into) return view;
      into.set(view);
      return into;
    },
    close() {},
  };
}

/** fs.readSync takes at most 2^31 − 1 bytes a call; larger tensors are read in pieces. */
const READ_CHUNK = 1 << 30;

// A SafetensorsFile dropped without close() (e.g. by a script) still gives its descriptor back.
const unclosed = new FinalizationRegistry<number>((fd) => {
  try {
    fsSync.closeSync(fd);
  } catch {
    // Already closed.
  }
});

function fileSource(fd: number, size: number, file: string): ByteSource {
  let open = true;
  return {
    size,
    read(position, length, into) {
      if (!open) throw new CheckpointError('read after the file was closed', file);
      const out = into ?? new Uint8Array(length);
      let done = 0;
      while (done < length) {
        let n: number;
        try {
          n = fsSync.readSync(fd, out, done, Math.min(length - done, READ_CHUNK), position + done);
        } catch (e) {
          throw new CheckpointError(`cannot read ${length} bytes at offset ${position} (${(e as Error).message})`, file);
        }
        if (n === 0) {
          throw new CheckpointError(
            `file ended at byte ${position + done} while reading ${length} bytes at offset ${position}; was it truncated after it was opened?`,
            file,
          );
        }
        done += n;
      }
      return out;
    },
    close() {
      if (!open) return;
      open = false;
      fsSync.closeSync(fd);
    },
  };
}

/** An in-memory safetensors file (e.g. one received over the network); views, no copy of `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  return openSource(memorySource(bytes), file);
}

/**
 * Opens a safetensors file: the 8-byte prefix and the header are read and validated against the
 * file's size first; tensor data is read later, one tensor at a time, at its offset. So memory
 * holds the header and the tensors asked for, never the whole file, and files over 2 GiB load.
 * Call close() when done (the loader does); a dropped file is closed when it is garbage-collected.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let fd: number;
  let size: number;
  try {
    fd = fsSync.openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const what = err.code === 'ENOENT' ? 'file not found' : `cannot read file (${err.message})`;
    throw new CheckpointError(what, path);
  }
  try {
    const stat = fsSync.fstatSync(fd);
    if (!stat.isFile()) throw new CheckpointError('not a regular file', path);
    size = stat.size;
  } catch (e) {
    fsSync.closeSync(fd);
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`cannot read file (${(e as Error).message})`, path);
  }
  const source = fileSource(fd, size, path);
  let st: SafetensorsFile;
  try {
    st = openSource(source, path);
  } catch (e) {
    source.close();
    throw e;
  }
  unclosed.register(st, fd, st);
  const close = st.close;
  st.close = () => {
    unclosed.unregister(st);
    close();
  };
  return st;
}

function openSource(source: ByteSource, file: string): SafetensorsFile {
  const fail: (message: string) => never = (message) => {
    throw new CheckpointError(message, file);
  };
  const size = source.size;

  if (size < 8) {
    fail(`file is only ${size} bytes, shorter than the 8-byte header length prefix of a safetensors file`);
  }
  const prefix = source.read(0, 8, new Uint8Array(8));
  const headerLen = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  // Both limits are checked before anything is allocated for the header.
  if (headerLen === 0n) fail('header length is 0; a safetensors header is at least "{}"');
  if (headerLen > BigInt(size - 8)) {
    fail(
      `header length ${headerLen} bytes runs past the end of the file ` +
        `(file has ${size} bytes, so at most ${size - 8} are available for the header)` +
        foreignFormatHint(source.read(0, Math.min(size, 64))),
    );
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  const dataStart = 8 + n;
  const dataLen = size - dataStart;

  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(source.read(8, n));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    fail(`header (${n} bytes) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) {
    fail(`header must be a JSON object, got ${describeJson(header)}`);
  }
  const headerObj = header as Record<string, unknown>;

  // JSON.parse silently keeps the last of duplicate keys and moves integer-like keys to the front,
  // so the key order and uniqueness come from the text itself.
  const keys = topLevelKeys(headerText);
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) {
      fail(`${key === '__metadata__' ? '__metadata__' : `tensor '${key}'`} appears twice in the header`);
    }
    seen.add(key);
  }

  let metadata: Record<string, string> = {};
  if (Object.prototype.hasOwnProperty.call(headerObj, '__metadata__')) {
    metadata = parseMetadata(headerObj['__metadata__'], fail);
  }

  const tensors = new Map<string, TensorInfo>();
  for (const name of keys) {
    if (name === '__metadata__') continue;
    tensors.set(name, parseEntry(name, headerObj[name], fail));
  }

  checkExtents(tensors, dataStart, dataLen, size, fail);
  checkLayout(tensors, dataLen, fail);

  const lookup = (name: string): TensorInfo => {
    const info = tensors.get(name);
    if (info === undefined) {
      const names = [...tensors.keys()];
      const shown = names.slice(0, 8).map((s) => `'${s}'`).join(', ');
      fail(
        `no tensor named '${name}' (the file has ${names.length} tensor${names.length === 1 ? '' : 's'}` +
          (names.length > 0 ? `: ${shown}${names.length > 8 ? ', ...' : ''}` : '') +
          ')',
      );
    }
    return info as TensorInfo;
  };

  return {
    file,
    metadata,
    tensors,
    getBytes(name: string): Uint8Array {
      const info = lookup(name);
      return source.read(dataStart + info.begin, info.end - info.begin);
    },
    getFloat32(name: string, into?: Float32Array): Float32Array {
      const info = lookup(name);
      const length = info.end - info.begin;
      const count = info.shape.reduce((a, d) => a * d, 1);
      if (into !== undefined && into.length < count) {
        throw new RangeError(`getFloat32('${name}'): the buffer holds ${into.length} values, the tensor has ${count}`);
      }
      if (info.dtype === 'F32' && LITTLE_ENDIAN_HOST) {
        // Straight into the result's own buffer: one allocation (or none), aligned whatever the file offset.
        const out = into ? into.subarray(0, count) : new Float32Array(count);
        source.read(dataStart + info.begin, length, new Uint8Array(out.buffer, out.byteOffset, length));
        return out;
      }
      const out = toFloat32(source.read(dataStart + info.begin, length, new Uint8Array(length)), info.dtype);
      if (out === undefined) {
        fail(`tensor '${name}' has dtype ${info.dtype}, which cannot be converted to float32`);
      }
      if (!into) return out as Float32Array;
      into.set(out as Float32Array);
      return into.subarray(0, count);
    },
    close(): void {
      source.close();
    },
  };
}

function parseMetadata(value: unknown, fail: (m: string) => never): Record<string, string> {
  if (!isPlainObject(value)) {
    fail(`__metadata__ must be an object mapping strings to strings, got ${describeJson(value)}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') {
      fail(`__metadata__ value for '${k}' must be a string, got ${describeJson(v)}`);
    }
  }
  // fromEntries defines own properties, so a key like "__proto__" stays an ordinary entry.
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(name: string, value: unknown, fail: (m: string) => never): TensorInfo {
  const where = `tensor '${name}'`;
  if (!isPlainObject(value)) {
    fail(`${where}: header entry must be an object with dtype, shape and data_offsets, got ${describeJson(value)}`);
  }
  const entry = value as Record<string, unknown>;
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.prototype.hasOwnProperty.call(entry, field)) fail(`${where}: header entry has no '${field}'`);
  }

  const dtype = entry.dtype;
  if (typeof dtype !== 'string') fail(`${where}: dtype must be a string, got ${describeJson(dtype)}`);
  const size = DTYPE_SIZES[dtype as string];
  if (size === undefined || !Object.prototype.hasOwnProperty.call(DTYPE_SIZES, dtype as string)) {
    fail(`${where}: unknown dtype '${dtype}' (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);
  }

  const shape = entry.shape;
  if (!Array.isArray(shape)) fail(`${where}: shape must be an array of integers, got ${describeJson(shape)}`);
  (shape as unknown[]).forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(`${where}: shape ${JSON.stringify(shape)} has an invalid dimension at index ${i} (${describeJson(d)}); dimensions must be non-negative integers`);
    }
  });

  const offsets = entry.data_offsets;
  const offsetsOk =
    Array.isArray(offsets) &&
    offsets.length === 2 &&
    offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0);
  if (!offsetsOk) {
    fail(`${where}: data_offsets must be 2 non-negative integers [begin, end], got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] has begin > end`);

  const dims = shape as number[];
  const count = dims.reduce((a, d) => a * d, 1);
  const need = count * (size as number);
  if (need !== end - begin) {
    const expected = Number.isSafeInteger(need) ? `${need} bytes` : 'an impossibly large number of bytes';
    fail(
      `${where}: shape ${JSON.stringify(dims)} with dtype ${dtype} needs ${expected} ` +
        `(${count} elements × ${size}), but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
    );
  }
  return { name, dtype: dtype as string, shape: [...dims], begin, end };
}

function checkExtents(
  tensors: Map<string, TensorInfo>,
  dataStart: number,
  dataLen: number,
  fileLen: number,
  fail: (m: string) => never,
): void {
  // Report the tensor reaching furthest, so the message gives the size the file should have.
  let worst: TensorInfo | undefined;
  for (const t of tensors.values()) {
    if (t.end > dataLen && (worst === undefined || t.end > worst.end)) worst = t;
  }
  if (worst !== undefined) {
    fail(
      `file is truncated: it has ${fileLen} bytes but needs at least ${dataStart + worst.end} ` +
        `(tensor '${worst.name}' ends at data offset ${worst.end}, the data buffer has only ${dataLen} bytes)`,
    );
  }
}

/**
 * The reference implementation's rule: the tensors' bytes tile the data buffer exactly, in offset
 * order from 0 to its end, with no gap, overlap or trailing bytes. A file that breaks it was not
 * written by a safetensors writer (or was spliced or appended to), so its offsets are not trusted.
 * Empty tensors own no bytes and may point anywhere inside the buffer.
 */
function checkLayout(tensors: Map<string, TensorInfo>, dataLen: number, fail: (m: string) => never): void {
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let reach = 0;
  let last: TensorInfo | undefined; // the tensor ending furthest among those seen so far
  for (const t of sorted) {
    if (last !== undefined && t.begin < reach) {
      fail(
        `tensors '${last.name}' [${last.begin}, ${last.end}) and '${t.name}' [${t.begin}, ${t.end}) ` +
          `overlap in the data buffer`,
      );
    }
    if (t.begin > reach) {
      fail(
        `data bytes [${reach}, ${t.begin}) belong to no tensor (${last ? `after '${last.name}'` : 'at the start'}, ` +
          `before '${t.name}'); safetensors data must be contiguous`,
      );
    }
    reach = t.end;
    last = t;
  }
  if (reach < dataLen) {
    fail(
      `the data buffer has ${dataLen} bytes but the tensors end at ${reach}: ${dataLen - reach} trailing bytes ` +
        `belong to no tensor (appended to, or a header that lists too few tensors?)`,
    );
  }
}

/**
 * Top-level keys in text order. Only called on text JSON.parse accepted as an object, so it just
 * tracks strings and nesting: at depth 1 the first string after '{' or ',' is a key.
 */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; json.charCodeAt(i) !== 0x22; i++) {
        if (json.charCodeAt(i) === 0x5c /* \ */) i++;
      }
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(json.slice(start, i + 1)) as string);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 40 ? s.slice(0, 40) + '...' : s}`;
}

/** Common ways a non-safetensors file ends up where weights are expected. */
function foreignFormatHint(bytes: Uint8Array): string {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (head.startsWith('version https://git-lfs')) {
    return '; this is a Git LFS pointer, not the weights (run `git lfs pull`)';
  }
  if (head.startsWith('PK\x03\x04')) return '; this looks like a zip archive (a PyTorch .bin/.pt checkpoint?), not safetensors';
  if (head.startsWith('\x80')) return '; this looks like a Python pickle, not safetensors';
  if (head.startsWith('<')) return '; this looks like an HTML/XML page, not safetensors';
  return '; is this really a safetensors file?';
}

// ---------------------------------------------------------------------------------------------
// Conversion to float32

/** Undefined for a dtype with no float32 conversion. `raw` may start at any byte offset. */
function toFloat32(raw: Uint8Array, dtype: string): Float32Array | undefined {
  const size = DTYPE_SIZES[dtype];
  if (size === undefined) return undefined;
  const n = raw.length / size;
  // The data must be aligned for the typed-array views below; a buffer of its own is (at offset 0).
  const aligned = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : new Uint8Array(raw);
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) return new Float32Array(aligned.buffer);
  const dv = new DataView(aligned.buffer);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'F16': {
      // Writing bits (not values) keeps NaN payloads and signed zeros exact.
      const table = f16Table();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = table[dv.getUint16(2 * i, true)];
      return out;
    }
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'F8_E5M2': {
      // E5M2 is the top byte of an IEEE half.
      const table = f16Table();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = table[aligned[i] << 8];
      return out;
    }
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = e4m3fnToNumber(aligned[i]);
      return out;
    case 'I64':
      // hi * 2^32 + lo is exact for both parts and rounds once, like Number(BigInt) but faster.
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(8 * i + 4, true) * 4294967296 + dv.getUint32(8 * i, true);
      return out;
    case 'U64':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(8 * i + 4, true) * 4294967296 + dv.getUint32(8 * i, true);
      return out;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
      return out;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return out;
    case 'U8':
      out.set(aligned);
      return out;
    case 'BOOL':
      // Any non-zero byte is true, as in numpy/torch.
      for (let i = 0; i < n; i++) out[i] = aligned[i] !== 0 ? 1 : 0;
      return out;
    default:
      return undefined;
  }
}

let F16_TABLE: Uint32Array | undefined;

/** float32 bit patterns for all 65536 halves; built once because a lookup beats per-element branching. */
function f16Table(): Uint32Array {
  if (F16_TABLE === undefined) {
    F16_TABLE = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16BitsToF32Bits(h);
  }
  return F16_TABLE;
}

/** Exact widening of IEEE binary16 to binary32 bits, including subnormals, infinities and NaNs. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Subnormal half: every one is a normal float32, so shift the leading 1 into the implicit bit.
    let e = -14;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    return (sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

/** OCP FP8 E4M3 "FN" variant (as in torch.float8_e4m3fn): no infinities, S.1111.111 is NaN. */
function e4m3fnToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (8 + mant) * 2 ** (exp - 10);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** IEEE binary32 bits to binary16 bits, rounding to nearest even; overflow gives infinity. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Keep NaN a NaN even when its payload lives only in the low bits that get dropped.
    return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 even rounding up cannot reach the smallest subnormal 2^-24.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++;
  return sign | half;
}

/** IEEE binary32 bits to bfloat16 bits, rounding to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  const lsb = (x >>> 16) & 1;
  return ((x >>> 0) + 0x7fff + lsb) >>> 16;
}

/**
 * Names sorted, header JSON space-padded to a multiple of 8 bytes (so the data buffer starts
 * 8-aligned), `__metadata__` always written. `file` only labels error messages.
 */
export function encodeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
  file = '<safetensors being encoded>',
): Uint8Array {
  const fail: (message: string) => never = (message) => {
    throw new CheckpointError(message, file);
  };

  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail(`metadata value for '${k}' must be a string, got ${typeof v}`);
  }

  const names = Object.keys(tensors).sort();
  const plan: { name: string; dtype: 'F32' | 'F16' | 'BF16'; t: TensorToWrite; begin: number; end: number }[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') fail(`'__metadata__' is reserved and cannot be a tensor name`);
    const t = tensors[name];
    const dtype = t.dtype ?? 'F32';
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      fail(`tensor '${name}': cannot write dtype '${String(dtype)}' (only F32, F16, BF16)`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(t.shape)} must be an array of non-negative integers`);
    }
    if (!(t.data instanceof Float32Array)) fail(`tensor '${name}': data must be a Float32Array`);
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) {
      fail(`tensor '${name}': shape ${JSON.stringify(t.shape)} has ${count} elements but data has ${t.data.length}`);
    }
    const bytes = count * DTYPE_SIZES[dtype];
    plan.push({ name, dtype, t, begin: offset, end: offset + bytes });
    offset += bytes;
  }

  // Built by hand because JSON.stringify would move integer-like names ahead of the others.
  const parts = [`"__metadata__":${JSON.stringify(metadata)}`];
  for (const p of plan) {
    parts.push(
      `${JSON.stringify(p.name)}:${JSON.stringify({ dtype: p.dtype, shape: p.t.shape, data_offsets: [p.begin, p.end] })}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLen + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);

  const dataStart = 8 + headerLen;
  for (const p of plan) {
    const src = p.t.data;
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    const at = dataStart + p.begin;
    if (p.dtype === 'F32') {
      for (let i = 0; i < src.length; i++) dv.setUint32(at + 4 * i, bits[i], true);
    } else if (p.dtype === 'F16') {
      for (let i = 0; i < src.length; i++) dv.setUint16(at + 2 * i, f32BitsToF16Bits(bits[i]), true);
    } else {
      for (let i = 0; i < src.length; i++) dv.setUint16(at + 2 * i, f32BitsToBf16Bits(bits[i]), true);
    }
  }
  return out;
}

/**
 * Writes to `path + '.tmp'`, syncs, then renames over `path`, so an interrupted write leaves
 * either the old file or the new one, never a truncated one.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata, path);
  const tmp = `${path}.tmp`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new CheckpointError(`cannot write file (${(e as Error).message})`, path);
  }
}
