import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { GPT2Model } from '../src/core/models/gpt2.js';
import type { TokenInput } from '../src/core/models/types.js';
import { ExplainContext } from '../src/core/context.js';
import { explain } from '../src/core/explain.js';
import { getMethod } from '../src/core/methods/registry.js';
import { getRuleSet } from '../src/core/relevance/rulesets.js';
import { CheckpointError, InputError, UsageError } from '../src/core/errors.js';
import { bpeTokenizerFromFiles, type BpeTokenizer } from '../src/core/text/bpe.js';
import { encodeText, singleTokenId } from '../src/core/text-inputs.js';
import type { TensorToWrite } from '../src/core/io/safetensors.js';
import { referenceLogits, sym, tinyGpt2, writeGpt2Folder, type TinyGpt2 } from './helpers/gpt2-reference.js';
import { relprop } from './helpers/cli.js';
import { batchOf, free, maxAbsDiff, maxAbs } from './helpers/tokens.js';

let tmp: string;
let tiny: TinyGpt2;
let dir: string;
let model: GPT2Model;
let tok: BpeTokenizer;
const A = 266; // ' Paris'
const B = 270; // ' Rome'

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-gpt2-'));
  tiny = tinyGpt2();
  dir = await writeGpt2Folder(path.join(tmp, 'tiny'), tiny);
  const loaded = await loadModel(dir);
  if (!(loaded instanceof GPT2Model)) throw new Error('not a GPT2Model');
  model = loaded;
  tok = model.tokenizer!;
});
afterAll(async () => {
  model?.dispose();
  await fs.rm(tmp, { recursive: true, force: true });
});

const ids = (text: string) => tok.encode(text).ids;

