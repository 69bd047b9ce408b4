import { CheckpointError } from '../errors.js';

/**
 * A layer-norm epsilon from config.json. It is added to the variance under the square root, so a
 * negative one turns every normalised activation into NaN for inputs of small variance: refused at
 * load, naming the key, instead of surfacing later as non-finite logits. An absent key takes the
 * family's default; a present key that is not a number is an error, never the default.
 */
export function layerNormEps(json: Record<string, unknown>, key: string, fallback: number, file: string): number {
  if (!(key in json) || json[key] === null) return fallback;
  const v = json[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new CheckpointError(`'${key}' is ${JSON.stringify(v)}; it must be a non-negative number (it is added to the variance under LayerNorm's square root)`, file);
  return v;
}
