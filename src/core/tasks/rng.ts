/**
 * Seedable PRNG for the synthetic tasks. Math.random cannot be seeded, and the tasks must regenerate
 * byte-identical samples on any JS engine, so the generator is 32-bit integer arithmetic (Math.imul, >>> 0)
 * whose results the spec pins down exactly. Only normal() goes through Math.log/cos, which the spec lets
 * engines approximate differently in the last bit, so the task generators do not use it.
 */

/** murmur3's 32-bit finaliser: a bijection with full avalanche, so nearby inputs give unrelated outputs. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The seed of sample `index` of a task seeded with `taskSeed`: a hash, not a stream position, so sample i is
 * generated without generating samples 0..i-1 and does not change if they were generated first.
 */
export function sampleSeed(taskSeed: number, index: number): number {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`sample index must be a non-negative integer, got ${index}`);
  if (!Number.isFinite(taskSeed)) throw new RangeError(`task seed must be a finite number, got ${taskSeed}`);
  const lo = index >>> 0;
  // Indices beyond 2^32 must not alias smaller ones.
  const hi = Math.floor(index / 0x100000000) >>> 0;
  let h = fmix32((taskSeed >>> 0) ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(lo, 0xcc9e2d51));
  h = fmix32(h ^ Math.imul(hi + 0x6b43a9b5, 0x1b873593));
  return h;
}

/**
 * FNV-1a over UTF-16 code units, finalised: mixes a task's name into its seed so that tasks sharing a seed
 * (e.g. the 'single' and 'pair' variants) do not share sample streams.
 */
export function hashString(str: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) h = Math.imul(h ^ str.charCodeAt(i), 0x01000193);
  return fmix32(h >>> 0);
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): passes PractRand, 128-bit state, and its
 * counter guarantees a period of at least 2^32 from every seed — mulberry32's single word would make
 * nearby samples' streams far more likely to overlap.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads one 32-bit seed over the four state words, so seeds 0, 1, 2... start far apart.
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      return fmix32(s);
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = 1;
    // The first outputs of sfc32 still correlate with the seed; the reference implementation discards 12.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x100000000;
  }

  /** Uniform integer in [0, n), exactly uniform (rejection sampling), for 1 <= n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new RangeError(`int(n) needs an integer 1..2^32, got ${n}`);
    // Reject the top partial block so every residue is equally likely (matters for the balance guarantees).
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const u = this.nextUint32();
      if (u < limit) return u % n;
    }
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  range(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`range(${lo}, ${hi}) is empty`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError('pick() from an empty array');
    return arr[this.int(arr.length)];
  }

  /** Fisher–Yates, in place; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  /**
   * Standard normal (Box–Muller). No cached spare, so the state is just the four words. Not bit-reproducible
   * across engines (see the file comment); use irwinHall() where bytes must match everywhere.
   */
  normal(): number {
    // 1 - next() is in (0, 1], keeping log() finite.
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Integer noise with mean 0 and standard deviation close to `sigma`: the sum of 4 uniform integers
   * (Irwin–Hall), bell-shaped enough for texture and, unlike normal(), exact integer arithmetic.
   */
  irwinHall(sigma: number): number {
    // Var of one uniform integer on [-k, k] is k(k+1)/3; four of them: 4k(k+1)/3 = sigma^2.
    const k = Math.max(0, Math.round((-1 + Math.sqrt(1 + 3 * sigma * sigma)) / 2));
    const m = 2 * k + 1;
    if (m > 256) {
      let sum = 0;
      for (let i = 0; i < 4; i++) sum += this.int(m) - k;
      return sum;
    }
    // Four terms from one word's bytes (a byte in the biased top block is replaced by a fresh int(m)), since
    // this runs once per pixel and generator calls dominate image generation time.
    const limit = 256 - (256 % m);
    const u = this.nextUint32();
    let sum = 0;
    for (let i = 0; i < 4; i++) {
      const byte = (u >>> (8 * i)) & 0xff;
      sum += (byte < limit ? byte % m : this.int(m)) - k;
    }
    return sum;
  }
}