describe('GPT-2 byte-level BPE', () => {
  // Merge ranks are listed in helpers/gpt2-reference.ts; each expectation below was worked by hand.
  const cases: Array<{ text: string; tokens: string[]; offsets: Array<[number, number]>; words: Array<[string, number, number]>; wordIds: number[] }> = [
    {
      // 'he' merges inside 'here' but 'Ġ he' has no merge; ' cat' goes Ġc → at → Ġcat.
      text: 'The cat is here.',
      tokens: ['T', 'he', 'Ġcat', 'Ġ', 'is', 'Ġ', 'he', 'r', 'e', '.'],
      offsets: [[0, 1], [1, 3], [3, 7], [7, 8], [8, 10], [10, 11], [11, 13], [13, 14], [14, 15], [15, 16]],
      words: [['The', 0, 3], ['cat', 4, 7], ['is', 8, 10], ['here', 11, 15], ['.', 15, 16]],
      wordIds: [0, 0, 1, 2, 2, 3, 3, 3, 3, 4],
    },
    {
      // Contraction, non-ASCII (é is two bytes, merged), punctuation, digits (only '12' merges).
      // ' café': 'Ġ c' (rank 4) wins over 'c a' (16), and no 'Ġc a' merge exists, so it stays in pieces.
      text: "Paris's café, 123 the Rome",
      tokens: ['P', 'ar', 'is', "'s", 'Ġc', 'a', 'f', sym('é'), ',', 'Ġ', '12', '3', 'Ġthe', 'ĠRome'],
      offsets: [[0, 1], [1, 3], [3, 5], [5, 7], [7, 9], [9, 10], [10, 11], [11, 12], [12, 13], [13, 14], [14, 16], [16, 17], [17, 21], [21, 26]],
      words: [['Paris', 0, 5], ["'s", 5, 7], ['café', 8, 12], [',', 12, 13], ['123', 14, 17], ['the', 18, 21], ['Rome', 22, 26]],
      wordIds: [0, 0, 0, 1, 2, 2, 2, 2, 3, 4, 4, 4, 5, 6],
    },
    {
      // Without the space, 'café' merges all the way: é, ca, caf, café.
      text: 'café',
      tokens: [sym('café')],
      offsets: [[0, 4]],
      words: [['café', 0, 4]],
      wordIds: [0],
    },
    {
      // Emoji: 4 UTF-8 bytes, 2 UTF-16 units. The first two bytes merge; every byte token of an
      // emoji gets the whole emoji's span.
      text: 'hi 😀😀!',
      tokens: ['h', 'i', 'Ġ', sym([0xf0, 0x9f]), sym([0x98]), sym([0x80]), sym([0xf0, 0x9f]), sym([0x98]), sym([0x80]), '!'],
      offsets: [[0, 1], [1, 2], [2, 3], [3, 5], [3, 5], [3, 5], [5, 7], [5, 7], [5, 7], [7, 8]],
      words: [['hi', 0, 2], ['😀😀!', 3, 8]],
      wordIds: [0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
    },
    {
      // Whitespace: a run before a word leaves its last space to the word; a trailing newline is its own chunk.
      text: 'a  b\n',
      tokens: ['a', 'Ġ', 'Ġ', 'b', 'Ċ'],
      offsets: [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]],
      words: [['a', 0, 1], [' ', 1, 2], ['b', 3, 4], ['\n', 4, 5]],
      wordIds: [0, 1, 2, 2, 3],
    },
    {
      text: '   x',
      tokens: ['ĠĠ', 'Ġ', 'x'],
      offsets: [[0, 2], [2, 3], [3, 4]],
      words: [['  ', 0, 2], ['x', 3, 4]],
      wordIds: [0, 1, 1],
    },
    {
      // The special token is matched whole in the text.
      text: '<|endoftext|>The',
      tokens: ['<|endoftext|>', 'T', 'he'],
      offsets: [[0, 13], [13, 14], [14, 16]],
      words: [['<|endoftext|>', 0, 13], ['The', 13, 16]],
      wordIds: [0, 1, 1],
    },
  ];

  it.each(cases)('encodes $text with hand-checked tokens and offsets', ({ text, tokens, offsets, words, wordIds }) => {
    const e = tok.encode(text);
    expect(e.tokens).toEqual(tokens);
    expect(e.ids).toEqual(tokens.map((t) => tok.tokenToId(t)));
    expect(e.offsets).toEqual(offsets);
    expect(e.words.map((w) => [w.text, w.start, w.end])).toEqual(words);
    expect(e.wordIds).toEqual(wordIds);
    for (const w of e.words) expect(text.slice(w.start, w.end)).toBe(w.text);
    expect(e.special.every((s) => !s)).toBe(true);
    expect(tok.decode(e.ids)).toBe(text);
  });

  it('ids follow the vocabulary: bytes first, then merges, then <|endoftext|>', () => {
    expect(ids('The cat is here.')).toEqual([84, 257, 262, 32, 259, 32, 257, 114, 101, 46]);
    expect(ids(' Paris')).toEqual([266]);
    expect(ids(' Rome')).toEqual([270]);
    expect(tok.endOfText).toBe(281);
    expect(tok.vocabSize).toBe(282);
  });

  it('decode(encode(x)) == x for text with every kind of character', () => {
    const texts = ['naïve 日本語 text', 'flags 🇫🇷 and e\u0301 (combining)', 'tabs\tand\r\nnewlines  \n\n', "it's 3.14 o'clock — ok?", '👩‍👩‍👧 family', ' ', '\u00a0nbsp', 'x'.repeat(300)];
    for (const t of texts) expect(tok.decode(tok.encode(t).ids)).toBe(t);
  });

  it('tokenizer.json (GPT2TokenizerFast) gives the same tokenizer as vocab.json + merges.txt', () => {
    const merges = tiny.vocab.merges.trim().split('\n').slice(1);
    const fast = bpeTokenizerFromFiles({
      tokenizerJson: {
        path: 'tokenizer.json',
        text: JSON.stringify({
          model: { type: 'BPE', vocab: tiny.vocab.vocab, merges: merges.map((m) => m.split(' ')) },
          pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
          added_tokens: [{ id: 281, content: '<|endoftext|>', special: true }],
        }),
      },
    });
    for (const c of cases) expect(fast.encode(c.text)).toEqual(tok.encode(c.text));
  });

  it('truncation keeps the end of the text for next-token prediction, with a warning', () => {
    const warnings: string[] = [];
    const e = tok.encode('The cat is here.', { maxLength: 4, truncation: 'left', onWarning: (m) => warnings.push(m) });
    expect(e.tokens).toEqual(['he', 'r', 'e', '.']);
    expect(e.words.map((w) => w.text)).toEqual(['here', '.']);
    expect(e.wordIds).toEqual([0, 0, 0, 1]);
    expect(e.truncated).toBe(true);
    expect(warnings[0]).toMatch(/10 tokens.*kept the last 4/);
    expect(() => tok.encode('')).toThrow(InputError);
  });
});

