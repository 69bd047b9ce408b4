/**
 * Batches from the ground-truth tasks, for training and evaluation. Sample i of a task is a pure
 * function of (task seed, i), so a batch is a pure function of its indices: training is
 * reproducible and a resumed run sees exactly the samples an uninterrupted one would.
 */
import { tf } from '../tf.js';
import { imageTask, textTask, textTaskVocab, type ImageTask, type TextTask } from '../tasks/index.js';
import { preprocessImage, type Preprocessing } from '../image/preprocess.js';
import { tokenizerFromVocab, type Tokenizer } from '../text/tokenizer.js';
import type { ModelInput } from '../models/types.js';
import { UsageError } from '../errors.js';

export const TASKS = ['image', 'image-pair', 'text', 'text-pair'] as const;
export type TaskName = (typeof TASKS)[number];

export interface Batch {
  readonly input: ModelInput;
  readonly labels: number[];
}

export interface TaskData {
  readonly name: TaskName;
  readonly kind: 'image' | 'text';
  readonly classes: readonly string[];
  /** A human description for model cards. */
  readonly description: string;
  batch(indices: readonly number[]): Batch;
}

/** The image preprocessing of our shipped models: 64×64 as generated, scaled to [−1, 1]. */
export const TASK_PREPROCESSING: Preprocessing = {
  size: [64, 64],
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
  rescaleFactor: 1 / 255,
  resample: 'bilinear',
};

/** Longest sentence of the text tasks in tokens ([CLS] and [SEP] included) stays well under this. */
export const TEXT_MAX_TOKENS = 64;

export function taskTokenizer(): Tokenizer {
  return tokenizerFromVocab(textTaskVocab(), { lowercase: true, maxLength: TEXT_MAX_TOKENS });
}

function imageData(name: TaskName, task: ImageTask): TaskData {
  return {
    name,
    kind: 'image',
    classes: task.classes,
    description:
      name === 'image'
        ? 'images of 3–5 shapes on a noisy background; the label is the kind of the only red shape (the others are distractors)'
        : 'images with two red shapes among distractors; the label says whether the two red shapes are of the same kind',
    batch(indices) {
      const [h, w] = TASK_PREPROCESSING.size;
      const data = new Float32Array(indices.length * 3 * h * w);
      const labels = indices.map((i, k) => {
        const s = task.sample(i);
        data.set(preprocessImage({ width: s.width, height: s.height, data: s.rgb }, TASK_PREPROCESSING), k * 3 * h * w);
        return s.label;
      });
      return { input: { kind: 'image', pixels: tf.tensor4d(data, [indices.length, 3, h, w]) }, labels };
    },
  };
}

function textData(name: TaskName, task: TextTask, tokenizer: Tokenizer): TaskData {
  return {
    name,
    kind: 'text',
    classes: task.classes,
    description:
      name === 'text'
        ? 'sentences with one sentiment word that counts (not after "not", not inside quotes) and decoys that do not; the label is its polarity'
        : 'sentences with two sentiment words that count among decoys; the label says whether their polarities agree',
    batch(indices) {
      const encoded = indices.map((i) => tokenizer.encode(task.sample(i).text));
      // Pad to the longest in the batch: padding is masked, so it changes nothing but the cost.
      const T = Math.max(...encoded.map((e) => e.ids.length));
      const pad = tokenizer.special.pad;
      const ids = encoded.flatMap((e) => [...e.ids, ...Array(T - e.ids.length).fill(pad)]);
      const mask = encoded.flatMap((e) => [...e.attentionMask, ...Array(T - e.ids.length).fill(0)]);
      return {
        input: { kind: 'tokens', ids: tf.tensor2d(ids, [indices.length, T], 'int32'), attentionMask: tf.tensor2d(mask, [indices.length, T], 'int32') },
        labels: indices.map((i) => task.sample(i).label),
      };
    },
  };
}

export function taskData(name: string, seed: number): TaskData {
  switch (name) {
    case 'image':
      return imageData(name, imageTask(seed, { variant: 'single' }));
    case 'image-pair':
      return imageData(name, imageTask(seed, { variant: 'pair' }));
    case 'text':
      return textData(name, textTask(seed, { variant: 'single' }), taskTokenizer());
    case 'text-pair':
      return textData(name, textTask(seed, { variant: 'pair' }), taskTokenizer());
    default:
      throw new UsageError(`unknown task '${name}' (choose one of ${TASKS.join(', ')})`);
  }
}

/** Task seeds: training and evaluation draw from disjoint seeds, so held-out means never seen. */
export const TRAIN_SEED = 1;
export const HELD_OUT_SEED = 7_000_001;
