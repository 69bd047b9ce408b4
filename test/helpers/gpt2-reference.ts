/**
 * A tiny GPT-2 for tests, written in HuggingFace's layout, and an independent forward pass in plain
 * JS float64 (no tfjs) to compare the model with: Conv1D weights [in, out], pre-LN blocks, causal
 * softmax attention, gelu_new, tied LM head. Plus a hand-made byte-level BPE vocabulary.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../src/core/io/safetensors.js';
import { bytesToUnicode } from '../../src/core/text/bpe.js';

// ---------------------------------------------------------------------------------------------
// Vocabulary

const BYTE = bytesToUnicode();

/** A text (or raw bytes) as byte-level BPE symbols: 'é' → 'Ã©', ' ' → 'Ġ'. */
export function sym(piece: string | readonly number[]): string {
  const bytes = typeof piece === 'string' ? new TextEncoder().encode(piece) : piece;
  return Array.from(bytes, (b) => BYTE[b]!).join('');
}

/**
 * Merges in rank order, as pieces of text. The 256 byte symbols come first in the vocabulary (in
 * byte order), then each merge's result, then '<|endoftext|>'.
 */
export const MERGES: ReadonlyArray<readonly [string | number[], string | number[]]> = [
  [' ', 't'], // 0: Ġt
  ['h', 'e'], // 1: he
  [' t', 'he'], // 2: Ġthe
  ['i', 's'], // 3: is
  [' ', 'c'], // 4: Ġc
  ['a', 't'], // 5: at
  [' c', 'at'], // 6: Ġcat
  [' ', 'P'], // 7: ĠP
  ['a', 'r'], // 8: ar
  [' P', 'ar'], // 9: ĠPar
  [' Par', 'is'], // 10: ĠParis
  [' ', 'R'], // 11: ĠR
  ['o', 'm'], // 12: om
  [' R', 'om'], // 13: ĠRom
  [' Rom', 'e'], // 14: ĠRome
  [[0xc3], [0xa9]], // 15: é
  ['c', 'a'], // 16: ca
  ['ca', 'f'], // 17: caf
  ['caf', 'é'], // 18: café
  ['1', '2'], // 19: 12
  ["'", 's'], // 20: 's
  [' ', ' '], // 21: ĠĠ
  [[0xf0], [0x9f]], // 22: the first two bytes of most emoji
  [' ', 'caf'], // 23: Ġcaf
  [' caf', 'é'], // 24: Ġcafé
];

export interface TinyVocab {
  readonly vocab: Record<string, number>;
  /** merges.txt content. */
  readonly merges: string;
  readonly size: number;
  readonly endOfText: number;
}

export function tinyVocab(): TinyVocab {
  const vocab: Record<string, number> = {};
  BYTE.forEach((c, b) => (vocab[c] = b));
  const lines = ['#version: 0.2'];
  for (const [a, b] of MERGES) {
    const [x, y] = [sym(a), sym(b)];
    lines.push(`${x} ${y}`);
    if (vocab[x + y] === undefined) vocab[x + y] = Object.keys(vocab).length;
  }
  const endOfText = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = endOfText;
  return { vocab, merges: lines.join('\n') + '\n', size: endOfText + 1, endOfText };
}

// ---------------------------------------------------------------------------------------------
// Weights

export interface TinyGpt2Options {
  readonly dim?: number;
  readonly depth?: number;
  readonly heads?: number;
  readonly positions?: number;
  readonly seed?: number;
}

export interface TinyGpt2 {
  readonly config: Record<string, unknown>;
  /** HF GPT2Model names (no prefix, no lm_head). */
  readonly tensors: Record<string, TensorToWrite>;
  readonly vocab: TinyVocab;
}

/** mulberry32 → Box–Muller normals. */
function normals(seed: number): (std: number) => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (std) => std * Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Random weights, large enough that the logits differ clearly between tokens and positions (a
 * trained GPT-2's 0.02 would make every next-token distribution nearly flat at this size).
 */
export function tinyGpt2(options: TinyGpt2Options = {}): TinyGpt2 {
  const D = options.dim ?? 32;
  const L = options.depth ?? 2;
  const H = options.heads ?? 4;
  const P = options.positions ?? 16;
  const vocab = tinyVocab();
  const V = vocab.size;
  const rand = normals(options.seed ?? 1);
  const t = (shape: number[], std: number, mean = 0): TensorToWrite => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float32Array.from({ length: n }, () => mean + rand(std)) };
  };
  const tensors: Record<string, TensorToWrite> = {
    'wte.weight': t([V, D], 0.5),
    'wpe.weight': t([P, D], 0.3),
    'ln_f.weight': t([D], 0.1, 1),
    'ln_f.bias': t([D], 0.1),
  };
  for (let l = 0; l < L; l++) {
    const h = `h.${l}`;
    Object.assign(tensors, {
      [`${h}.ln_1.weight`]: t([D], 0.1, 1),
      [`${h}.ln_1.bias`]: t([D], 0.1),
      [`${h}.attn.c_attn.weight`]: t([D, 3 * D], 0.4),
      [`${h}.attn.c_attn.bias`]: t([3 * D], 0.1),
      [`${h}.attn.c_proj.weight`]: t([D, D], 0.2),
      [`${h}.attn.c_proj.bias`]: t([D], 0.05),
      [`${h}.ln_2.weight`]: t([D], 0.1, 1),
      [`${h}.ln_2.bias`]: t([D], 0.1),
      [`${h}.mlp.c_fc.weight`]: t([D, 4 * D], 0.3),
      [`${h}.mlp.c_fc.bias`]: t([4 * D], 0.1),
      [`${h}.mlp.c_proj.weight`]: t([4 * D, D], 0.1),
      [`${h}.mlp.c_proj.bias`]: t([D], 0.05),
    });
  }
  const config = {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: V,
    n_embd: D,
    n_layer: L,
    n_head: H,
    n_positions: P,
    n_inner: null,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
    bos_token_id: vocab.endOfText,
    eos_token_id: vocab.endOfText,
  };
  return { config, tensors, vocab };
}

