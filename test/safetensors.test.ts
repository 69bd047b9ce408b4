import { describe, it, expect } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CheckpointError } from '../src/core/errors.js';
import {
  encodeSafetensors,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type SafetensorsFile,
} from '../src/core/io/safetensors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN = path.join(here, 'fixtures/golden/vit-tiny-a/weights.safetensors');

/** A safetensors file from a header given as an object or as raw JSON text. */
function build(header: unknown, data: Uint8Array | number = 0, headerLenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(dataBytes, 8 + json.length);
  return out;
}

function parseError(bytes: Uint8Array, file = 'bad.safetensors'): CheckpointError {
  try {
    parseSafetensors(bytes, file);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as Error).message.startsWith(`${file}: `)).toBe(true);
    return e as CheckpointError;
  }
  throw new Error('expected parseSafetensors to throw');
}

function headerOf(bytes: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}

const f32 = (xs: number[]) => new Float32Array(xs);
const bitsOf = (x: number) => new Uint32Array(f32([x]).buffer)[0];

describe('encode / parse round trip', () => {
  const third = Math.fround(1 / 3);
  const tensors = {
    'b.f16': { shape: [2, 4], dtype: 'F16' as const, data: f32([1 / 3, 2 ** -24, Infinity, -Infinity, NaN, -0, 65504, 1]) },
    'a.f32': { shape: [5], data: f32([1 / 3, -0, 2 ** -149, Infinity, NaN]) },
    'c.bf16': { shape: [1, 3], dtype: 'BF16' as const, data: f32([1 / 3, -Infinity, NaN]) },
    scalar: { shape: [], data: f32([42.5]) },
    empty: { shape: [0, 3], data: f32([]) },
  };
  const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'round trip' });
  const st = parseSafetensors(bytes, 'mem');

  it('reads back the metadata and tensors in sorted order', () => {
    expect(st.metadata).toEqual({ format: 'pt', note: 'round trip' });
    expect([...st.tensors.keys()]).toEqual(['a.f32', 'b.f16', 'c.bf16', 'empty', 'scalar']);
    expect(st.tensors.get('b.f16')).toMatchObject({ dtype: 'F16', shape: [2, 4] });
    expect(st.tensors.get('c.bf16')).toMatchObject({ dtype: 'BF16', shape: [1, 3] });
    expect(st.tensors.get('a.f32')).toMatchObject({ dtype: 'F32', shape: [5], begin: 0, end: 20 });
  });

  it('keeps F32 exactly, including -0, subnormals, inf and NaN', () => {
    const a = st.getFloat32('a.f32');
    expect(a[0]).toBe(third);
    expect(Object.is(a[1], -0)).toBe(true);
    expect(a[2]).toBe(2 ** -149);
    expect(a[3]).toBe(Infinity);
    expect(Number.isNaN(a[4])).toBe(true);
  });

  it('rounds to F16 and widens back exactly', () => {
    const b = st.getFloat32('b.f16');
    expect(b[0]).toBe(0.333251953125);
    expect(b[1]).toBe(2 ** -24);
    expect(b[2]).toBe(Infinity);
    expect(b[3]).toBe(-Infinity);
    expect(Number.isNaN(b[4])).toBe(true);
    expect(Object.is(b[5], -0)).toBe(true);
    expect(b[6]).toBe(65504);
    expect(b[7]).toBe(1);
  });

  it('rounds to BF16 and widens back exactly', () => {
    const c = st.getFloat32('c.bf16');
    expect(c[0]).toBe(0.333984375);
    expect(c[1]).toBe(-Infinity);
    expect(Number.isNaN(c[2])).toBe(true);
  });

  it('handles scalars and empty tensors', () => {
    expect(Array.from(st.getFloat32('scalar'))).toEqual([42.5]);
    expect(st.getFloat32('empty').length).toBe(0);
    expect(st.tensors.get('empty')).toMatchObject({ shape: [0, 3] });
    expect(st.tensors.get('empty')!.begin).toBe(st.tensors.get('empty')!.end);
  });

  it('writes a sorted, space-padded header with __metadata__ and contiguous offsets', () => {
    const { n, text } = headerOf(bytes);
    expect(n % 8).toBe(0);
    expect(text).toMatch(/^\{"__metadata__":/);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const raw = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
    expect(Object.keys(raw).filter((k) => k !== '__metadata__')).toEqual(['a.f32', 'b.f16', 'c.bf16', 'empty', 'scalar']);
    expect(raw['b.f16'].data_offsets).toEqual([20, 36]);
    expect(bytes.length).toBe(8 + n + 20 + 16 + 6 + 0 + 4);
    // F16 of 1/3 is 0x3555, little-endian.
    expect(Array.from(bytes.subarray(8 + n + 20, 8 + n + 22))).toEqual([0x55, 0x35]);
  });

  it('writes an empty __metadata__ object when none is given', () => {
    const out = encodeSafetensors({ x: { shape: [1], data: f32([1]) } });
    expect(headerOf(out).text).toMatch(/^\{"__metadata__":\{\},"x":/);
    expect(parseSafetensors(out, 'mem').metadata).toEqual({});
  });

  it('keeps integer-like names in sorted order rather than JS key order', () => {
    const out = encodeSafetensors({ b: { shape: [1], data: f32([1]) }, '10': { shape: [1], data: f32([2]) }, '2': { shape: [1], data: f32([3]) } });
    expect([...parseSafetensors(out, 'mem').tensors.keys()]).toEqual(['10', '2', 'b']);
  });

  it('rejects writer input whose data does not fit the shape', () => {
    expect(() => encodeSafetensors({ w: { shape: [2, 2], data: f32([1, 2, 3]) } })).toThrow(
      /tensor 'w': shape \[2,2\] has 4 elements but data has 3/,
    );
  });
});