describe('GPT-2 forward pass', () => {
  it('logits at every position equal a float64 reference forward to 1e-4', () => {
    const seq = ids("The cat is here. Paris's café");
    expect(seq.length).toBeLessThanOrEqual(16);
    const input = batchOf(seq);
    const out = model.positionLogits(input);
    const got = out.dataSync();
    const ref = referenceLogits(tiny, seq);
    const V = model.numClasses;
    expect(out.shape).toEqual([seq.length, V]);
    const refFlat = ref.flatMap((r) => Array.from(r));
    expect(maxAbs(refFlat)).toBeGreaterThan(1); // the check means something
    expect(maxAbsDiff(got, refFlat)).toBeLessThan(1e-4);
    // The explained prediction is the last position's, in forward and predict alike.
    const fwd = model.forward(input);
    expect(maxAbsDiff(fwd.logits.dataSync(), ref[seq.length - 1]!)).toBeLessThan(1e-4);
    const p = model.predict(input);
    expect(maxAbsDiff(p.dataSync(), ref[seq.length - 1]!)).toBeLessThan(1e-4);
    // The all-heads 3-D path (training) applies the same causal mask.
    const batched = model.forward(input, { batchedAttention: true });
    expect(maxAbsDiff(batched.logits.dataSync(), ref[seq.length - 1]!)).toBeLessThan(1e-4);
    tf.dispose([out, p, ...tensors(fwd), ...tensors(batched)]);
    free(input);
  });

  it('causal: changing later tokens never changes an earlier position\'s logits', () => {
    const a = ids('The cat is here.');
    const b = [...a.slice(0, 4), ...ids(' Rome, 123!!').slice(0, a.length - 4)];
    expect(b.length).toBe(a.length);
    const input = batchOf(a, b);
    const out = model.positionLogits(input);
    const V = model.numClasses;
    const T = a.length;
    const rows = out.dataSync();
    for (let t = 0; t < T; t++) {
      const ra = rows.subarray(t * V, (t + 1) * V);
      const rb = rows.subarray((T + t) * V, (T + t + 1) * V);
      if (t < 4) expect(maxAbsDiff(ra, rb)).toBe(0);
      else expect(maxAbsDiff(ra, rb)).toBeGreaterThan(1e-3);
    }
    // And the attention of an earlier token puts exactly 0 on later ones.
    const fwd = model.forward(input);
    const probs = fwd.attention[1]!.probs.dataSync();
    for (let h = 0; h < model.heads; h++) for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) expect(probs[(h * T + i) * T + j]).toBe(0);
    tf.dispose([out, ...tensors(fwd)]);
    free(input);
  });

  it('a right-padded batch predicts each sample\'s next token after its own last token', () => {
    const a = ids("Paris's café, 123 the Rome");
    const b = ids('The cat');
    const input = batchOf(a, b);
    const logits = model.predict(input);
    const V = model.numClasses;
    const got = logits.dataSync();
    expect(maxAbsDiff(got.subarray(0, V), referenceLogits(tiny, a).at(-1)!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(got.subarray(V), referenceLogits(tiny, b).at(-1)!)).toBeLessThan(1e-4);
    tf.dispose(logits);
    free(input);
  });

  it('labels are the tokens\' texts; an empty sample and foreign ids are input errors', () => {
    expect(model.labels[266]).toBe(' Paris');
    expect(model.labels[tok.tokenToId('Ċ')!]).toBe('\n');
    expect(model.labels[0xf0]).toBe('<0xF0>');
    expect(model.labels[281]).toBe('<|endoftext|>');
    const empty: TokenInput = { kind: 'tokens', ids: tf.tensor2d([1, 2], [1, 2], 'int32'), attentionMask: tf.tensor2d([0, 0], [1, 2], 'int32') };
    expect(() => model.predict(empty)).toThrow(/no tokens/);
    free(empty);
    const foreign = batchOf([1, 999]);
    expect(() => model.predict(foreign)).toThrow(/999 is not in/);
    free(foreign);
  });
});

