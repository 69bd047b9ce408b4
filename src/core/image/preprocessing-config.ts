/**
 * The model folder's image preprocessing, read as the library that wrote it would apply it:
 * HuggingFace's `preprocessor_config.json` (ViT, DeiT and ConvNeXt image processors) or timm's
 * `pretrained_cfg` in config.json. Every key that changes the pixels is honoured; a value relprop
 * cannot reproduce exactly is an error naming the file, because a model evaluated on other pixels
 * than it was trained on gives other logits and other relevance maps.
 */
import { readJson } from '../io/json-file.js';
import path from 'node:path';
import { CheckpointError } from '../errors.js';
import { RESAMPLE_FILTERS, roundHalfEven, type Preprocessing, type Resample } from './preprocess.js';

type Json = Record<string, unknown>;
type Triple = [number, number, number];

/** transformers' IMAGENET_STANDARD_MEAN / _STD: the ViT, DeiT and ConvNeXt processors' default. */
const HF_DEFAULT_MEAN: Triple = [0.5, 0.5, 0.5];
const HF_DEFAULT_STD: Triple = [0.5, 0.5, 0.5];
/** timm's IMAGENET_DEFAULT_MEAN / _STD, DEFAULT_CROP_PCT and resolve_data_config's interpolation. */
const TIMM_DEFAULT_MEAN: Triple = [0.485, 0.456, 0.406];
const TIMM_DEFAULT_STD: Triple = [0.229, 0.224, 0.225];
const TIMM_DEFAULT_CROP_PCT = 0.875;
const TIMM_DEFAULT_INTERPOLATION: Resample = 'bicubic';

type Family = 'vit' | 'deit' | 'convnext';

/** The slow (Pillow) processors and the feature extractors they replaced, which read the same keys. */
const HF_PROCESSORS: Record<string, Family> = {
  ViTImageProcessor: 'vit',
  ViTFeatureExtractor: 'vit',
  DeiTImageProcessor: 'deit',
  DeiTFeatureExtractor: 'deit',
  ConvNextImageProcessor: 'convnext',
  ConvNextFeatureExtractor: 'convnext',
};

/** Each family's constructor defaults (transformers' image_processing_vit/deit/convnext.py). */
const HF_DEFAULT_RESAMPLE: Record<Family, Resample> = { vit: 'bilinear', deit: 'bicubic', convnext: 'bicubic' };

function describe(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

class Reader {
  constructor(
    readonly obj: Json,
    readonly file: string,
    readonly prefix = '',
  ) {}

  fail(message: string): never {
    throw new CheckpointError(message, this.file);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** A boolean key; null is refused because HF would read it as false for some keys and as the default for others. */
  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(`${this.prefix}${key} must be true or false, got ${describe(v)}`);
    return v;
  }

  triple(key: string, fallback: Triple, allowFalsy = false): Triple {
    const v = this.obj[key];
    if (v === undefined || v === null || (allowFalsy && Array.isArray(v) && v.length === 0)) return fallback;
    const t: unknown[] = typeof v === 'number' ? [v, v, v] : Array.isArray(v) ? v : [];
    if (t.length !== 3 || !t.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(`${this.prefix}${key} must be a number or a list of 3 numbers (one per RGB channel), got ${describe(v)}`);
    }
    return t as Triple;
  }

  std(key: string, fallback: Triple, allowFalsy = false): Triple {
    const t = this.triple(key, fallback, allowFalsy);
    if (t.some((x) => x === 0)) this.fail(`${this.prefix}${key} has a zero entry (${describe(t)}): normalising would divide by zero`);
    return t;
  }

  positiveInt(v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(`${this.prefix}${what} must be a positive integer, got ${describe(v)}`);
    return v;
  }
}

/** transformers' `PILImageResampling` value: an integer 0–5, as Pillow numbers its filters. */
function hfResample(r: Reader, family: Family): Resample {
  const v = r.obj['resample'];
  if (v === undefined) return HF_DEFAULT_RESAMPLE[family];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= RESAMPLE_FILTERS.length) {
    r.fail(
      `resample ${describe(v)} is not a Pillow filter (${RESAMPLE_FILTERS.map((name, i) => `${i} = ${name}`).join(', ')})`,
    );
  }
  return RESAMPLE_FILTERS[v];
}

type HfSize = { height: number; width: number } | { shortestEdge: number };

/**
 * transformers' `get_size_dict`: an int is a square when `defaultToSquare` (ViT, DeiT) and a shortest
 * edge otherwise (ConvNeXt); a list is [height, width]; a dict keeps its keys.
 */
