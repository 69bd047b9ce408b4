/**
 * Reading a model folder's preprocessing: which keys mean what (HF ViT/DeiT/ConvNeXt processors,
 * timm pretrained_cfg), and that values relprop cannot reproduce are errors naming the file.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, InputError } from '../src/core/errors.js';
import { preprocessImage, roundHalfEven, type Preprocessing, type RgbImage } from '../src/core/image/preprocess.js';
import { hfPreprocessorConfig, parseHfPreprocessing, parseTimmPreprocessing, readPreprocessing } from '../src/core/image/preprocessing-config.js';

type Json = Record<string, unknown>;
const HF = '/m/preprocessor_config.json';
const CFG = '/m/config.json';
const hf = (cfg: Json, size: [number, number] = [8, 8], modelType = 'vit'): Preprocessing => parseHfPreprocessing(cfg, HF, modelType, size);
const timm = (cfg: Json, size: [number, number] = [8, 8]): Preprocessing => parseTimmPreprocessing(cfg, CFG, size);

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

function expectCheckpointError(f: () => unknown, file: string, ...fragments: RegExp[]): void {
  const err = thrown(f);
  expect(err).toBeInstanceOf(CheckpointError);
  expect(err.message.startsWith(`${file}: `), err.message).toBe(true);
  for (const re of fragments) expect(err.message).toMatch(re);
}

describe('HF preprocessor_config.json', () => {
  it('ViT: size as {height, width} or int is a straight resize; resample is Pillow’s number', () => {
    expect(hf({ image_processor_type: 'ViTImageProcessor', size: { height: 8, width: 8 }, resample: 1 })).toEqual({
      size: [8, 8],
      resize: { kind: 'exact', height: 8, width: 8 },
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      rescaleFactor: 1 / 255,
      resample: 'lanczos',
    });
    const fe = hf({ feature_extractor_type: 'ViTFeatureExtractor', size: 8 });
    expect(fe.resize).toEqual({ kind: 'exact', height: 8, width: 8 });
    expect(fe.resample).toBe('bilinear'); // ViTImageProcessor's default
    for (const [n, name] of [[0, 'nearest'], [1, 'lanczos'], [2, 'bilinear'], [3, 'bicubic'], [4, 'box'], [5, 'hamming']] as const) {
      expect(hf({ image_processor_type: 'ViTImageProcessor', size: 8, resample: n }).resample).toBe(name);
    }
  });

  it('do_rescale, rescale_factor and do_normalize are honoured', () => {
    const off = hf({ image_processor_type: 'ViTImageProcessor', size: 8, do_rescale: false, do_normalize: false, image_mean: [0.1, 0.2, 0.3] });
    expect([off.rescaleFactor, off.mean, off.std]).toEqual([1, [0, 0, 0], [1, 1, 1]]);
    const custom = hf({ image_processor_type: 'ViTImageProcessor', size: 8, rescale_factor: 1 / 127.5, image_mean: 1, image_std: 1 });
    expect([custom.rescaleFactor, custom.mean, custom.std]).toEqual([1 / 127.5, [1, 1, 1], [1, 1, 1]]);
    // do_rescale: false, do_normalize: false gives the raw 0–255 values, as HF's pixel_values then are.
    const img: RgbImage = { width: 8, height: 8, data: new Uint8Array(192).map((_, i) => i) };
    const x = preprocessImage(img, off);
    expect([x[0], x[1], x[64], x[128 + 63]]).toEqual([0, 3, 1, 191]);
  });

  it('DeiT: an int size is a square (get_size_dict default_to_square), not a shortest edge', () => {
    const p = hf({ feature_extractor_type: 'DeiTFeatureExtractor', size: 10, crop_size: 8, do_center_crop: true, resample: 3 });
    expect(p.resize).toEqual({ kind: 'exact', height: 10, width: 10 });
    expect(p.crop).toEqual({ height: 8, width: 8, offset: 'floor' });
    // Without a type the model_type picks the processor, with its defaults (256 → crop 224, bicubic).
    const d = hf({}, [224, 224], 'deit');
    expect([d.resize, d.crop?.height, d.resample]).toEqual([{ kind: 'exact', height: 256, width: 256 }, 224, 'bicubic']);
    // do_resize: false keeps the image's size; the crop still applies.
    expect(hf({ image_processor_type: 'DeiTImageProcessor', do_resize: false, crop_size: 8 }).resize).toEqual({ kind: 'none' });
  });

  it('ConvNeXt: below 384 resize the short side to int(shortest_edge / crop_pct) and crop; from 384 warp', () => {
    const p = hf({ image_processor_type: 'ConvNextImageProcessor', size: { shortest_edge: 224 }, crop_pct: 0.875 }, [224, 224]);
    expect([p.resize, p.crop]).toEqual([{ kind: 'shortest-edge', edge: 256 }, { height: 224, width: 224, offset: 'floor' }]);
    const def = hf({ image_processor_type: 'ConvNextImageProcessor', size: 224 }, [224, 224]); // crop_pct default 224/256
    expect(def.resize).toEqual({ kind: 'shortest-edge', edge: 256 });
    const big = hf({ image_processor_type: 'ConvNextImageProcessor', size: { shortest_edge: 384 } }, [384, 384]);
    expect([big.resize, big.crop]).toEqual([{ kind: 'exact', height: 384, width: 384 }, undefined]);
  });

  it('values relprop cannot reproduce are errors naming the file', () => {
    const vit = { image_processor_type: 'ViTImageProcessor', size: 8 };
    expectCheckpointError(() => hf({ ...vit, resample: 7 }), HF, /resample 7 is not a Pillow filter/, /5 = hamming/);
    expectCheckpointError(() => hf({ ...vit, resample: 'bilinear' }), HF, /resample "bilinear"/);
    expectCheckpointError(() => hf({ ...vit, resample: 2.5 }), HF, /resample 2.5/);
    expectCheckpointError(() => hf({ ...vit, do_normalize: 'false' }), HF, /do_normalize must be true or false/);
    expectCheckpointError(() => hf({ ...vit, do_resize: null }), HF, /do_resize must be true or false, got null/);
    expectCheckpointError(() => hf({ ...vit, rescale_factor: 0 }), HF, /rescale_factor/);
    expectCheckpointError(() => hf({ ...vit, image_mean: [0.5, 0.5] }), HF, /image_mean must be .* 3 numbers/);
    expectCheckpointError(() => hf({ ...vit, image_std: [0.5, 0, 0.5] }), HF, /image_std has a zero entry/);
    expectCheckpointError(() => hf({ ...vit, size: { shortest_edge: 8 } }), HF, /not accepted by the vit image processor/);
    expectCheckpointError(() => hf({ ...vit, size: { longest_edge: 8 } }), HF, /size .* is not supported/);
    expectCheckpointError(() => hf({ ...vit, size: 16 }), HF, /produces 16×16 images but the model .* takes 8×8/);
    expectCheckpointError(() => hf({ ...vit, image_processor_type: 'ViTImageProcessorFast' }), HF, /torchvision/, /ViTImageProcessor \(Pillow\)/);
    expectCheckpointError(() => hf({ ...vit, image_processor_type: 'CLIPImageProcessor' }), HF, /CLIPImageProcessor.*not supported/);
    expectCheckpointError(() => hf({}, [8, 8], 'bert'), HF, /no image_processor_type/);
    expectCheckpointError(() => hf({ image_processor_type: 'ConvNextImageProcessor', size: { height: 8, width: 8 } }), HF, /shortest_edge/);
    expectCheckpointError(() => hf({ image_processor_type: 'ConvNextImageProcessor', size: 8, crop_pct: -1 }), HF, /crop_pct/);
  });

  it('what relprop writes (train/save) reads back as the same preprocessing', () => {
    const vit: Preprocessing = { size: [8, 8], mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6], rescaleFactor: 1 / 255, resample: 'hamming' };
    expect(hf(hfPreprocessorConfig(vit))).toEqual({ ...vit, resize: { kind: 'exact', height: 8, width: 8 } });
    const deit: Preprocessing = { ...vit, resize: { kind: 'exact', height: 10, width: 12 }, crop: { height: 8, width: 8, offset: 'floor' } };
    expect(hf(hfPreprocessorConfig(deit))).toEqual(deit);
    expect(() => hfPreprocessorConfig({ ...vit, resize: { kind: 'shortest-edge', edge: 9 }, crop: { height: 8, width: 8, offset: 'round-half-even' } })).toThrow(CheckpointError);
  });
});

describe('timm pretrained_cfg', () => {
  it('center: shortest edge floor(size / crop_pct), torchvision center crop; timm’s defaults', () => {
    expect(timm({ input_size: [3, 8, 8], interpolation: 'lanczos', crop_pct: 0.8, mean: [0.1, 0.2, 0.3], std: [0.3, 0.2, 0.1] })).toEqual({
      size: [8, 8],
      resize: { kind: 'shortest-edge', edge: 10 },
      crop: { height: 8, width: 8, offset: 'round-half-even' },
      mean: [0.1, 0.2, 0.3],
      std: [0.3, 0.2, 0.1],
      rescaleFactor: 1 / 255,
      resample: 'lanczos',
    });
    // resolve_data_config's defaults: bicubic, crop_pct 0.875, ImageNet mean/std.
    const d = timm({}, [224, 224]);
    expect([d.resize, d.resample, d.mean, d.std]).toEqual([{ kind: 'shortest-edge', edge: 256 }, 'bicubic', [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]);
  });

  it('squash, border and non-square center as transforms_imagenet_eval builds them', () => {
    expect(timm({ input_size: [3, 8, 8], crop_pct: 0.7, crop_mode: 'squash' }).resize).toEqual({ kind: 'exact', height: 11, width: 11 });
    const border = timm({ input_size: [3, 8, 8], crop_pct: 1, crop_mode: 'border', interpolation: 'box' });
    expect([border.resize, border.crop?.fill, border.resample]).toEqual([{ kind: 'keep-ratio', height: 8, width: 8, longest: 1 }, [124, 116, 104], 'box']);
    // ResizeKeepRatio(scale_size) is built without the interpolation: bilinear.
    const ns = timm({ input_size: [3, 8, 10], interpolation: 'nearest', crop_pct: 0.875 }, [8, 10]);
    expect([ns.resize, ns.resample]).toEqual([{ kind: 'keep-ratio', height: 9, width: 11, longest: 0 }, 'bilinear']);
  });

  it('unknown names and sizes that do not fit are errors naming config.json', () => {
    expectCheckpointError(() => timm({ interpolation: 'random' }), CFG, /pretrained_cfg\.interpolation "random" is not one of nearest, lanczos, bilinear, bicubic, box, hamming/);
    expectCheckpointError(() => timm({ interpolation: 3 }), CFG, /interpolation 3/);
    expectCheckpointError(() => timm({ crop_mode: 'middle' }), CFG, /crop_mode "middle"/);
    expectCheckpointError(() => timm({ input_size: [3, 16, 16] }), CFG, /input_size is 16×16 but the model .* takes 8×8/);
    expectCheckpointError(() => timm({ input_size: [1, 8, 8] }), CFG, /1 channels/);
    expectCheckpointError(() => timm({ std: [1, 0, 1] }), CFG, /std has a zero entry/);
  });

  it('Python rounding (half to even) for timm’s round()', () => {
    expect([0.5, 1.5, 2.5, 3.5, -1.5, -2.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -2, -2, 2, 3]);
  });
});

describe('readPreprocessing (the model folder)', () => {
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'relprop-preproc-cfg-'));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('prefers preprocessor_config.json, then pretrained_cfg, then config.json mean/std', async () => {
    const a = join(tmp, 'a');
    await mkdir(a, { recursive: true });
    const cfg = { model_type: 'vit', pretrained_cfg: { interpolation: 'box', crop_pct: 1 } };
    expect((await readPreprocessing(a, cfg, [8, 8])).resample).toBe('box');
    await writeFile(join(a, 'preprocessor_config.json'), JSON.stringify({ image_processor_type: 'ViTImageProcessor', size: 8, resample: 5 }));
    expect((await readPreprocessing(a, cfg, [8, 8])).resample).toBe('hamming');
    await rm(join(a, 'preprocessor_config.json'));
    expect(await readPreprocessing(a, { mean: 0.25, std: [1, 2, 3] }, [8, 8])).toEqual({
      size: [8, 8],
      mean: [0.25, 0.25, 0.25],
      std: [1, 2, 3],
      rescaleFactor: 1 / 255,
      resample: 'bilinear',
    });
  });

  it('errors name the file in the folder', async () => {
    const b = join(tmp, 'b');
    await mkdir(b, { recursive: true });
    await writeFile(join(b, 'preprocessor_config.json'), JSON.stringify({ image_processor_type: 'ViTImageProcessor', size: 8, resample: 7 }));
    await expect(readPreprocessing(b, { model_type: 'vit' }, [8, 8])).rejects.toThrow(`${join(b, 'preprocessor_config.json')}: resample 7 is not a Pillow filter`);
    await writeFile(join(b, 'preprocessor_config.json'), '{ not json');
    await expect(readPreprocessing(b, {}, [8, 8])).rejects.toThrow(/preprocessor_config\.json: not valid JSON/);
    await rm(join(b, 'preprocessor_config.json'));
    await expect(readPreprocessing(b, { pretrained_cfg: { interpolation: 'cubic' } }, [8, 8])).rejects.toThrow(`${join(b, 'config.json')}: pretrained_cfg.interpolation "cubic"`);
    await expect(readPreprocessing(b, { mean: [1, 2] }, [8, 8])).rejects.toThrow(`${join(b, 'config.json')}: mean must be`);
  });

  it('with do_resize: false an image of another size is an InputError naming the image', () => {
    const p = hf({ image_processor_type: 'ViTImageProcessor', do_resize: false, size: 8 });
    const img: RgbImage = { width: 9, height: 8, data: new Uint8Array(9 * 8 * 3) };
    const err = thrown(() => preprocessImage(img, p, 'cat.png'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('cat.png: image is 9×8 and comes out 9×8 (the model folder turns resizing off), but the model takes 8×8');
    expect(preprocessImage({ width: 8, height: 8, data: new Uint8Array(192) }, p).length).toBe(192);
  });
});

it('preprocess fixtures stay small', async () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'preprocess');
  let total = 0;
  for (const f of await readdir(dir)) total += (await stat(join(dir, f))).size;
  expect(total).toBeLessThan(200 * 1024);
});
