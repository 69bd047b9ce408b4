import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, UsageError } from '../src/core/errors.js';
import {
  COLORMAPS,
  RESAMPLE_FILTERS,
  colormap,
  colormapLut,
  decodeImage,
  encodePng,
  isDiverging,
  overlayHeatmap,
  preprocessImage,
  readImage,
  renderHeatmap,
  resizeForModel,
  resizeImage,
  upsampleBilinear,
  writePng,
  type Preprocessing,
  type RgbImage,
} from '../src/core/image/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'images');
const fixture = (name: string): string => join(fixtures, name);

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

function pixel(img: RgbImage, x: number, y: number): [number, number, number] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function rowOf(values: number[]): RgbImage {
  const data = new Uint8Array(values.length * 3);
  values.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
  return { width: values.length, height: 1, data };
}

async function expectInputError(p: Promise<unknown>, ...fragments: RegExp[]): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  const msg = (err as InputError).message;
  for (const f of fragments) expect(msg).toMatch(f);
  return err as InputError;
}

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'relprop-image-test-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('colormap', () => {
  it('lists the maps and which are diverging', () => {
    expect([...COLORMAPS]).toEqual(['jet', 'viridis', 'inferno', 'gray', 'bwr', 'rdbu']);
    expect(COLORMAPS.filter(isDiverging)).toEqual(['bwr', 'rdbu']);
  });

  it('jet matches OpenCV COLORMAP_JET (BGR table read as RGB)', () => {
    expect(colormap('jet', 0)).toEqual([0, 0, 128]); // OpenCV BGR (128,0,0)
    expect(colormap('jet', 1)).toEqual([128, 0, 0]); // OpenCV BGR (0,0,128)
    // From OpenCV's definition: Octave jet sampled at x = i/255, convertTo(CV_8U, 255).
    // i = 1: b = 0.5 + 4/255 -> 131.5 -> 132.
    expect(colormap('jet', 1 / 255)).toEqual([0, 0, 132]);
    // i = 32: g = 1.5 - |4*32/255 - 2| = 0.5/255 -> 0.5 rounds half-to-even to 0; b saturates.
    expect(colormap('jet', 32 / 255)).toEqual([0, 0, 255]);
    // i = 96: r = 1.5/255 -> 2, g = 1, b = 253.5/255 -> 254.
    expect(colormap('jet', 96 / 255)).toEqual([2, 255, 254]);
    // i = 128: r = 129.5 -> 130, g = 1, b = 125.5 -> 126 (the midpoint).
    expect(colormap('jet', 128 / 255)).toEqual([130, 255, 126]);
    // i = 224: r = 251.5 -> 252, g = b = 0.
    expect(colormap('jet', 224 / 255)).toEqual([252, 0, 0]);
    // The table is OpenCV's ramp structure: b climbs by 4 from 128 over the first 32 entries.
    const lut = colormapLut('jet');
    for (let i = 0; i < 32; i++) expect(lut[i * 3 + 2]).toBe(128 + 4 * i);
  });

  it('viridis and inferno endpoints and midpoint are matplotlib’s', () => {
    expect(colormap('viridis', 0)).toEqual([0x44, 0x01, 0x54]);
    expect(colormap('viridis', 1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(colormap('viridis', 128 / 255)).toEqual([0x21, 0x91, 0x8c]);
    expect(colormap('inferno', 0)).toEqual([0x00, 0x00, 0x04]);
    expect(colormap('inferno', 1)).toEqual([0xfc, 0xff, 0xa4]);
    expect(colormapLut('viridis').length).toBe(768);
    expect(colormapLut('inferno').length).toBe(768);
  });

  it('gray, and diverging maps centred on neutral with red for positive', () => {
    expect(colormap('gray', 0)).toEqual([0, 0, 0]);
    expect(colormap('gray', 0.5)).toEqual([128, 128, 128]); // 127.5 rounds up
    expect(colormap('gray', 1)).toEqual([255, 255, 255]);
    expect(colormap('bwr', 0)).toEqual([0, 0, 255]);
    expect(colormap('bwr', 0.5)).toEqual([255, 255, 255]);
    expect(colormap('bwr', 1)).toEqual([255, 0, 0]);
    expect(colormap('bwr', 0.25)).toEqual([128, 128, 255]);
    expect(colormap('rdbu', 0)).toEqual([0x05, 0x30, 0x61]);
    expect(colormap('rdbu', 0.5)).toEqual([0xf7, 0xf7, 0xf7]);
    expect(colormap('rdbu', 1)).toEqual([0x67, 0x00, 0x1f]);
  });

  it('clamps out-of-range and NaN input', () => {
    for (const name of COLORMAPS) {
      expect(colormap(name, -3)).toEqual(colormap(name, 0));
      expect(colormap(name, 7)).toEqual(colormap(name, 1));
      expect(colormap(name, Number.NaN)).toEqual(colormap(name, 0));
    }
  });
});