function tensors(fwd: ReturnType<GPT2Model['forward']>) {
  const out: tf.Tensor[] = [];
  const walk = (v: unknown) => {
    if (v instanceof tf.Tensor) out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(walk);
  };
  walk(fwd);
  return [...new Set(out)];
}

describe('GPT-2 checkpoints', () => {
  async function lastLogits(folder: string, seq: number[]) {
    const m = await loadModel(folder);
    const input = batchOf(seq);
    const out = m.predict(input);
    const v = Array.from(out.dataSync());
    tf.dispose(out);
    free(input);
    m.dispose();
    return v;
  }
  const prefixed = () => Object.fromEntries(Object.entries(tiny.tensors).map(([k, v]) => [`transformer.${k}`, v]));

  it('GPT2LMHeadModel names (transformer. prefix) with lm_head equal to wte load, and the stored causal-mask buffers are ignored silently', async () => {
    const T = 16;
    const buffers: Record<string, TensorToWrite> = {};
    for (let l = 0; l < 2; l++) {
      buffers[`transformer.h.${l}.attn.bias`] = { shape: [1, 1, T, T], data: Float32Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0)) };
      buffers[`transformer.h.${l}.attn.masked_bias`] = { shape: [], data: Float32Array.of(-1e4) };
    }
    const folder = await writeGpt2Folder(path.join(tmp, 'lm-head'), tiny, { ...prefixed(), ...buffers, 'lm_head.weight': tiny.tensors['wte.weight']! });
    const warnings: string[] = [];
    const m = await loadModel(folder, { warn: (w) => warnings.push(w) });
    m.dispose();
    expect(warnings).toEqual([]);
    const seq = ids('The cat is here.');
    expect(maxAbsDiff(await lastLogits(folder, seq), referenceLogits(tiny, seq).at(-1)!)).toBeLessThan(1e-4);
  });

  it('the tokenizer is optional (labels are then ids; text needs it), but vocab.json without merges.txt is an error', async () => {
    const folder = path.join(tmp, 'no-tokenizer');
    await writeGpt2Folder(folder, tiny);
    await fs.rm(path.join(folder, 'vocab.json'));
    await fs.rm(path.join(folder, 'merges.txt'));
    const m = await loadModel(folder);
    expect(m.labels[266]).toBe('token 266');
    expect(() => encodeText(m as GPT2Model, 'The cat')).toThrow(/has no tokenizer \(vocab\.json \+ merges\.txt, or tokenizer\.json\); pass token ids with --ids/);
    m.dispose();
    await fs.writeFile(path.join(folder, 'vocab.json'), JSON.stringify(tiny.vocab.vocab));
    await expect(loadModel(folder)).rejects.toThrow(/no-tokenizer: has vocab\.json but no merges\.txt/);
  });

  it('an untied lm_head is refused, naming both tensors', async () => {
    const wte = tiny.tensors['wte.weight']!;
    const other = Float32Array.from(wte.data, (v, i) => (i === 7 ? v + 0.5 : v));
    const folder = await writeGpt2Folder(path.join(tmp, 'untied'), tiny, { ...prefixed(), 'lm_head.weight': { shape: wte.shape, data: other } });
    await expect(loadModel(folder)).rejects.toThrow(/'lm_head.weight' differs from 'transformer.wte.weight'.*untied/);
  });

  it('a wrong shape, a missing tensor, a truncated file and a bad config are CheckpointErrors naming the tensor and the file', async () => {
    const w = tiny.tensors['h.1.attn.c_attn.weight']!;
    // nn.Linear's [out, in] instead of Conv1D's [in, out].
    let folder = await writeGpt2Folder(path.join(tmp, 'transposed'), tiny, { ...tiny.tensors, 'h.1.attn.c_attn.weight': { shape: [96, 32], data: w.data } });
    let err = await loadModel(folder).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/model\.safetensors: tensor 'h\.1\.attn\.c_attn\.weight' has shape \[96, 32\] but .*config\.json implies \[32, 96\]/);

    const { ['h.0.mlp.c_fc.bias']: _gone, ...rest } = tiny.tensors;
    folder = await writeGpt2Folder(path.join(tmp, 'missing'), tiny, rest);
    err = await loadModel(folder).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/tensor 'h\.0\.mlp\.c_fc\.bias' is missing.*\[128\]/);

    folder = await writeGpt2Folder(path.join(tmp, 'truncated'), tiny);
    const file = path.join(folder, 'model.safetensors');
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 100));
    err = await loadModel(folder).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/model\.safetensors.*tensor '.*'/);

    folder = await writeGpt2Folder(path.join(tmp, 'relu'), tiny, tiny.tensors, { ...tiny.config, activation_function: 'relu' });
    await expect(loadModel(folder)).rejects.toThrow(/config\.json: activation_function 'relu' is not supported/);
    folder = await writeGpt2Folder(path.join(tmp, 'heads'), tiny, tiny.tensors, { ...tiny.config, n_head: 5 });
    await expect(loadModel(folder)).rejects.toThrow(/n_embd 32 is not divisible by 5 heads/);
  });
});