describe('float conversions', () => {
  it('widens every F16 bit pattern to the exact value', () => {
    const out = new Float32Array(1);
    const outBits = new Uint32Array(out.buffer);
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const mant = h & 0x3ff;
      const expected =
        exp === 0 ? sign * mant * 2 ** -24 : exp === 31 ? (mant ? NaN : sign * Infinity) : sign * (1024 + mant) * 2 ** (exp - 25);
      outBits[0] = f16BitsToF32Bits(h);
      const same = Number.isNaN(expected) ? Number.isNaN(out[0]) : Object.is(out[0], expected);
      // Narrowing an exactly representable value must give the same half back.
      const back = Number.isNaN(expected) || f32BitsToF16Bits(outBits[0]) === h;
      if (!same || !back) wrong.push(h.toString(16));
    }
    // Collected rather than asserted per value: 65536 expect() calls take seconds.
    expect(wrong).toEqual([]);
  });

  it('rounds F32 to F16 to nearest even', () => {
    const toF16 = (x: number) => f32BitsToF16Bits(bitsOf(x));
    expect(toF16(1 + 2 ** -11)).toBe(0x3c00); // tie, stays on even 1.0
    expect(toF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds up to even
    expect(toF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(toF16(65519)).toBe(0x7bff); // just below the overflow threshold
    expect(toF16(65520)).toBe(0x7c00); // tie at the top rounds to infinity
    expect(toF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(toF16(2 ** -25 + 2 ** -35)).toBe(0x0001);
    expect(toF16(3 * 2 ** -25)).toBe(0x0002); // subnormal tie rounds to even
    expect(toF16(-(2 ** -30))).toBe(0x8000);
    expect(toF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // largest subnormal rounds up into normals
    expect(toF16(NaN) & 0x7c00).toBe(0x7c00);
    expect(toF16(NaN) & 0x3ff).not.toBe(0);
    expect(f32BitsToF16Bits(0x7f800001) & 0x3ff).not.toBe(0); // payload only in dropped bits
  });

  it('rounds F32 to BF16 to nearest even', () => {
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80); // tie, even stays
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82); // tie, odd rounds up
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // max float rounds to infinity
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80);
    expect(f32BitsToBf16Bits(0x7f800001) & 0x7f).not.toBe(0); // NaN stays NaN
  });
});