describe('upsampleBilinear', () => {
  it('2×2 → 4×4 matches torch interpolate(mode=bilinear, align_corners=False)', () => {
    // Source coordinate for output i: max((i + 0.5) * 2/4 - 0.5, 0) = 0, 0.25, 0.75, 1.25.
    // Along each axis that blends index 0 and 1 with weight on 1 of 0, 0.25, 0.75, 1 (1.25 clamps
    // to the last index). Input [[0, 1], [2, 3]] is 2*row + col, so out = 2*fy + fx.
    const out = upsampleBilinear([0, 1, 2, 3], [2, 2], 4, 4);
    const f = [0, 0.25, 0.75, 1];
    const expected: number[] = [];
    for (const fy of f) for (const fx of f) expected.push(2 * fy + fx);
    expect(Array.from(out)).toEqual(expected);
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0.25, 0.75, 1]);
    expect(Array.from(out.slice(12, 16))).toEqual([2, 2.25, 2.75, 3]);
  });

  it('handles non-square maps without transposing', () => {
    // One row of three: [0, 10, 20] → 1×6. src x = max((i+0.5)*0.5 - 0.5, 0) = 0, 0.25, 0.75, 1.25, 1.75, 2.25.
    const out = upsampleBilinear(new Float32Array([0, 10, 20]), [1, 3], 2, 6);
    expect(Array.from(out)).toEqual([0, 2.5, 7.5, 12.5, 17.5, 20, 0, 2.5, 7.5, 12.5, 17.5, 20]);
  });

  it('rejects a shape that does not fit the data', () => {
    expect(() => upsampleBilinear([1, 2, 3], [2, 2], 4, 4)).toThrow(UsageError);
  });
});

describe('resize (Pillow-compatible)', () => {
  it('bilinear upscale of [0, 255] gives Pillow’s [0, 64, 191, 255]', () => {
    const out = resizeImage(rowOf([0, 255]), 4, 1, 'bilinear');
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([0, 64, 191, 255]);
  });

  it('downscaling is antialiased as Pillow does it (support widened by the scale)', () => {
    // 4 → 2 px: taps (0.75, 0.75, 0.25)/1.75 → 255 * 1/7 = 36.4 → 36. Plain bilinear would give 0 and 255.
    const out = resizeImage(rowOf([0, 0, 255, 255]), 2, 1, 'bilinear');
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([36, 219]);
    expect(Array.from(resizeImage(rowOf([0, 255]), 1, 1, 'bilinear').data)).toEqual([128, 128, 128]);
  });

  it('keeps a constant image constant with every filter', () => {
    for (const r of RESAMPLE_FILTERS) {
      const out = resizeImage(solid(37, 23, [200, 100, 50]), 224, 224, r);
      expect(out.width).toBe(224);
      expect(out.height).toBe(224);
      const wrong = out.data.findIndex((v, i) => v !== [200, 100, 50][i % 3]);
      expect(wrong, `${r}: first differing byte`).toBe(-1);
    }
  });

  it('nearest samples at half-pixel centres', () => {
    const out = resizeImage(rowOf([10, 20, 30, 40]), 2, 1, 'nearest');
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([20, 40]);
  });
});

