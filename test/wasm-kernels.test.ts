/**
 * The heap-to-heap kernels that replace tfjs-wasm's Slice, SplitV, Unpack and (tall) Transpose
 * (src/core/wasm-kernels.ts) give exactly the values an index-by-index reference gives.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';

beforeAll(async () => {
  expect(await ensureBackend('wasm')).toBe('wasm');
});

const iota = (m: number, n: number) => Float32Array.from({ length: m * n }, (_, i) => Math.fround(Math.sin(i) * 1000));

describe('wasm kernels', () => {
  it('transposes tall, wide and small matrices exactly', () => {
    for (const [m, n] of [[3072, 197], [1001, 97], [197, 3072], [5, 3]] as const) {
      const data = iota(m, n);
      const y = tf.transpose(tf.tensor2d(data, [m, n]));
      expect(y.shape).toEqual([n, m]);
      const out = y.dataSync();
      let bad = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) if (out[j * m + i] !== data[i * n + j]) bad++;
      expect(bad).toBe(0);
    }
    // Other permutations still go to the stock kernel.
    const d3 = iota(2, 12);
    const t3 = tf.transpose(tf.tensor3d(d3, [2, 3, 4]), [0, 2, 1]).dataSync();
    for (let b = 0; b < 2; b++) for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(t3[b * 12 + j * 3 + i]).toBe(d3[b * 12 + i * 4 + j]);
  });

  it('slices, splits and unpacks exactly', () => {
    const data = iota(6, 10);
    const x = tf.tensor2d(data, [6, 10]);
    const s = tf.slice(x, [1, 2], [3, 4]).dataSync();
    expect(Array.from(s)).toEqual([1, 2, 3].flatMap((i) => [2, 3, 4, 5].map((j) => data[i * 10 + j]!)));
    const parts = tf.split(x, [3, 7], 1);
    expect(Array.from(parts[1]!.dataSync())).toEqual([0, 1, 2, 3, 4, 5].flatMap((i) => [3, 4, 5, 6, 7, 8, 9].map((j) => data[i * 10 + j]!)));
    const rows = tf.unstack(x, 0);
    expect(rows[4]!.shape).toEqual([10]);
    expect(Array.from(rows[4]!.dataSync())).toEqual(Array.from(data.subarray(40, 50)));
  });
});