function hfSize(r: Reader, key: string, fallback: HfSize, defaultToSquare: boolean): HfSize {
  const v = r.obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number') {
    const n = r.positiveInt(v, key);
    return defaultToSquare ? { height: n, width: n } : { shortestEdge: n };
  }
  if (Array.isArray(v) && v.length === 2) {
    return { height: r.positiveInt(v[0], `${key}[0]`), width: r.positiveInt(v[1], `${key}[1]`) };
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const d = v as Json;
    const keys = Object.keys(d).sort().join(',');
    if (keys === 'height,width') return { height: r.positiveInt(d['height'], `${key}.height`), width: r.positiveInt(d['width'], `${key}.width`) };
    if (keys === 'shortest_edge') return { shortestEdge: r.positiveInt(d['shortest_edge'], `${key}.shortest_edge`) };
    r.fail(`${key} ${describe(v)} is not supported (give {"height", "width"} or {"shortest_edge"})`);
  }
  r.fail(`${key} must be an integer, [height, width] or a dict, got ${describe(v)}`);
}

function requireHeightWidth(r: Reader, key: string, s: HfSize, family: Family): { height: number; width: number } {
  if ('shortestEdge' in s) {
    r.fail(`${key} {"shortest_edge": ${s.shortestEdge}} is not accepted by the ${family} image processor, which resizes to {"height", "width"}`);
  }
  return s;
}

function sizeText(h: number, w: number): string {
  return `${w}×${h}`;
}

/** Read HF's preprocessor_config.json (already parsed). `modelType` picks the processor when the file names none. */
export function parseHfPreprocessing(hf: Json, file: string, modelType: string, imageSize: [number, number]): Preprocessing {
  const r: Reader = new Reader(hf, file);
  const typeKey = hf['image_processor_type'] !== undefined ? 'image_processor_type' : 'feature_extractor_type';
  const typeName = hf[typeKey];
  let family: Family;
  if (typeName === undefined || typeName === null) {
    if (modelType !== 'vit' && modelType !== 'deit') {
      r.fail(`names no image_processor_type, and model_type '${modelType}' has no default processor here`);
    }
    family = modelType;
  } else if (typeof typeName === 'string' && HF_PROCESSORS[typeName] !== undefined) {
    family = HF_PROCESSORS[typeName];
  } else if (typeof typeName === 'string' && typeName.endsWith('Fast') && HF_PROCESSORS[typeName.slice(0, -4)] !== undefined) {
    r.fail(
      `${typeKey} ${typeName} resizes with torchvision on tensors, whose pixels differ from Pillow's; relprop reproduces ` +
        `${typeName.slice(0, -4)} (Pillow) exactly. If that is what the model was evaluated with, name it in this file`,
    );
  } else {
    r.fail(`${typeKey} ${describe(typeName)} is not supported (supported: ${Object.keys(HF_PROCESSORS).join(', ')})`);
  }

  const doResize = r.bool('do_resize', true);
  const doRescale = r.bool('do_rescale', true);
  const doNormalize = r.bool('do_normalize', true);
  const resample = hfResample(r, family);
  let rescaleFactor = 1 / 255;
  if (r.obj['rescale_factor'] !== undefined) {
    const v = r.obj['rescale_factor'];
    if (typeof v !== 'number' || !Number.isFinite(v) || v === 0) r.fail(`rescale_factor must be a non-zero number, got ${describe(v)}`);
    rescaleFactor = v;
  }
  const mean = r.triple('image_mean', HF_DEFAULT_MEAN);
  const std = r.std('image_std', HF_DEFAULT_STD);

  const [mh, mw] = imageSize;
  let resize: Preprocessing['resize'] = { kind: 'none' };
  let crop: Preprocessing['crop'];
  let out: [number, number] | undefined; // undefined: the image's own size
  if (family === 'vit') {
    const size = requireHeightWidth(r, 'size', hfSize(r, 'size', { height: 224, width: 224 }, true), family);
    if (doResize) {
      resize = { kind: 'exact', height: size.height, width: size.width };
      out = [size.height, size.width];
    }
  } else if (family === 'deit') {
    const size = requireHeightWidth(r, 'size', hfSize(r, 'size', { height: 256, width: 256 }, true), family);
    const cropSize = requireHeightWidth(r, 'crop_size', hfSize(r, 'crop_size', { height: 224, width: 224 }, true), family);
    if (doResize) {
      resize = { kind: 'exact', height: size.height, width: size.width };
      out = [size.height, size.width];
    }
    if (r.bool('do_center_crop', true)) {
      crop = { height: cropSize.height, width: cropSize.width, offset: 'floor' };
      out = [cropSize.height, cropSize.width];
    }
  } else {
    const size = hfSize(r, 'size', { shortestEdge: 384 }, false);
    if (!('shortestEdge' in size)) r.fail(`size must be {"shortest_edge": n} for the ConvNeXt image processor, got ${describe(hf['size'])}`);
    let cropPct = 224 / 256;
    if (r.has('crop_pct')) {
      const v = r.obj['crop_pct'];
      if (typeof v !== 'number' || !(v > 0)) r.fail(`crop_pct must be a positive number, got ${describe(v)}`);
      cropPct = v;
    }
    const se = size.shortestEdge;
    if (doResize) {
      // ConvNextImageProcessor.resize: below 384 keep the aspect ratio, resize the short side to
      // int(shortest_edge / crop_pct) and crop; at 384 and above warp to a square without cropping.
      if (se < 384) {
        resize = { kind: 'shortest-edge', edge: Math.trunc(se / cropPct) };
        crop = { height: se, width: se, offset: 'floor' };
      } else {
        resize = { kind: 'exact', height: se, width: se };
      }
      out = [se, se];
    }
  }
  if (out !== undefined && (out[0] !== mh || out[1] !== mw)) {
    r.fail(`preprocessing produces ${sizeText(out[0], out[1])} images but the model (config.json image_size) takes ${sizeText(mh, mw)}`);
  }
  return {
    size: [mh, mw],
    resize,
    ...(crop ? { crop } : {}),
    mean: doNormalize ? mean : [0, 0, 0],
    std: doNormalize ? std : [1, 1, 1],
    rescaleFactor: doRescale ? rescaleFactor : 1,
    resample,
  };
}

