/**
 * relprop's preprocessing against pixels Pillow computed (test/fixtures/preprocess/generate.py, run with
 * Debian's python3-pil): decoding to RGB, every resampling filter, and whole model folders
 * (preprocessor_config.json or timm's pretrained_cfg) read by loadModel.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/core/errors.js';
import { readImage, resizeImage, type Resample } from '../src/core/image/index.js';
import { loadImageFile } from '../src/core/inputs.js';
import { loadModel } from '../src/core/models/load.js';
import { VIT_B16, randomViT } from '../src/core/models/random.js';
import type { ViTModel } from '../src/core/models/vit.js';
import { saveViT } from '../src/core/train/save.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'preprocess');
const fixture = (name: string): string => join(here, name);
const json = <T>(name: string): T => JSON.parse(readFileSync(fixture(name), 'utf8')) as T;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const floats = (b64: string): Float32Array => {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** Indices where two arrays differ (first few), so a failure says where. */
function differences(a: ArrayLike<number>, b: ArrayLike<number>): string[] {
  const out: string[] = [];
  if (a.length !== b.length) return [`length ${a.length} vs ${b.length}`];
  for (let i = 0; i < a.length && out.length < 5; i++) if (!Object.is(a[i], b[i])) out.push(`[${i}] ${a[i]} vs ${b[i]}`);
  return out;
}

interface DecodeFixture {
  images: Record<string, { mode: string; width: number; height: number; rgb: string }>;
}
interface ResizeCase {
  source: string;
  filter: Resample;
  width: number;
  height: number;
  rgb: string;
}
interface PipelineCase {
  name: string;
  source: string;
  kind: 'hf' | 'timm';
  config: Record<string, unknown>;
  imageSize: [number, number];
  view: string;
  tensor: string;
}

describe('decoding matches Pillow convert("RGB")', () => {
  const { images } = json<DecodeFixture>('decode.json');
  for (const [name, ref] of Object.entries(images)) {
    it(`${name} (${ref.mode})`, async () => {
      const img = await readImage(fixture(name));
      expect([img.width, img.height]).toEqual([ref.width, ref.height]);
      // RGBA/LA: alpha dropped with the stored colour kept (not composited on white); P: palette colours.
      expect(differences(img.data, bytes(ref.rgb))).toEqual([]);
    });
  }
});

describe('16-bit greyscale, which Pillow clips at 255 in convert("RGB")', () => {
  it('is refused with an InputError naming the file rather than scaled', async () => {
    const err = await readImage(fixture('grey16-4x3.png')).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toMatch(/grey16-4x3\.png: 16-bit greyscale images are not supported/);
  });
});

describe('resizeImage matches Pillow Image.resize bit for bit', () => {
  const { cases } = json<{ cases: ResizeCase[] }>('resize.json');
  const sources = new Map<string, Awaited<ReturnType<typeof readImage>>>();
  beforeAll(async () => {
    for (const c of cases) if (!sources.has(c.source)) sources.set(c.source, await readImage(fixture(c.source)));
  });

  it('covers every Pillow filter, up, down and one axis', () => {
    expect(new Set(cases.map((c) => c.filter))).toEqual(new Set(['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming']));
    expect(cases.length).toBe(66);
  });

  for (const filter of ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'] as const) {
    it(filter, () => {
      const problems: string[] = [];
      for (const c of cases.filter((x) => x.filter === filter)) {
        const src = sources.get(c.source)!;
        const out = resizeImage(src, c.width, c.height, c.filter);
        const d = differences(out.data, bytes(c.rgb));
        if (d.length > 0) problems.push(`${c.source} → ${c.width}×${c.height}: ${d.join(', ')}`);
      }
      expect(problems).toEqual([]);
    });
  }
});

describe('model folders preprocess as HF / timm do (loadModel + loadImageFile)', () => {
  const { cases } = json<{ cases: PipelineCase[] }>('pipelines.json');
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'relprop-preprocess-'));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** A tiny ViT saved as a HF folder, with the case's preprocessing put in place of relprop's own. */
  async function folderFor(c: PipelineCase): Promise<string> {
    const dir = join(tmp, c.name);
    const model: ViTModel = randomViT(
      { ...VIT_B16, imageSize: c.imageSize, patchSize: 2, dim: 8, depth: 1, heads: 2, mlpDim: 8, numClasses: 2 },
      { seed: 1 },
    );
    try {
      await saveViT(model, dir);
    } finally {
      model.dispose();
    }
    if (c.kind === 'hf') {
      await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify(c.config));
    } else {
      await unlink(join(dir, 'preprocessor_config.json'));
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, pretrained_cfg: c.config }));
    }
    return dir;
  }

  for (const c of cases) {
    it(c.name, async () => {
      const model = await loadModel(await folderFor(c));
      try {
        const loaded = await loadImageFile(model as ViTModel, fixture(c.source));
        try {
          expect([loaded.view.height, loaded.view.width]).toEqual(c.imageSize);
          expect(differences(loaded.view.data, bytes(c.view)), 'uint8 pixels the model sees').toEqual([]);
          const x = loaded.input.kind === 'image' ? await loaded.input.pixels.data() : new Float32Array(0);
          // Equal as float32 values: the same rounding steps as HF's numpy / timm's torch code.
          expect(differences(x, floats(c.tensor)), 'float32 tensor').toEqual([]);
        } finally {
          if (loaded.input.kind === 'image') loaded.input.pixels.dispose();
        }
      } finally {
        model.dispose();
      }
    });
  }
});