describe('reading dtypes written by other tools', () => {
  // Hand-laid data so tensors start at unaligned offsets, as the reader must not assume alignment.
  function file(): SafetensorsFile {
    const data = new Uint8Array(8 + 16 + 8 + 4 + 2 + 3 + 3 + 4 + 2 + 3);
    const dv = new DataView(data.buffer);
    let o = 0;
    const header: Record<string, unknown> = { __metadata__: { k: 'v' } };
    const put = (name: string, dtype: string, shape: number[], bytes: number, write: (at: number) => void) => {
      header[name] = { dtype, shape, data_offsets: [o, o + bytes] };
      write(o);
      o += bytes;
    };
    put('f32', 'F32', [2], 8, (at) => { dv.setFloat32(at, 1.5, true); dv.setFloat32(at + 4, -2.25, true); });
    put('f64', 'F64', [2], 16, (at) => { dv.setFloat64(at, 0.1, true); dv.setFloat64(at + 8, 1e300, true); });
    put('i64', 'I64', [1], 8, (at) => dv.setBigInt64(at, -(2n ** 40n) - 3n, true));
    put('i32', 'I32', [1], 4, (at) => dv.setInt32(at, -123456, true));
    put('i16', 'I16', [1], 2, (at) => dv.setInt16(at, -300, true));
    put('i8', 'I8', [3], 3, (at) => { dv.setInt8(at, -128); dv.setInt8(at + 1, 0); dv.setInt8(at + 2, 127); });
    put('u8', 'U8', [3], 3, (at) => { dv.setUint8(at, 0); dv.setUint8(at + 1, 200); dv.setUint8(at + 2, 255); });
    put('f16', 'F16', [2], 4, (at) => { dv.setUint16(at, 0x3555, true); dv.setUint16(at + 2, 0x8001, true); });
    put('bf16', 'BF16', [1], 2, (at) => dv.setUint16(at, 0x3eab, true));
    put('bool', 'BOOL', [3], 3, (at) => { dv.setUint8(at, 1); dv.setUint8(at + 1, 0); dv.setUint8(at + 2, 1); });
    expect(o).toBe(data.length);
    // A header length of 7 mod 8 misaligns the data buffer itself as well.
    let json = JSON.stringify(header);
    while ((json.length + 8) % 8 !== 7) json += ' ';
    return parseSafetensors(build(json, data), 'mixed.safetensors');
  }

  it('converts every supported dtype to float32 from unaligned offsets', () => {
    const st = file();
    expect(st.metadata).toEqual({ k: 'v' });
    expect(Array.from(st.getFloat32('f32'))).toEqual([1.5, -2.25]);
    expect(Array.from(st.getFloat32('f64'))).toEqual([Math.fround(0.1), Infinity]);
    expect(Array.from(st.getFloat32('i64'))).toEqual([Math.fround(-(2 ** 40) - 3)]);
    expect(Array.from(st.getFloat32('i32'))).toEqual([-123456]);
    expect(Array.from(st.getFloat32('i16'))).toEqual([-300]);
    expect(Array.from(st.getFloat32('i8'))).toEqual([-128, 0, 127]);
    expect(Array.from(st.getFloat32('u8'))).toEqual([0, 200, 255]);
    expect(Array.from(st.getFloat32('f16'))).toEqual([0.333251953125, -(2 ** -24)]);
    expect(Array.from(st.getFloat32('bf16'))).toEqual([0.333984375]);
    expect(Array.from(st.getFloat32('bool'))).toEqual([1, 0, 1]);
    expect(Array.from(st.getBytes('i16'))).toEqual([0xd4, 0xfe]);
  });

  it('reads from a Node Buffer that sits at an odd offset inside a larger allocation', () => {
    const bytes = encodeSafetensors({ w: { shape: [3], data: f32([1.25, -2, 3e-3]) }, h: { shape: [1], dtype: 'F16', data: f32([0.5]) } });
    const buf = Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3);
    expect(buf.byteOffset % 4).not.toBe(0);
    const st = parseSafetensors(buf, 'buffer');
    expect(Array.from(st.getFloat32('w'))).toEqual([1.25, -2, Math.fround(3e-3)]);
    expect(Array.from(st.getFloat32('h'))).toEqual([0.5]);
  });

  it('keeps header order and accepts spaces after the JSON', () => {
    const st = file();
    expect([...st.tensors.keys()]).toEqual(['f32', 'f64', 'i64', 'i32', 'i16', 'i8', 'u8', 'f16', 'bf16', 'bool']);
    expect(st.tensors.get('f32')).toEqual({ name: 'f32', dtype: 'F32', shape: [2], begin: 0, end: 8 });
  });

  it('keeps integer-like names in header order', () => {
    const st = parseSafetensors(
      build('{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"7":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2),
      'order',
    );
    expect([...st.tensors.keys()]).toEqual(['z', '7']);
  });

  it('accepts a header without __metadata__ and with no tensors', () => {
    const st = parseSafetensors(build('{}'), 'empty');
    expect(st.metadata).toEqual({});
    expect(st.tensors.size).toBe(0);
  });
});

