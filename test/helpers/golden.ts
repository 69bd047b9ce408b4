/**
 * Access to the golden reference vectors copied from ../shared/golden (see test/fixtures/golden/README.md),
 * and the comparison the golden README prescribes: max |ours − golden| relative to the field's max |value|.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { parseJsonTensor, type JsonTensor } from '../../src/core/io/tensor-json.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const GOLDEN_DIR = path.join(FIXTURES, 'golden');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GoldenJson = any;

const cache = new Map<string, GoldenJson>();
export function loadGolden(caseName: string, file = 'golden.json'): GoldenJson {
  const key = `${caseName}/${file}`;
  if (!cache.has(key)) cache.set(key, JSON.parse(readFileSync(path.join(GOLDEN_DIR, caseName, file), 'utf8')));
  return cache.get(key);
}

export function tensor(value: unknown, label = 'golden'): JsonTensor {
  return parseJsonTensor(value, label);
}

/** Largest |a − b| over the largest |b| (NaN-aware: NaN must meet NaN). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length, 'length').toBe(expected.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      expect(Number.isNaN(a), `NaN mismatch at ${i}`).toBe(Number.isNaN(e));
      continue;
    }
    maxDiff = Math.max(maxDiff, Math.abs(a - e));
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const err = relativeError(actual, expected);
  expect(err, `${what}: max|diff|/max|ref| = ${err.toExponential(2)} > ${tol}`).toBeLessThanOrEqual(tol);
}