describe('preprocess', () => {
  const imagenet: Preprocessing = {
    size: [224, 224],
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    rescaleFactor: 1 / 255,
    resample: 'bicubic',
  };

  it('a constant image gives ((c/255) - mean) / std everywhere, CHW', () => {
    const c: [number, number, number] = [200, 100, 50];
    for (const p of [imagenet, { ...imagenet, resize: { kind: 'shortest-edge' as const, edge: 256 }, crop: { height: 224, width: 224, offset: 'floor' as const } }, { ...imagenet, resample: 'bilinear' as const, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] }]) {
      const x = preprocessImage(solid(300, 200, c), p);
      expect(x.length).toBe(3 * 224 * 224);
      for (let ch = 0; ch < 3; ch++) {
        const plane = x.subarray(ch * 224 * 224, (ch + 1) * 224 * 224);
        const exact = ((c[ch] / 255) - p.mean[ch]) / p.std[ch];
        // HF computes in float32: rescale (cast), subtract, divide.
        const f = Math.fround;
        const hf = f(f(f(c[ch] * (1 / 255)) - f(p.mean[ch])) / f(p.std[ch]));
        expect(plane.every((v) => v === hf)).toBe(true);
        expect(Math.abs(plane[0] - exact)).toBeLessThan(1e-6);
      }
    }
  });

  it('mean 0.5 / std 0.5 maps 0 and 255 to -1 and 1', () => {
    const p: Preprocessing = { size: [2, 2], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescaleFactor: 1 / 255, resample: 'bilinear' };
    const img: RgbImage = { width: 2, height: 2, data: new Uint8Array([0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255]) };
    const x = preprocessImage(img, p);
    // Channel-first: R plane is pixels' R values in row-major order.
    expect(Array.from(x.subarray(0, 4))).toEqual([-1, 1, -1, 1]);
    expect(Array.from(x.subarray(4, 8))).toEqual([1, -1, -1, 1]);
    expect(Array.from(x.subarray(8, 12))).toEqual([-1, 1, -1, 1]);
  });

  it('shortest-edge resize then center crop: 300×200 → 384×256 → 224×224 from (80, 16)', () => {
    // Left half red, right half blue; a green band in the first 40 columns and a yellow band in the
    // first 10 rows, both of which must fall outside the crop (they end at x = 51.2, y = 12.8 after
    // resizing, the crop starts at x = 80, y = 16).
    const w = 300;
    const h = 200;
    const img = solid(w, h, [0, 0, 0]);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let px: [number, number, number] = x < 150 ? [255, 0, 0] : [0, 0, 255];
        if (x < 40) px = [0, 255, 0];
        if (y < 10) px = [255, 255, 0];
        img.data.set(px, (y * w + x) * 3);
      }
    }
    const p: Preprocessing = {
      size: [224, 224],
      resize: { kind: 'shortest-edge', edge: 256 },
      crop: { height: 224, width: 224, offset: 'floor' },
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      rescaleFactor: 1 / 255,
      resample: 'bicubic',
    };
    const seen = resizeForModel(img, p);
    expect([seen.width, seen.height]).toEqual([224, 224]);
    const problems: string[] = [];
    for (let y = 0; y < 224; y++) {
      for (let x = 0; x < 224; x++) {
        const [r, g, b] = pixel(seen, x, y);
        if (g !== 0) problems.push(`green/yellow band visible at ${x},${y}`);
        if (x < 105 && (r !== 255 || b !== 0)) problems.push(`not red at ${x},${y}`);
        if (x > 118 && (r !== 0 || b !== 255)) problems.push(`not blue at ${x},${y}`);
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    // The red/blue edge (x = 150 of 300) lands at 192 of 384, i.e. 112 in the crop.
    expect(pixel(seen, 111, 100)[0]).toBeGreaterThan(pixel(seen, 111, 100)[2]);
    expect(pixel(seen, 112, 100)[2]).toBeGreaterThan(pixel(seen, 112, 100)[0]);

    // Without a crop setting the image is squashed straight to the model size.
    const squashed = resizeForModel(img, { ...p, resize: undefined, crop: undefined });
    expect([squashed.width, squashed.height]).toEqual([224, 224]);
    expect(pixel(squashed, 5, 100)).toEqual([0, 255, 0]);

    // HF DeiTImageProcessor style: 256×256 then crop 224 (offset 16 both ways).
    const deit = resizeForModel(img, { ...p, resize: { kind: 'exact', height: 256, width: 256 } });
    expect([deit.width, deit.height]).toEqual([224, 224]);
    expect(pixel(deit, 10, 100)[1]).toBe(255); // green band spans 34 of 256 columns, crop starts at 16
  });

  it('portrait images crop vertically', () => {
    const img = solid(200, 300, [10, 20, 30]);
    for (let x = 0; x < 200; x++) img.data.set([255, 255, 255], (0 * 200 + x) * 3);
    const seen = resizeForModel(img, { size: [224, 224], resize: { kind: 'shortest-edge', edge: 256 }, crop: { height: 224, width: 224, offset: 'floor' }, mean: [0, 0, 0], std: [1, 1, 1], rescaleFactor: 1 / 255, resample: 'bilinear' });
    expect([seen.width, seen.height]).toEqual([224, 224]);
    expect(pixel(seen, 100, 0)).toEqual([10, 20, 30]); // the white top row was cropped away
  });

  it('rejects nonsense settings and empty images', () => {
    const p = { ...imagenet, std: [0.2, 0, 0.2] as [number, number, number] };
    expect(() => preprocessImage(solid(4, 4, [1, 2, 3]), p)).toThrow(UsageError);
    expect(() => preprocessImage({ width: 0, height: 4, data: new Uint8Array(0) }, imagenet)).toThrow(InputError);
  });
});