describe('golden vit-tiny-a checkpoint', async () => {
  const st = await readSafetensors(GOLDEN);

  it('has all 44 tensors with the expected shapes', () => {
    expect(st.tensors.size).toBe(44);
    expect(st.tensors.get('patch_embed.proj.weight')?.shape).toEqual([32, 3, 8, 8]);
    expect(st.tensors.get('pos_embed')?.shape).toEqual([1, 17, 32]);
    expect(st.tensors.get('head.weight')?.shape).toEqual([5, 32]);
    expect(st.tensors.get('cls_token')?.shape).toEqual([1, 1, 32]);
    expect([...st.tensors.keys()].filter((k) => k.startsWith('blocks.')).length).toBe(36);
    for (const t of st.tensors.values()) expect(t.dtype).toBe('F32');
  });

  it('has header metadata', () => {
    expect(st.metadata).toEqual({ case: 'vit-tiny-a', format: 'pt' });
    expect(st.file).toBe(GOLDEN);
  });

  it('reads the values (checked against numpy)', () => {
    const bias = st.getFloat32('head.bias');
    expect(bias.length).toBe(5);
    expect(bias[0]).toBe(Math.fround(-0.04464754834771156));
    expect(bias[4]).toBe(Math.fround(-0.1272744983434677));
    expect(bias.reduce((a, b) => a + b, 0)).toBeCloseTo(0.1780712492763996, 6);
    for (const [name, t] of st.tensors) {
      expect(st.getFloat32(name).length).toBe(t.shape.reduce((a, d) => a * d, 1));
    }
  });

  it('reports a truncated copy with how many bytes it has and needs', async () => {
    const whole = await fs.readFile(GOLDEN);
    const cut = whole.subarray(0, whole.length - 100);
    const e = parseError(cut, 'cut.safetensors');
    expect(e.message).toMatch(
      new RegExp(`file is truncated: it has ${whole.length - 100} bytes but needs at least ${whole.length} \\(tensor 'pos_embed'`),
    );
  });
});