/** A model folder: config.json, model.safetensors, vocab.json and merges.txt. */
export async function writeGpt2Folder(dir: string, model: TinyGpt2, tensors: Record<string, TensorToWrite> = model.tensors, config: Record<string, unknown> = model.config): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(model.vocab.vocab));
  await fs.writeFile(path.join(dir, 'merges.txt'), model.vocab.merges);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// The reference forward pass, float64

type Mat = Float64Array[];

function param(model: TinyGpt2, name: string): Float32Array {
  const t = model.tensors[name];
  if (!t) throw new Error(`no tensor ${name}`);
  return t.data;
}

/** x [T][in] · W (row-major [in, out]) + b. */
function conv1d(x: Mat, w: Float32Array, b: Float32Array, out: number): Mat {
  return x.map((row) => {
    const y = Float64Array.from(b);
    row.forEach((v, i) => {
      for (let o = 0; o < out; o++) y[o]! += v * w[i * out + o]!;
    });
    return y;
  });
}

function layerNorm(x: Mat, g: Float32Array, b: Float32Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    const mean = row.reduce((a, v) => a + v, 0) / n;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * g[i]! + b[i]!);
  });
}

const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/**
 * Next-token logits after every position of one sequence, [T][V]: HF's GPT2LMHeadModel on
 * `ids`, computed without tfjs. `words` may replace the token embeddings ([T][D]).
 */
export function referenceLogits(model: TinyGpt2, ids: readonly number[], words?: Mat): Mat {
  const c = model.config as { n_embd: number; n_layer: number; n_head: number; vocab_size: number; layer_norm_epsilon: number };
  const D = c.n_embd;
  const H = c.n_head;
  const d = D / H;
  const V = c.vocab_size;
  const eps = c.layer_norm_epsilon;
  const wte = param(model, 'wte.weight');
  const wpe = param(model, 'wpe.weight');
  const T = ids.length;
  let h: Mat = ids.map((id, t) => Float64Array.from({ length: D }, (_, i) => (words ? words[t]![i]! : wte[id * D + i]!) + wpe[t * D + i]!));
  for (let l = 0; l < c.n_layer; l++) {
    const p = (n: string) => param(model, `h.${l}.${n}`);
    const a = layerNorm(h, p('ln_1.weight'), p('ln_1.bias'), eps);
    const qkv = conv1d(a, p('attn.c_attn.weight'), p('attn.c_attn.bias'), 3 * D);
    const ctx: Mat = Array.from({ length: T }, () => new Float64Array(D));
    for (let head = 0; head < H; head++) {
      const q = (t: number, k: number) => qkv[t]![head * d + k]!;
      const key = (t: number, k: number) => qkv[t]![D + head * d + k]!;
      const val = (t: number, k: number) => qkv[t]![2 * D + head * d + k]!;
      for (let i = 0; i < T; i++) {
        // Causal: only j ≤ i.
        const scores = Array.from({ length: i + 1 }, (_, j) => {
          let s = 0;
          for (let k = 0; k < d; k++) s += q(i, k) * key(j, k);
          return s / Math.sqrt(d);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let j = 0; j <= i; j++) for (let k = 0; k < d; k++) ctx[i]![head * d + k]! += (e[j]! / z) * val(j, k);
      }
    }
    const attnOut = conv1d(ctx, p('attn.c_proj.weight'), p('attn.c_proj.bias'), D);
    h = h.map((row, t) => row.map((v, i) => v + attnOut[t]![i]!));
    const m = layerNorm(h, p('ln_2.weight'), p('ln_2.bias'), eps);
    const f = conv1d(m, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), 4 * D).map((row) => row.map(geluNew));
    const mlpOut = conv1d(f, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), D);
    h = h.map((row, t) => row.map((v, i) => v + mlpOut[t]![i]!));
  }
  const final = layerNorm(h, param(model, 'ln_f.weight'), param(model, 'ln_f.bias'), eps);
  // Tied head: logits = h · wteᵀ.
  return final.map((row) => Float64Array.from({ length: V }, (_, v) => row.reduce((a, x, i) => a + x * wte[v * D + i]!, 0)));
}