describe('readImage / decodeImage', () => {
  it('reads PNG exactly', async () => {
    const img = await readImage(fixture('gradient-6x4.png'));
    expect([img.width, img.height, img.data.length]).toEqual([6, 4, 72]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) expect(pixel(img, x, y)).toEqual([40 * x, 60 * y, 100 + 10 * x + 10 * y]);
  });

  it('drops alpha as Pillow’s convert("RGB") does (HF load_image, timm): no compositing on white', async () => {
    const img = await readImage(fixture('alpha-4x2.png'));
    expect(pixel(img, 0, 0)).toEqual([0, 0, 0]); // fully transparent, stored black
    expect(pixel(img, 1, 1)).toEqual([0, 200, 0]); // opaque
    expect(pixel(img, 3, 0)).toEqual([255, 0, 0]); // half-transparent red stays red
  });

  it('expands greyscale to RGB', async () => {
    const img = await readImage(fixture('grey-5x3.png'));
    expect([img.width, img.height]).toEqual([5, 3]);
    expect(pixel(img, 4, 2)).toEqual([140, 140, 140]);
  });

  it('reads JPEG and WebP', async () => {
    const jpg = await readImage(fixture('halves-32x16.jpg'));
    const webp = await readImage(fixture('halves-32x16.webp'));
    for (const img of [jpg, webp]) {
      expect([img.width, img.height]).toEqual([32, 16]);
    }
    expect(pixel(webp, 2, 8)).toEqual([255, 0, 0]);
    expect(pixel(webp, 29, 8)).toEqual([0, 0, 255]);
    const [r, , b] = pixel(jpg, 2, 8);
    expect(r).toBeGreaterThan(230);
    expect(b).toBeLessThan(25);
    const [r2, , b2] = pixel(jpg, 29, 8);
    expect(b2).toBeGreaterThan(230);
    expect(r2).toBeLessThan(25);
  });

  it('applies EXIF orientation', async () => {
    const img = await readImage(fixture('orient6-32x16.jpg'));
    expect([img.width, img.height]).toEqual([16, 32]); // stored 32×16, orientation 6
    expect(pixel(img, 8, 2)[0]).toBeGreaterThan(230); // left (red) half is now on top
    expect(pixel(img, 8, 29)[2]).toBeGreaterThan(230);
  });

  it('decodes from memory', async () => {
    const bytes = await readFile(fixture('gradient-6x4.png'));
    const img = await decodeImage(new Uint8Array(bytes), 'upload');
    expect(pixel(img, 5, 3)).toEqual([200, 180, 180]);
  });

  it('corrupt, truncated, missing, text and empty files are InputErrors naming the file', async () => {
    await expectInputError(readImage(fixture('corrupt.png')), /corrupt\.png: /, /corrupt or truncated PNG/);
    await expectInputError(readImage(fixture('truncated.jpg')), /truncated\.jpg: /, /corrupt or truncated JPEG/);
    await expectInputError(readImage(fixture('no-such-file.png')), /no-such-file\.png: file not found/);
    await expectInputError(readImage(fixture('not-an-image.txt')), /not-an-image\.txt: not an image/, /text/);
    await expectInputError(readImage(fixture('text-named.png')), /text-named\.png: not an image/);
    await expectInputError(readImage(fixture('empty.png')), /empty\.png: file is empty/);
    await expectInputError(readImage(fixtures), /images: is a folder/);
    await expectInputError(decodeImage(new Uint8Array([0x00, 0x01, 0x02, 0x03, 0xfe, 0xff]), 'dropped file'), /^dropped file: not an image/);
    await expectInputError(decodeImage(new Uint8Array(0), 'dropped file'), /^dropped file: .*empty/);
  });

  it('fixtures stay small', async () => {
    for (const name of ['gradient-6x4.png', 'alpha-4x2.png', 'grey-5x3.png', 'halves-32x16.jpg', 'halves-32x16.webp', 'orient6-32x16.jpg', 'corrupt.png', 'truncated.jpg']) {
      expect((await stat(fixture(name))).size).toBeLessThan(20 * 1024);
    }
  });
});