describe('rejects broken files with a specific message', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('file shorter than 8 bytes', () => {
    expect(parseError(new Uint8Array(5)).message).toMatch(/file is only 5 bytes, shorter than the 8-byte header length/);
  });

  it('header length 0', () => {
    expect(parseError(new Uint8Array(16)).message).toMatch(/header length is 0/);
  });

  it('header length past the end of the file', () => {
    const bytes = build({ x: ok }, 8, 1000n);
    expect(parseError(bytes).message).toMatch(
      new RegExp(`header length 1000 bytes runs past the end of the file \\(file has ${bytes.length} bytes`),
    );
  });

  it('a Git LFS pointer instead of the weights', () => {
    const lfs = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    expect(parseError(lfs).message).toMatch(/runs past the end of the file.*Git LFS pointer/);
  });

  it('header length over 100 MB', () => {
    const bytes = new Uint8Array(8 + 100_000_008);
    new DataView(bytes.buffer).setBigUint64(0, 100_000_001n, true);
    expect(parseError(bytes).message).toMatch(/header length 100000001 bytes exceeds the 100000000-byte limit/);
  });

  it('header not valid UTF-8', () => {
    const bytes = build('{"a":1}');
    bytes[10] = 0xff;
    expect(parseError(bytes).message).toMatch(/header \(7 bytes\) is not valid UTF-8/);
  });

  it('bad JSON', () => {
    expect(parseError(build('{"x": {"dtype": "F32",')).message).toMatch(/header is not valid JSON/);
  });

  it('header not an object', () => {
    expect(parseError(build('[1,2]')).message).toMatch(/header must be a JSON object, got an array/);
  });

  it('entry missing a field', () => {
    expect(parseError(build({ w: { dtype: 'F32', shape: [2] } }, 8)).message).toMatch(/tensor 'w': header entry has no 'data_offsets'/);
    expect(parseError(build({ w: { shape: [2], data_offsets: [0, 8] } }, 8)).message).toMatch(/tensor 'w': header entry has no 'dtype'/);
    expect(parseError(build({ w: 3 }, 8)).message).toMatch(/tensor 'w': header entry must be an object/);
  });

  it('bad shape', () => {
    expect(parseError(build({ w: { ...ok, shape: [2, -1] } }, 8)).message).toMatch(
      /tensor 'w': shape \[2,-1\] has an invalid dimension at index 1 \(number -1\)/,
    );
    expect(parseError(build({ w: { ...ok, shape: [1.5] } }, 8)).message).toMatch(/tensor 'w': shape \[1.5\] has an invalid dimension/);
    expect(parseError(build({ w: { ...ok, shape: '2' } }, 8)).message).toMatch(/tensor 'w': shape must be an array of integers/);
  });

  it('bad data_offsets', () => {
    expect(parseError(build({ w: { ...ok, data_offsets: [0, 4, 8] } }, 8)).message).toMatch(
      /tensor 'w': data_offsets must be 2 non-negative integers \[begin, end\], got \[0,4,8\]/,
    );
    expect(parseError(build({ w: { ...ok, data_offsets: [-8, 0] } }, 8)).message).toMatch(/tensor 'w': data_offsets must be 2 non-negative/);
    expect(parseError(build({ w: { ...ok, data_offsets: [8, 0] } }, 8)).message).toMatch(/tensor 'w': data_offsets \[8, 0\] has begin > end/);
  });

  it('unknown dtype', () => {
    expect(parseError(build({ w: { ...ok, dtype: 'Q4_K' } }, 8)).message).toMatch(/tensor 'w': unknown dtype 'Q4_K' \(known: .*F32/);
  });

  it('byte length not matching shape × dtype size', () => {
    expect(parseError(build({ w: { dtype: 'F32', shape: [3, 2], data_offsets: [0, 20] } }, 24)).message).toMatch(
      /tensor 'w': shape \[3,2\] with dtype F32 needs 24 bytes \(6 elements × 4\), but data_offsets \[0, 20\] span 20 bytes/,
    );
  });

  it('offsets past the end of the data buffer', () => {
    const e = parseError(build({ a: ok, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, 12));
    expect(e.message).toMatch(/file is truncated: it has \d+ bytes but needs at least \d+ \(tensor 'b' ends at data offset 16, the data buffer has only 12 bytes\)/);
  });

  it('overlapping tensors, naming both', () => {
    const header = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
      c: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    };
    expect(parseError(build(header, 20)).message).toMatch(/tensors 'a' \[0, 16\) and 'c' \[8, 16\) overlap/);
  });

  it('empty tensors never count as overlapping', () => {
    const header = { a: ok, e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } };
    expect(parseSafetensors(build(header, 8), 'ok').tensors.size).toBe(2);
  });

  it('__metadata__ not a string map', () => {
    expect(parseError(build({ __metadata__: { epoch: 3 } })).message).toMatch(/__metadata__ value for 'epoch' must be a string, got number 3/);
    expect(parseError(build({ __metadata__: ['x'] })).message).toMatch(/__metadata__ must be an object mapping strings to strings, got an array/);
  });

  it('a tensor listed twice', () => {
    const text = `{"w":${JSON.stringify(ok)},"w":${JSON.stringify(ok)}}`;
    expect(parseError(build(text, 8)).message).toMatch(/tensor 'w' appears twice in the header/);
  });

  it('unknown tensor name in getFloat32', () => {
    const st = parseSafetensors(build({ w: ok }, 8), 'one.safetensors');
    expect(() => st.getFloat32('v')).toThrow(CheckpointError);
    expect(() => st.getFloat32('v')).toThrow(/^one\.safetensors: no tensor named 'v' \(the file has 1 tensor: 'w'\)/);
  });
});

