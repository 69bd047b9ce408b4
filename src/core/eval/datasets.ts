/**
 * Evaluation data: a generated ground-truth task (`task:image:500`), a folder of images (with
 * optional ground-truth masks as PNGs of the same name in a masks folder), a text file (one sentence a
 * line) or a JSONL file ({"text"|"image", "label"?, "mask"?, "spans"?}). Items load one at a time, so
 * a bad file is reported and skipped without stopping the run.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { imageTask, textTask } from '../tasks/index.js';
import { HELD_OUT_SEED } from '../train/data.js';
import { readImage, type RgbImage } from '../image/io.js';
import { readTextFile } from '../text/tokenizer.js';

/** Where the ground truth lies: pixels (images, [H·W] of the original image) or character spans (text). */
export type GroundTruth =
  | { readonly kind: 'pixels'; readonly width: number; readonly height: number; readonly mask: Float32Array }
  | { readonly kind: 'spans'; readonly spans: ReadonlyArray<readonly [number, number]> };

export type ItemContent = { readonly kind: 'image'; readonly image: RgbImage } | { readonly kind: 'text'; readonly text: string };

export interface EvalItem {
  /** Stable across runs: the journal and shards key on it. */
  readonly id: string;
  load(): Promise<{ content: ItemContent; label: number | null; truth: GroundTruth | null }>;
}

export interface Dataset {
  /** The spec it was opened from, file and folder paths made absolute (a run's configuration records it). */
  readonly spec: string;
  readonly description: string;
  /** Generated tasks: the generator's seed and the index of the first sample. */
  readonly seeds?: { readonly generator: number; readonly first: number };
  /** The ground-truth masks folder, absolute. */
  readonly masks?: string;
  /** JSONL: the labels the file declares, with their line numbers, to check against the model's classes before any work. */
  readonly labels?: ReadonlyArray<{ readonly id: string; readonly line: number; readonly label: unknown }>;
  readonly kind: 'image' | 'text';
  readonly items: readonly EvalItem[];
}

const IMAGE_EXT = /\.(png|jpe?g|webp|gif|tiff?|avif|bmp)$/i;

/** A mask PNG: non-black pixels are foreground. It must have its image's size, or it marks other pixels than the ones meant. */
async function readMask(file: string, image: RgbImage, imageName: string): Promise<GroundTruth> {
  const img = await readImage(file);
  if (img.width !== image.width || img.height !== image.height) {
    throw new InputError(`mask is ${img.width}×${img.height} but its image ${imageName} is ${image.width}×${image.height}`, file);
  }
  const mask = new Float32Array(img.width * img.height);
  for (let i = 0; i < mask.length; i++) mask[i] = img.data[3 * i]! + img.data[3 * i + 1]! + img.data[3 * i + 2]! > 0 ? 1 : 0;
  return { kind: 'pixels', width: img.width, height: img.height, mask };
}

