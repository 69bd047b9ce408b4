/**
 * Turning files into model inputs: images through the model's own preprocessing, or tensors in the
 * golden JSON format (already normalised pixels).
 */
import { tf, type Tensor4D } from './tf.js';
import { findNonFinite, InputError, NonFiniteError } from './errors.js';
import { readImage, type RgbImage } from './image/io.js';
import { normaliseImage, resizeForModel, showsWholeImage, type Preprocessing } from './image/preprocess.js';
import { readJsonTensor } from './io/tensor-json.js';
import type { ImageInput } from './models/types.js';

export interface ImageModelInfo {
  readonly name: string;
  readonly preprocessing: Preprocessing;
  readonly config: { readonly channels: number; readonly imageSize: readonly [number, number] };
}

/** An image as the model sees it: the batch tensor, plus the resized RGB view for overlays. */
export interface LoadedImage {
  readonly input: ImageInput;
  /** The image after the model's resize/crop, at model resolution. */
  readonly view: RgbImage;
  /** The image as read, when the model's view is the whole of it (no crop); overlays then use full resolution. */
  readonly original: RgbImage | null;
}

export function imageToInput(model: ImageModelInfo, img: RgbImage, label = 'image'): LoadedImage {
  const p = model.preprocessing;
  const [h, w] = p.size;
  const view = resizeForModel(img, p, label);
  return {
    input: { kind: 'image', pixels: tf.tensor4d(normaliseImage(view, p), [1, 3, h, w]) },
    view,
    original: showsWholeImage(p) ? img : null,
  };
}

export async function loadImageFile(model: ImageModelInfo, file: string): Promise<LoadedImage> {
  return imageToInput(model, await readImage(file), file);
}

/** Undo the normalisation of a [1, 3, H, W] tensor to get something to draw the overlay on. */
export function pixelsToImage(pixels: Float32Array, height: number, width: number, p: Preprocessing): RgbImage {
  const data = new Uint8Array(height * width * 3);
  const plane = height * width;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = (pixels[c * plane + i]! * p.std[c]! + p.mean[c]!) / p.rescaleFactor;
      data[i * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return { width, height, data };
}

export async function loadTensorFile(model: ImageModelInfo, file: string): Promise<LoadedImage> {
  const t = await readJsonTensor(file);
  const [eh, ew] = model.config.imageSize;
  const c = model.config.channels;
  const shape = t.shape.length === 3 ? [1, ...t.shape] : t.shape;
  if (shape.length !== 4 || shape[0] !== 1 || shape[1] !== c || shape[2] !== eh || shape[3] !== ew) {
    throw new InputError(`tensor has shape [${t.shape.join(', ')}] but model '${model.name}' expects [1, ${c}, ${eh}, ${ew}]`, file);
  }
  // null in a JSON tensor reads as NaN, and 1e39 overflows float32 to Infinity.
  const bad = findNonFinite(t.data);
  if (bad) throw new NonFiniteError(`tensor holds ${bad.value} at element ${bad.index} (${bad.count} of ${t.data.length} values are not finite, null reads as NaN): an input must be finite`, file);
  return {
    input: { kind: 'image', pixels: tf.tensor4d(t.data, shape as [number, number, number, number]) as Tensor4D },
    view: pixelsToImage(t.data, eh, ew, model.preprocessing),
    original: null,
  };
}