/**
 * Read timm's `pretrained_cfg` as `resolve_data_config` + `transforms_imagenet_eval` use it: resize
 * to `floor(size / crop_pct)` (shortest edge for `crop_mode: center`, both sides for `squash`, the
 * longest side for `border`), then a torchvision center crop (or pad) to `input_size`, ToTensor and
 * Normalize.
 */
export function parseTimmPreprocessing(cfg: Json, file: string, imageSize: [number, number]): Preprocessing {
  const r: Reader = new Reader(cfg, file, 'pretrained_cfg.');
  const [mh, mw] = imageSize;
  let h = mh;
  let w = mw;
  if (r.has('input_size')) {
    const v = cfg['input_size'];
    if (!Array.isArray(v) || v.length !== 3) r.fail(`pretrained_cfg.input_size must be [channels, height, width], got ${describe(v)}`);
    if (v[0] !== 3) r.fail(`pretrained_cfg.input_size has ${describe(v[0])} channels; relprop reads RGB images (3 channels)`);
    h = r.positiveInt(v[1], 'input_size[1]');
    w = r.positiveInt(v[2], 'input_size[2]');
    if (h !== mh || w !== mw) {
      r.fail(`pretrained_cfg.input_size is ${sizeText(h, w)} but the model (image_size) takes ${sizeText(mh, mw)}`);
    }
  }
  let resample: Resample = TIMM_DEFAULT_INTERPOLATION;
  if (r.has('interpolation') && cfg['interpolation'] !== '') {
    const v = cfg['interpolation'];
    if (typeof v !== 'string' || !(RESAMPLE_FILTERS as readonly string[]).includes(v)) {
      r.fail(`pretrained_cfg.interpolation ${describe(v)} is not one of ${RESAMPLE_FILTERS.join(', ')}`);
    }
    resample = v as Resample;
  }
  let cropPct = TIMM_DEFAULT_CROP_PCT;
  // timm takes the default for any falsy crop_pct (`pretrained_cfg.get('crop_pct') or DEFAULT_CROP_PCT`).
  if (r.has('crop_pct') && cfg['crop_pct'] !== 0) {
    const v = cfg['crop_pct'];
    if (typeof v !== 'number' || !(v > 0)) r.fail(`pretrained_cfg.crop_pct must be a positive number, got ${describe(v)}`);
    cropPct = v;
  }
  let cropMode = 'center';
  if (r.has('crop_mode') && cfg['crop_mode'] !== '') {
    const v = cfg['crop_mode'];
    if (v !== 'center' && v !== 'squash' && v !== 'border') {
      r.fail(`pretrained_cfg.crop_mode ${describe(v)} is not one of center, squash, border`);
    }
    cropMode = v;
  }
  const mean = r.triple('mean', TIMM_DEFAULT_MEAN, true);
  const std = r.std('std', TIMM_DEFAULT_STD, true);
  const sh = Math.floor(h / cropPct);
  const sw = Math.floor(w / cropPct);
  const base = { size: [h, w] as [number, number], mean, std, rescaleFactor: 1 / 255 };
  if (cropMode === 'squash') {
    return { ...base, resample, resize: { kind: 'exact', height: sh, width: sw }, crop: { height: h, width: w, offset: 'round-half-even' } };
  }
  if (cropMode === 'border') {
    // Python's round(255 * mean), the padding colour timm's CenterCropOrPad is given.
    const fill = mean.map((m) => Math.min(255, Math.max(0, roundHalfEven(255 * m)))) as Triple;
    return {
      ...base,
      resample,
      resize: { kind: 'keep-ratio', height: sh, width: sw, longest: 1 },
      crop: { height: h, width: w, offset: 'round-half-even', fill },
    };
  }
  if (sh === sw) {
    return { ...base, resample, resize: { kind: 'shortest-edge', edge: sh }, crop: { height: h, width: w, offset: 'round-half-even' } };
  }
  // timm builds ResizeKeepRatio(scale_size) here without passing the interpolation, so it resizes
  // bilinearly whatever pretrained_cfg.interpolation says.
  return {
    ...base,
    resample: 'bilinear',
    resize: { kind: 'keep-ratio', height: sh, width: sw, longest: 0 },
    crop: { height: h, width: w, offset: 'round-half-even' },
  };
}


