import { tf, type Tensor } from './tf.js';

/** Every tensor inside a forward result (records are nested plain objects and arrays). */
export function tensorsOf(value: unknown, out: Tensor[] = [], seen = new Set<unknown>()): Tensor[] {
  if (value instanceof tf.Tensor) {
    if (!seen.has(value)) {
      seen.add(value);
      out.push(value);
    }
  } else if (Array.isArray(value)) {
    for (const v of value) tensorsOf(v, out, seen);
  } else if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    for (const v of Object.values(value)) tensorsOf(v, out, seen);
  }
  return out;
}