export async function openDataset(spec: string, options: { masks?: string } = {}): Promise<Dataset> {
  const task = /^task:(image|image-pair|text|text-pair):(\d+)$/.exec(spec);
  if (task) {
    const [, name, count] = task;
    const n = Number(count);
    // Held-out samples, disjoint from training (see train/data.ts): explanations are judged on unseen inputs.
    const offset = 5_000_000;
    if (name!.startsWith('image')) {
      const t = imageTask(HELD_OUT_SEED, { variant: name === 'image' ? 'single' : 'pair' });
      return {
        spec,
        seeds: { generator: HELD_OUT_SEED, first: offset },
        description: `${n} generated samples of the ${name} task`,
        kind: 'image',
        items: Array.from({ length: n }, (_, i) => ({
          id: `${name}-${offset + i}`,
          load: async () => {
            const s = t.sample(offset + i);
            return {
              content: { kind: 'image', image: { width: s.width, height: s.height, data: s.rgb } },
              label: s.label,
              truth: { kind: 'pixels', width: s.width, height: s.height, mask: Float32Array.from(s.mask) },
            };
          },
        })),
      };
    }
    const t = textTask(HELD_OUT_SEED, { variant: name === 'text' ? 'single' : 'pair' });
    return {
      spec,
      seeds: { generator: HELD_OUT_SEED, first: offset },
      description: `${n} generated samples of the ${name} task`,
      kind: 'text',
      items: Array.from({ length: n }, (_, i) => ({
        id: `${name}-${offset + i}`,
        load: async () => {
          const s = t.sample(offset + i);
          return { content: { kind: 'text', text: s.text }, label: s.label, truth: { kind: 'spans', spans: s.keySpans } };
        },
      })),
    };
  }

  let stat;
  try {
    stat = await fs.stat(spec);
  } catch {
    throw new UsageError(`--data '${spec}' is neither an existing file or folder nor task:NAME:COUNT (tasks: image, image-pair, text, text-pair)`);
  }
  if (stat.isDirectory()) {
    const files = (await fs.readdir(spec)).filter((f) => IMAGE_EXT.test(f)).sort();
    if (files.length === 0) throw new InputError('no image files in the folder', spec);
    return {
      spec: path.resolve(spec),
      ...(options.masks ? { masks: path.resolve(options.masks) } : {}),
      description: `${files.length} images from ${spec}`,
      kind: 'image',
      items: files.map((f) => ({
        id: f,
        load: async () => {
          const image = await readImage(path.join(spec, f));
          let truth: GroundTruth | null = null;
          if (options.masks) {
            const m = path.join(options.masks, f.replace(IMAGE_EXT, '.png'));
            if (await fs.access(m).then(() => true, () => false)) truth = await readMask(m, image, path.join(spec, f));
          }
          return { content: { kind: 'image', image }, label: null, truth };
        },
      })),
    };
  }

  const text = await readTextFile(spec);
  const lines = text.split(/\r?\n/).map((l, i) => [l, i + 1] as const).filter(([l]) => l.trim() !== '');
  if (spec.endsWith('.jsonl')) {
    const labels: Array<{ id: string; line: number; label: unknown }> = [];
    for (const [line, no] of lines) {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec && typeof rec === 'object' && 'label' in rec && rec['label'] !== null) labels.push({ id: `${path.basename(spec)}:${no}`, line: no, label: rec['label'] });
      } catch {
        // Reported as that input's error when it is loaded.
      }
    }
    return {
      spec: path.resolve(spec),
      labels,
      description: `${lines.length} records from ${spec}`,
      kind: lines.some(([l]) => l.includes('"image"')) ? 'image' : 'text',
      items: lines.map(([line, no]) => ({
        id: `${path.basename(spec)}:${no}`,
        load: async () => {
          let rec: Record<string, unknown>;
          try {
            rec = JSON.parse(line);
          } catch (err) {
            throw new InputError(`line ${no} is not valid JSON: ${(err as Error).message}`, spec);
          }
          const label = typeof rec['label'] === 'number' ? (rec['label'] as number) : null;
          if (typeof rec['image'] === 'string') {
            const base = path.dirname(spec);
            const image = await readImage(path.resolve(base, rec['image'] as string));
            const file = path.resolve(base, rec['image'] as string);
            const truth = typeof rec['mask'] === 'string' ? await readMask(path.resolve(base, rec['mask'] as string), image, file) : null;
            return { content: { kind: 'image', image }, label, truth };
          }
          if (typeof rec['text'] !== 'string') throw new InputError(`line ${no} has neither "text" nor "image"`, spec);
          const spans = Array.isArray(rec['spans']) ? (rec['spans'] as Array<[number, number]>) : null;
          return { content: { kind: 'text', text: rec['text'] as string }, label, truth: spans ? { kind: 'spans', spans } : null };
        },
      })),
    };
  }
  return {
    spec: path.resolve(spec),
    description: `${lines.length} sentences from ${spec}`,
    kind: 'text',
    items: lines.map(([line, no]) => ({
      id: `${path.basename(spec)}:${no}`,
      load: async () => ({ content: { kind: 'text', text: line }, label: null, truth: null }),
    })),
  };
}
