/**
 * Synthetic selective-dependence tasks: classification problems whose label depends only on a known part of
 * the input, so explanations can be scored against exact ground truth. Pure TypeScript (no tfjs, no Node
 * imports), so the app's renderer can generate the same samples as the CLI.
 */
export { Rng, sampleSeed, hashString } from './rng.js';
export {
  imageTask, shapeCovers, SHAPE_KINDS, OBJECT_COLOURS, DISTRACTOR_COLOURS, DECIDING_COLOUR,
  type ImageTask, type ImageTaskOptions, type ImageSample, type ImageObject, type ShapeKind,
} from './image-task.js';
export {
  textTask, textTaskVocab,
  type TextTask, type TextTaskOptions, type TextSample, type TextWord, type WordRole,
} from './text-task.js';
export { POSITIVE_WORDS, NEGATIVE_WORDS, NEGATOR, FILLER_WORDS } from './text-vocab.js';