describe('overlay', () => {
  // An image with distinct pixels and a 2×2 map with distinct values.
  const img: RgbImage = {
    width: 4,
    height: 4,
    data: Uint8Array.from({ length: 48 }, (_, i) => (i * 37) % 256),
  };
  const map = [0, 1, 2, 3];

  it('alpha 0 is the image, alpha 1 is the coloured map', () => {
    for (const name of COLORMAPS) {
      expect(Array.from(overlayHeatmap(img, map, [2, 2], { colormap: name, alpha: 0 }).data)).toEqual(Array.from(img.data));
      const heat = renderHeatmap(map, [2, 2], 4, 4, { colormap: name });
      expect(Array.from(overlayHeatmap(img, map, [2, 2], { colormap: name, alpha: 1 }).data)).toEqual(Array.from(heat.data));
    }
  });

  it('renders the upsampled, min-max normalised map: corners are the colormap ends', () => {
    const heat = renderHeatmap(map, [2, 2], 4, 4, { colormap: 'jet' });
    expect(pixel(heat, 0, 0)).toEqual(colormap('jet', 0));
    expect(pixel(heat, 3, 3)).toEqual(colormap('jet', 1));
    // (x=3, y=0) upsamples to 1 of 3 → t = 1/3; map[0][1] is top-right, so not transposed.
    expect(pixel(heat, 3, 0)).toEqual(colormap('jet', 1 / 3));
    expect(pixel(heat, 0, 3)).toEqual(colormap('jet', 2 / 3));
  });

  it('blends at the default alpha 0.5', () => {
    const out = overlayHeatmap(img, map, [2, 2]);
    const heat = renderHeatmap(map, [2, 2], 4, 4);
    for (let i = 0; i < out.data.length; i++) expect(out.data[i]).toBe(Math.round(0.5 * img.data[i] + 0.5 * heat.data[i]));
  });

  it('signed-max keeps zero at the centre of diverging maps', () => {
    const heat = renderHeatmap([-1, 0, 0, 2], [2, 2], 2, 2, { colormap: 'bwr' });
    expect(pixel(heat, 1, 0)).toEqual([255, 255, 255]);
    expect(pixel(heat, 1, 1)).toEqual([255, 0, 0]);
    expect(pixel(heat, 0, 0)).toEqual(colormap('bwr', 0.25));
  });

  it('constant and NaN maps draw without NaN', () => {
    expect(Array.from(renderHeatmap([5, 5, 5, 5], [2, 2], 3, 3, { colormap: 'viridis' }).data.slice(0, 3))).toEqual(colormap('viridis', 0));
    expect(Array.from(renderHeatmap([5, 5, 5, 5], [2, 2], 3, 3, { colormap: 'bwr', normalise: 'minmax' }).data.slice(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(renderHeatmap([0, 0, 0, 0], [2, 2], 3, 3, { colormap: 'rdbu' }).data.slice(0, 3))).toEqual(colormap('rdbu', 0.5));
    const withNaN = renderHeatmap([Number.NaN, 1, 1, 1], [2, 2], 2, 2, { colormap: 'gray' });
    expect(pixel(withNaN, 0, 0)).toEqual([0, 0, 0]); // NaN → 0, the minimum
    expect(pixel(withNaN, 1, 1)).toEqual([255, 255, 255]);
  });

  it('rejects bad options', () => {
    expect(() => overlayHeatmap(img, map, [2, 2], { alpha: 1.5 })).toThrow(UsageError);
    expect(() => overlayHeatmap(img, [1, 2, 3], [2, 2])).toThrow(UsageError);
  });

  it('writes the overlay PNG and reads it back at the right size', async () => {
    // A 160×120 grey gradient with a white square in the top-right corner; the 4×4 map is hot only
    // in its top-right cell, so a correct overlay puts the red on the white square.
    const w = 160;
    const h = 120;
    const base = solid(w, h, [0, 0, 0]);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 60 + Math.round((x / w) * 120);
        base.data.set(x >= 130 && y < 20 ? [255, 255, 255] : [v, v, v], (y * w + x) * 3);
      }
    }
    const heatMap = new Float32Array(16);
    heatMap[3] = 1; // row 0, column 3
    heatMap[2] = 0.4;
    heatMap[7] = 0.4;
    const out = overlayHeatmap(base, heatMap, [4, 4], { alpha: 0.6 });
    const path = join(tmp, 'overlay.png');
    await writePng(path, out);
    const back = await readImage(path);
    expect([back.width, back.height]).toEqual([w, h]);
    expect(Array.from(back.data)).toEqual(Array.from(out.data));
    // Top-right is red-ish, bottom-left keeps jet's low end (blue) over grey.
    expect(pixel(back, w - 2, 1)[0]).toBeGreaterThan(150);
    expect(pixel(back, 1, h - 2)[2]).toBeGreaterThan(pixel(back, 1, h - 2)[0]);
    // For the visual check asked for in the brief.
    await writePng('/tmp/relprop-overlay-check.png', out);
    const png = await encodePng(out);
    expect(Array.from(png.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });

  it('writePng into a missing folder is an InputError naming the path', async () => {
    await expectInputError(writePng(join(tmp, 'nope', 'x.png'), solid(2, 2, [0, 0, 0])), /x\.png: cannot write PNG: the folder does not exist/);
  });
});