describe('writeSafetensors / readSafetensors on disk', () => {
  it('writes atomically and reads back', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-st-'));
    try {
      const p = path.join(dir, 'model.safetensors');
      await fs.writeFile(p, 'old contents');
      await writeSafetensors(p, {
        w: { shape: [2, 3], data: f32([1, 2, 3, 4, 5, 6]) },
        h: { shape: [3], dtype: 'F16', data: f32([0.5, -1 / 3, 1e-8]) },
      }, { source: 'test' });
      expect(await fs.readdir(dir)).toEqual(['model.safetensors']);
      const st = await readSafetensors(p);
      expect(st.file).toBe(p);
      expect(st.metadata).toEqual({ source: 'test' });
      expect([...st.tensors.keys()]).toEqual(['h', 'w']);
      expect(Array.from(st.getFloat32('w'))).toEqual([1, 2, 3, 4, 5, 6]);
      expect(Array.from(st.getFloat32('h'))).toEqual([0.5, -0.333251953125, 0]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a missing file as a CheckpointError naming it', async () => {
    const p = path.join(os.tmpdir(), 'relprop-does-not-exist.safetensors');
    await expect(readSafetensors(p)).rejects.toThrow(CheckpointError);
    await expect(readSafetensors(p)).rejects.toThrow(`${p}: file not found`);
  });

  it('reports an unwritable path and leaves no .tmp behind', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-st-'));
    try {
      const p = path.join(dir, 'missing-subdir', 'x.safetensors');
      await expect(writeSafetensors(p, { w: { shape: [1], data: f32([1]) } })).rejects.toThrow(
        new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot write file`),
      );
      expect(await fs.readdir(dir)).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('header first, then each tensor read at its offset', () => {
  const GiB = 2 ** 30;

  /** A sparse file: `header` and the bytes in `writes` at their positions, holes elsewhere, `size` bytes long. */
  async function sparse(file: string, header: unknown, size: number, writes: Array<[number, Uint8Array]> = []): Promise<number> {
    let json = JSON.stringify(header);
    while (json.length % 8 !== 0) json += ' ';
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
    const h = await fs.open(file, 'w');
    try {
      await h.truncate(size);
      await h.write(prefix, 0, 8, 0);
      await h.write(new TextEncoder().encode(json), 0, json.length, 8);
      for (const [at, bytes] of writes) await h.write(bytes, 0, bytes.length, at);
    } finally {
      await h.close();
    }
    return 8 + json.length;
  }

  it('reads a tensor that lies past 2 GiB (readFile cannot take such a file)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-st-big-'));
    try {
      const file = path.join(dir, 'big.safetensors');
      const filler = 2 * GiB + 24;
      const header = {
        __metadata__: { format: 'pt' },
        filler: { dtype: 'U8', shape: [filler], data_offsets: [0, filler] },
        w: { dtype: 'F32', shape: [2, 2], data_offsets: [filler, filler + 16] },
      };
      const json = JSON.stringify(header);
      const dataStart = 8 + Math.ceil(json.length / 8) * 8;
      const values = f32([1.5, -2, 3.25, 2 ** -20]);
      await sparse(file, header, dataStart + filler + 16, [[dataStart + filler, new Uint8Array(values.buffer)]]);
      expect((await fs.stat(file)).size).toBeGreaterThan(2 * GiB);
      const st = await readSafetensors(file);
      try {
        expect(st.tensors.get('w')).toEqual({ name: 'w', dtype: 'F32', shape: [2, 2], begin: filler, end: filler + 16 });
        expect(Array.from(st.getFloat32('w'))).toEqual(Array.from(values));
        expect(Array.from(st.getBytes('w'))).toEqual(Array.from(new Uint8Array(values.buffer)));
      } finally {
        st.close();
      }
      expect(() => st.getFloat32('w')).toThrow(/big\.safetensors: read after the file was closed/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a 1 GB file claiming a 1e9-byte header is refused after reading its first bytes (child process maxRSS)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-st-bogus-'));
    try {
      const file = path.join(dir, 'bogus.safetensors');
      const h = await fs.open(file, 'w');
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, 1_000_000_000n, true);
      await h.truncate(1_000_000_100);
      await h.write(prefix, 0, 8, 0);
      await h.close();
      // The built reader (npm test builds it first), in a process of its own so its peak is the reader's.
      const reader = pathToFileURL(path.join(here, '..', 'dist', 'core', 'io', 'safetensors.js')).href;
      const script =
        `const { readSafetensors } = await import(${JSON.stringify(reader)});` +
        `const before = process.resourceUsage().maxRSS;` +
        `let message = '';` +
        `try { await readSafetensors(${JSON.stringify(file)}); } catch (e) { message = e.message; }` +
        `console.log(JSON.stringify({ message, grewKiB: process.resourceUsage().maxRSS - before }));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
      const out = JSON.parse(stdout) as { message: string; grewKiB: number };
      expect(out.message).toMatch(/bogus\.safetensors: header length 1000000000 bytes exceeds the 100000000-byte limit/);
      // Reading the whole file first (as readFile did) costs 1 GB here.
      expect(out.grewKiB).toBeLessThan(50 * 1024);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('data must be contiguous: a gap between tensors, or bytes after the last, is an error', () => {
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    expect(parseError(build(gap, 12)).message).toMatch(/data bytes \[4, 8\) belong to no tensor \(after 'a', before 'b'\); safetensors data must be contiguous/);
    const late = { b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    expect(parseError(build(late, 8)).message).toMatch(/data bytes \[0, 4\) belong to no tensor \(at the start, before 'b'\)/);
    const tail = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } };
    expect(parseError(build(tail, 10)).message).toMatch(/the data buffer has 10 bytes but the tensors end at 4: 6 trailing bytes belong to no tensor/);
  });

  it('getFloat32 into a caller\'s buffer fills it and returns the leading part', () => {
    const st = parseSafetensors(encodeSafetensors({ w: { shape: [3], data: f32([1, 2, 3]) }, h: { shape: [2], dtype: 'F16', data: f32([0.5, -1]) } }), 'into');
    const into = new Float32Array(5).fill(9);
    expect(Array.from(st.getFloat32('w', into))).toEqual([1, 2, 3]);
    expect(Array.from(into)).toEqual([1, 2, 3, 9, 9]);
    expect(Array.from(st.getFloat32('h', into))).toEqual([0.5, -1]);
    expect(() => st.getFloat32('w', new Float32Array(2))).toThrow(RangeError);
  });
});
