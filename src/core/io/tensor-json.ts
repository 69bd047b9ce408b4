/**
 * Tensors as JSON, in the golden files' format: `{"dtype": "float32", "shape": [...], "data": nested
 * arrays}`. `null` inside data is NaN (the authors' code produces it in one place).
 */
import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';

export interface JsonTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function isJsonTensor(value: unknown): value is { dtype: string; shape: number[]; data: unknown } {
  return !!value && typeof value === 'object' && 'dtype' in value && 'shape' in value && 'data' in value;
}

/** Flatten nested `data` row-major, checking it against `shape`. `label` names the source in errors. */
export function parseJsonTensor(value: unknown, label: string): JsonTensor {
  if (!isJsonTensor(value)) throw new InputError('expected a tensor object {"dtype", "shape", "data"}', label);
  const { dtype, shape, data } = value;
  if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new InputError('"shape" must be an array of non-negative integers', label);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  let at = 0;
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (v !== null && typeof v !== 'number') throw new InputError(`non-numeric value at element ${at}`, label);
      if (at >= size) throw new InputError(`more values than shape [${shape.join(', ')}] holds`, label);
      out[at++] = v === null ? NaN : v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new InputError(`"data" does not match shape [${shape.join(', ')}] at depth ${depth}`, label);
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(data, 0);
  return { dtype: String(dtype), shape: [...shape], data: out };
}

export async function readJsonTensor(file: string): Promise<JsonTensor> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(`not valid JSON: ${(err as Error).message}`, file);
  }
  return parseJsonTensor(value, file);
}
