/**
 * Small dense T×T algebra for attention-map methods, in float64 on the CPU: these matrices are tiny
 * next to the model's own work, and float64 keeps long rollout products from drifting.
 */

/** Mean over heads of a [H, T, T] block (flat), as a T×T float64 matrix. */
export function meanOverHeads(probs: ArrayLike<number>, heads: number, tokens: number): Float64Array {
  const tt = tokens * tokens;
  const out = new Float64Array(tt);
  for (let h = 0; h < heads; h++) {
    const base = h * tt;
    for (let i = 0; i < tt; i++) out[i]! += probs[base + i]!;
  }
  for (let i = 0; i < tt; i++) out[i]! /= heads;
  return out;
}

export function addIdentity(m: Float64Array, n: number): Float64Array {
  const out = Float64Array.from(m);
  for (let i = 0; i < n; i++) out[i * n + i]! += 1;
  return out;
}

/** Divide each row by its sum (the authors' rollout normalisation). */
export function rowNormalise(m: Float64Array, n: number): Float64Array {
  const out = new Float64Array(m.length);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += m[i * n + j]!;
    for (let j = 0; j < n; j++) out[i * n + j] = m[i * n + j]! / s;
  }
  return out;
}

/** a·b for n×n matrices. */
export function matmulSquare(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      const bRow = k * n;
      const oRow = i * n;
      for (let j = 0; j < n; j++) out[oRow + j]! += aik * b[bRow + j]!;
    }
  }
  return out;
}

/**
 * C = M_L · … · M_s: later layers multiply on the left, so row i of C says how token i at the top
 * draws on each input token through layers s..L.
 */
export function rolloutProduct(layers: readonly Float64Array[], n: number, startLayer: number): Float64Array {
  let joint = layers[startLayer]!;
  for (let l = startLayer + 1; l < layers.length; l++) joint = matmulSquare(layers[l]!, joint, n);
  return joint;
}

/**
 * Row i of rolloutProduct(layers, n, startLayer), without the product: e_iᵀ·M_L·…·M_s taken as a
 * row vector from the top layer down, n² per layer instead of n³ (ViT-B/16: 12 × 197² instead of
 * 12 × 197³ multiply-adds).
 */
export function rolloutRow(layers: readonly Float64Array[], n: number, startLayer: number, i: number): Float64Array {
  let v: Float64Array = new Float64Array(n);
  v[i] = 1;
  for (let l = layers.length - 1; l >= startLayer; l--) {
    const m = layers[l]!;
    const next = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const vk = v[k]!;
      if (vk === 0) continue;
      const base = k * n;
      for (let j = 0; j < n; j++) next[j]! += vk * m[base + j]!;
    }
    v = next;
  }
  return v;
}

export function row(m: Float64Array, n: number, i: number): Float64Array {
  return m.slice(i * n, (i + 1) * n);
}