describe('explaining the next token', () => {
  const text = 'The cat is here. Paris';
  const METHODS = ['saliency', 'gradient-input', 'rollout', 'raw-attention', 'attention-gradcam', 'integrated-gradients', 'occlusion'];

  it('every gradient and attention method runs with a target token and with a contrastive target, leaking no tensor', async () => {
    const { input } = encodeText(model, text);
    const T = input.ids.shape[1];
    for (const method of METHODS) {
      const before = tf.memory().numTensors;
      const [plain] = await explain(model, input, { method, target: A, steps: 8 });
      if (!getMethod(method).targetDependent) {
        // A map that does not depend on the target explains no logit(A) − logit(B): refused, not ignored (issue 15, item 11).
        await expect(explain(model, input, { method, target: A, contrast: B, steps: 8 }), method).rejects.toThrow(/does not apply to .*does not depend on the target class/);
        expect(tf.memory().numTensors, method).toBe(before);
        expect(plain!.map.every(Number.isFinite), method).toBe(true);
        continue;
      }
      const [contrast] = await explain(model, input, { method, target: A, contrast: B, steps: 8 });
      expect(tf.memory().numTensors, method).toBe(before);
      for (const e of [plain!, contrast!]) {
        expect(e.shape, method).toEqual([T]);
        expect(e.space).toBe('token');
        expect(e.map.every(Number.isFinite), method).toBe(true);
        expect(e.target).toBe(A);
      }
      expect(contrast!.contrast).toBe(B);
      expect(plain!.contrast).toBeUndefined();
      expect(maxAbsDiff(plain!.map, contrast!.map), method).toBeGreaterThan(1e-6);
    }
    free(input);
  });

  it('the contrastive gradient is grad(A) − grad(B), for the input and for every attention map', () => {
    const { input } = encodeText(model, text);
    const ctx = new ExplainContext(model, input);
    const both = new ExplainContext(model, input, { contrast: B });
    const gA = ctx.gradients([A]);
    const gB = ctx.gradients([B]);
    const gAB = both.gradients(both.resolveTargets(A));
    const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.sub(x, y).dataSync());
    const scale = maxAbs(gA.input.dataSync());
    expect(scale).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(gAB.input.dataSync(), diff(gA.input, gB.input))).toBeLessThan(1e-5 * scale);
    gAB.attention.forEach((g, l) => {
      expect(maxAbsDiff(g.dataSync(), diff(gA.attention[l]!, gB.attention[l]!))).toBeLessThan(1e-5 * maxAbs(gA.attention[l]!.dataSync()));
    });
    expect(() => both.resolveTargets(B)).toThrow(/contrast class 270 is the target itself/);
    expect(() => both.relevance(getRuleSet('paper'), [A])).toThrow(UsageError);
    ctx.dispose();
    both.dispose();
    free(input);
  });

  it('the input gradient matches finite differences of the float64 reference', () => {
    const seq = ids(text);
    const { input } = encodeText(model, text);
    const ctx = new ExplainContext(model, input, { contrast: B });
    const grad = ctx.gradients([A]).input.dataSync();
    const D = model.config.dim;
    const wte = tiny.tensors['wte.weight']!.data;
    const words = seq.map((id) => Float64Array.from(wte.subarray(id * D, (id + 1) * D)));
    const score = (w: Float64Array[]) => {
      const last = referenceLogits(tiny, seq, w).at(-1)!;
      return last[A]! - last[B]!;
    };
    const h = 1e-5;
    for (const [t, i] of [[0, 3], [2, 17], [seq.length - 1, 5], [seq.length - 1, 30]] as const) {
      const up = words.map((r) => Float64Array.from(r));
      const down = words.map((r) => Float64Array.from(r));
      up[t]![i]! += h;
      down[t]![i]! -= h;
      const fd = (score(up) - score(down)) / (2 * h);
      expect(Math.abs(grad[t * D + i]! - fd)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
    }
    ctx.dispose();
    free(input);
  });

  it('attention maps read the last token\'s row; the map keeps that token', async () => {
    const { input } = encodeText(model, text);
    const T = input.ids.shape[1];
    const ctx = new ExplainContext(model, input);
    expect(ctx.explainedRows()).toEqual([T - 1]);
    const probs = ctx.attention(model.depth - 1)[0]!;
    const expected = Array.from({ length: T }, (_, j) => {
      let s = 0;
      for (let h = 0; h < model.heads; h++) s += probs[(h * T + T - 1) * T + j]!;
      return s / model.heads;
    });
    const [raw] = await getMethod('raw-attention').attribute(ctx, [A], {});
    expect(maxAbsDiff(raw!.map, expected)).toBeLessThan(1e-6);
    const [roll] = await getMethod('rollout').attribute(ctx, [A], {});
    // A rollout row of row-stochastic matrices sums to 1 (nothing zeroed: the last token is a word).
    expect(roll!.map.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
    ctx.dispose();
    free(input);
  });

  it('integrated gradients are complete for the contrast: Σ map = (y_A − y_B)(x) − (y_A − y_B)(0)', async () => {
    const { input } = encodeText(model, text);
    // The random model is sharp along the path: 32 points are 10 % off, 128 converge (to 1e-5 here).
    const [e] = await explain(model, input, { method: 'integrated-gradients', target: A, contrast: B, steps: 128 });
    const zero = tf.zeros([input.ids.shape[1], model.config.dim]);
    const fwd = model.forward(input, { inputValue: zero });
    const l0 = fwd.logits.dataSync();
    const expected = e!.logits[A]! - e!.logits[B]! - (l0[A]! - l0[B]!);
    const sum = e!.map.reduce((a, v) => a + v, 0);
    expect(Math.abs(sum - expected)).toBeLessThan(1e-3 * Math.abs(expected));
    tf.dispose([zero, ...tensors(fwd)]);
    free(input);
  });

  it('occlusion removes each token in turn and scores the drop of y_A − y_B', async () => {
    const seq = ids('The cat is');
    const input = batchOf(seq);
    const [e] = await explain(model, input, { method: 'occlusion', target: A, contrast: B });
    expect(e!.options.occlusion).toBe('remove');
    const score = (s: number[]) => {
      const r = referenceLogits(tiny, s).at(-1)!;
      return r[A]! - r[B]!;
    };
    seq.forEach((_, pos) => {
      const without = [...seq.slice(0, pos), ...seq.slice(pos + 1)];
      expect(e!.map[pos]).toBeCloseTo(score(seq) - score(without), 3);
    });
    await expect(explain(model, input, { method: 'occlusion', target: A, occlusion: 'mask' })).rejects.toThrow(/no \[MASK\]/);
    free(input);
  });

  it('a padded batch gives each sample the map it gets alone', async () => {
    const a = ids("Paris's café, 123 the Rome");
    const b = ids('The cat is');
    const both = batchOf(a, b);
    for (const method of ['saliency', 'gradient-input', 'raw-attention', 'rollout', 'attention-gradcam', 'occlusion']) {
      const contrastive = getMethod(method).targetDependent;
      const batched = await explain(model, both, { method, target: [A, B], ...(contrastive ? { contrast: [B, A] } : {}) });
      for (const [k, seq] of [a, b].entries()) {
        const single = batchOf(seq);
        const [alone] = await explain(model, single, { method, target: k === 0 ? A : B, ...(contrastive ? { contrast: k === 0 ? B : A } : {}) });
        const got = batched[k]!.map.subarray(0, seq.length);
        expect(maxAbsDiff(got, alone!.map), `${method} sample ${k}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(alone!.map)));
        free(single);
      }
    }
    free(both);
  });

  it('relevance methods explain the next token (test/gpt2-relevance.test.ts); the paper\'s rules refuse a contrast', async () => {
    const { input } = encodeText(model, text);
    for (const method of ['transformer-attribution', 'lrp', 'partial-lrp']) {
      const [e] = await explain(model, input, { method, target: A });
      expect(e!.ledger![0]!.layer).toBe('lm_head');
      expect(e!.map.every(Number.isFinite)).toBe(true);
    }
    // transformer-attribution and lrp default to the paper's rules, partial-lrp to the baseline's (linear in R).
    await expect(explain(model, input, { method: 'lrp', target: A, contrast: B })).rejects.toThrow(/rule set 'paper' cannot explain a contrastive target/);
    const [partial] = await explain(model, input, { method: 'partial-lrp', target: A, contrast: B });
    expect(partial!.contrast).toBe(B);
    free(input);
  });

  it('a chosen position (explainAt, --position): the same maps as the text cut after it, for gradient, relevance, attention and occlusion methods', async () => {
    const seq = ids("The cat is here. Paris's café");
    const at = 4;
    const whole: TokenInput = { ...batchOf(seq), explainAt: [at] };
    const cut = batchOf(seq.slice(0, at + 1));
    for (const method of ['gradient-input', 'transformer-attribution', 'attnlrp', 'cp-lrp', 'rollout', 'attention-gradcam', 'occlusion']) {
      const [a] = await explain(model, whole, { method, target: A });
      const [b] = await explain(model, cut, { method, target: A });
      // The same numbers from products of another length: float32 rounding, relative to their size.
      const scale = (x: ArrayLike<number>) => 1e-5 * Math.max(1, ...Array.from(x, Math.abs));
      expect(maxAbsDiff(a!.logits, b!.logits), method).toBeLessThan(scale(b!.logits));
      expect(maxAbsDiff(a!.map.subarray(0, at + 1), b!.map), method).toBeLessThan(scale(b!.map));
      expect(Array.from(a!.map.subarray(at + 1)).every((v) => v === 0), method).toBe(true);
    }
    free(whole);
    free(cut);
  });

  it('tokens given as text resolve to one id, or say how many tokens they are', () => {
    expect(singleTokenId(model, ' Paris', '--target-token')).toBe(A);
    expect(() => singleTokenId(model, ' here', '--target-token')).toThrow('--target-token " here" is 4 tokens (" " + "he" + "r" + "e"), not one');
  });
});

describe('relprop explain on a GPT-2 folder', () => {
  it('--text prints the top next tokens, the ledger and the token table (transformer attribution by default)', async () => {
    const r = await relprop('explain', '--model', dir, '--text', 'The cat is here. Paris');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/method  transformer-attribution/);
    expect(r.stdout).toMatch(/ledger  \d+ boundaries; relevance 1\.00000 at lm_head/);
    expect(r.stdout).toMatch(/top next tokens:\n( +\d+ +[\d.]+ % +".*"\n){5}/);
    expect(r.stdout).toMatch(/tokens:\n +0 +"T"/);
  });

  it('--target-token and --contrast-token explain logit(A) − logit(B); --json carries both', async () => {
    const r = await relprop('explain', '--model', dir, '--text', 'The cat is here.', '--method', 'saliency', '--target-token', ' Paris', '--contrast-token', ' Rome', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ target: A, targetLabel: ' Paris', contrast: B, contrastLabel: ' Rome' });
    expect(out.map.shape).toEqual([10]);
    expect(out.words.map((w: { text: string }) => w.text)).toEqual(['The', 'cat', 'is', 'here', '.']);
    const s = await relprop('explain', '--model', dir, '--text', 'The cat is here.', '--method', 'gradient-input', '--target-token', ' Paris', '--contrast-token', ' Rome');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/contrast 270 \(" Rome"\): the map explains logit\(" Paris"\) − logit\(" Rome"\)/);
    const t = await relprop('explain', '--model', dir, '--text', 'The cat is here.', '--method', 'rollout', '--target-token', ' Paris', '--contrast-token', ' Rome');
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/--contrast-token does not apply to 'rollout'/);
  });

  it('--ids takes token ids (GPT-2 has no padding id: every id is a token)', async () => {
    const r = await relprop('explain', '--model', dir, '--ids', '84,257,262,281', '--method', 'raw-attention', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toEqual(['T', 'he', 'Ġcat', '<|endoftext|>']);
    expect(out.map.shape).toEqual([4]);
    expect(out.map.data.reduce((a: number, v: number) => a + v, 0)).toBeCloseTo(1, 5);
  });

  it('a --target-token that is not one token, and a contrast under the paper\'s rules, are clear errors', async () => {
    let r = await relprop('explain', '--model', dir, '--text', 'The cat', '--method', 'saliency', '--target-token', ' here');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--target-token " here" is 4 tokens/);
    r = await relprop('explain', '--model', dir, '--text', 'The cat', '--method', 'lrp', '--contrast-token', ' Rome');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rule set 'paper' cannot explain a contrastive target.*Use --rules baseline, attnlrp or cp-lrp/);
    r = await relprop('explain', '--model', dir, '--text', 'The cat', '--method', 'lrp', '--rules', 'attnlrp', '--target-token', ' Paris', '--contrast-token', ' Rome', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    // The logit start of the contrast: relevance z_A − z_B enters the head.
    expect(out.ledger[0].relevanceIn).toBeCloseTo(out.logits[A] - out.logits[B], 4);
  });
});