/**
 * The model's image preprocessing, from (in order) HF's preprocessor_config.json, timm's
 * pretrained_cfg in config.json, or else a plain bilinear resize to the model size with mean/std keys
 * of config.json (default mean = std = 0.5, timm's values for the original ViT weights).
 */
export async function readPreprocessing(dir: string, config: Json, imageSize: [number, number]): Promise<Preprocessing> {
  const configFile = path.join(dir, 'config.json');
  const hfFile = path.join(dir, 'preprocessor_config.json');
  const hf = await readJson(hfFile, false);
  if (hf) return parseHfPreprocessing(hf, hfFile, String(config['model_type'] ?? ''), imageSize);
  const timm = config['pretrained_cfg'];
  if (timm !== undefined && timm !== null) {
    if (typeof timm !== 'object' || Array.isArray(timm)) throw new CheckpointError(`pretrained_cfg must be an object, got ${describe(timm)}`, configFile);
    return parseTimmPreprocessing(timm as Json, configFile, imageSize);
  }
  const r: Reader = new Reader(config, configFile);
  return {
    size: imageSize,
    mean: r.triple('mean', [0.5, 0.5, 0.5]),
    std: r.std('std', [0.5, 0.5, 0.5]),
    rescaleFactor: 1 / 255,
    resample: 'bilinear',
  };
}

/**
 * The preprocessor_config.json that makes HF's processor (and relprop's reader) do what `p` does.
 * Only what a HF ViT/DeiT processor can express is written; anything else is an error rather than a
 * file that would preprocess differently.
 */
export function hfPreprocessorConfig(p: Preprocessing): Json {
  const resize = p.resize ?? { kind: 'exact', height: p.size[0], width: p.size[1] };
  const common = {
    resample: RESAMPLE_FILTERS.indexOf(p.resample),
    do_rescale: true,
    rescale_factor: p.rescaleFactor,
    do_normalize: true,
    image_mean: [...p.mean],
    image_std: [...p.std],
  };
  if ((resize.kind === 'exact' || resize.kind === 'none') && p.crop === undefined) {
    return {
      image_processor_type: 'ViTImageProcessor',
      do_resize: resize.kind === 'exact',
      size: { height: p.size[0], width: p.size[1] },
      ...common,
    };
  }
  if ((resize.kind === 'exact' || resize.kind === 'none') && p.crop !== undefined && p.crop.offset === 'floor' && !p.crop.fill?.some((v) => v !== 0)) {
    return {
      image_processor_type: 'DeiTImageProcessor',
      do_resize: resize.kind === 'exact',
      size: resize.kind === 'exact' ? { height: resize.height, width: resize.width } : { height: p.size[0], width: p.size[1] },
      do_center_crop: true,
      crop_size: { height: p.crop.height, width: p.crop.width },
      ...common,
    };
  }
  throw new CheckpointError(
    `this preprocessing (resize ${resize.kind}, crop ${p.crop?.offset ?? 'none'}) cannot be written as a ViT or DeiT preprocessor_config.json`,
    'preprocessor_config.json',
  );
}
