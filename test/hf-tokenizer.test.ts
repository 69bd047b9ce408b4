import { describe, it, expect } from 'vitest';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HfTokenizer, hfTokenizerFromFiles, loadHfTokenizer } from '../src/core/text/hf-tokenizer.js';
import type { Encoding } from '../src/core/text/tokenizer.js';
import { loadModelTokenizer } from '../src/core/text-inputs.js';
import { CheckpointError } from '../src/core/errors.js';
import { loadModel } from '../src/core/models/load.js';
import { encodeText } from '../src/core/text-inputs.js';
import { BertModel } from '../src/core/models/bert.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/core/io/safetensors.js';
import { BERT_DIR, disposeTokens } from './helpers/bert.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tokenizers');

interface Case {
  name: string;
  text: string;
  ids: number[];
  tokens?: string[];
  /** false for the suite's cases encoded without the template (added tokens typed in the text). */
  addSpecialTokens?: boolean;
}
const casesOf = (name: string): Case[] => (JSON.parse(readFileSync(path.join(FIX, name, 'cases.json'), 'utf8')) as { cases: Case[] }).cases;

async function load(name: string): Promise<HfTokenizer> {
  const t = await loadHfTokenizer(path.join(FIX, name));
  if (!t) throw new Error(`no tokenizer.json in ${name}`);
  return t;
}

// GPT-2's bytes_to_unicode, inverted, written out again here so the check does not lean on the code it checks.
const SYMBOL_BYTE = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const m = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) m.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  return m;
})();

/** A vocabulary token's bytes: byte-level symbols, or ▁ as a space and <0xNN> as that byte. */
function tokenBytes(token: string, byteLevel: boolean): number[] {
  if (byteLevel) return [...token].map((c) => SYMBOL_BYTE.get(c)!);
  const m = /^<0x([0-9A-F]{2})>$/.exec(token);
  if (m) return [parseInt(m[1]!, 16)];
  return [...new TextEncoder().encode(token.replaceAll('\u2581', ' '))];
}

/**
 * Offsets are exact: every token decodes to its slice of the text, modulo a leading space the
 * tokenizer inserted (Metaspace's prepend, which covers no character) and ▁ standing for a space.
 * Tokens whose spans overlap (the bytes of one character split across tokens, each given the whole
 * character as HF does) are checked together: their bytes decode to the union of their slices.
 */
function expectExactOffsets(e: Encoding, text: string, byteLevel: boolean, normalize: (s: string) => string = (s) => s) {
  let last = 0;
  let t = 0;
  while (t < e.ids.length) {
    if (e.special[t]) {
      t++;
      continue;
    }
    const [s] = e.offsets[t]!;
    let end = e.offsets[t]![1];
    expect(s).toBeGreaterThanOrEqual(last);
    expect(end).toBeGreaterThanOrEqual(s);
    expect(end).toBeLessThanOrEqual(text.length);
    const bytes = tokenBytes(e.tokens[t]!, byteLevel);
    let u = t + 1;
    while (u < e.ids.length && !e.special[u] && e.offsets[u]![0] < end) {
      bytes.push(...tokenBytes(e.tokens[u]!, byteLevel));
      end = Math.max(end, e.offsets[u]![1]);
      u++;
    }
    const decoded = new TextDecoder().decode(Uint8Array.from(bytes));
    const raw = normalize(text.slice(s, end));
    const slice = byteLevel ? raw : raw.replaceAll('\u2581', ' ');
    if (decoded !== slice) expect(decoded, `token ${t} ${JSON.stringify(e.tokens[t])} at [${s}, ${end}]`).toBe(' ' + slice);
    last = s;
    t = u;
  }
}

describe('tokenizer.json of real checkpoints: ids as HF Python gives them (tokenizers.js suite)', () => {
  const kinds: Array<[string, boolean, (s: string) => string]> = [
    ['llama2', false, (s) => s],
    ['llama3', true, (s) => s],
    ['qwen2', true, (s) => s.normalize('NFC')],
  ];
  for (const [name, byteLevel, normalize] of kinds) {
    it(`${name}: every case's ids (template included) and tokens, with exact offsets`, async () => {
      const tok = await load(name);
      expect(tok.byteLevel).toBe(byteLevel);
      const cases = casesOf(name);
      expect(cases.length).toBeGreaterThan(20);
      for (const c of cases) {
        const e = tok.encode(c.text, { addSpecialTokens: c.addSpecialTokens ?? true });
        expect(e.ids, c.name).toEqual(c.ids);
        if (c.tokens) expect(e.tokens.filter((_, i) => !e.special[i]), c.name).toEqual(c.tokens);
        expectExactOffsets(e, c.text, byteLevel, normalize);
        // Every token that is not the template's belongs to a word, and a word's text is its slice.
        e.wordIds.forEach((w, i) => expect(w === null).toBe(e.special[i]));
        for (const w of e.words) expect(c.text.slice(w.start, w.end)).toBe(w.text);
      }
    });
  }

  it('added tokens typed in the text are matched (normalised or not), are words of their own and not special', async () => {
    const l2 = await load('llama2');
    const e = l2.encode('Hey </s>. how are you', { addSpecialTokens: false });
    expect(e.ids).toEqual([18637, 2, 29889, 920, 526, 366]);
    expect(e.offsets.slice(0, 3)).toEqual([[0, 3], [4, 8], [8, 9]]);
    expect(e.special.every((x) => !x)).toBe(true);
    expect(e.words.map((w) => w.text)).toEqual(['Hey', '</s>', '.', 'how', 'are', 'you']);
    const l3 = await load('llama3');
    const f = l3.encode(' <|end_of_text|> test <|end_of_text|> ', { addSpecialTokens: false });
    expect(f.ids).toEqual([220, 128001, 1296, 220, 128001, 220]);
    expect(f.offsets).toEqual([[0, 1], [1, 16], [16, 21], [21, 22], [22, 37], [37, 38]]);
  });

  it('llama2: BOS from the template; ▁ tokens map to the space before the word; words are the typed words', async () => {
    const tok = await load('llama2');
    const e = tok.encode('The company was founded in 2016.');
    expect(e.ids).toEqual([1, 450, 5001, 471, 11091, 297, 29871, 29906, 29900, 29896, 29953, 29889]);
    expect(e.special[0]).toBe(true);
    expect(e.offsets.slice(1, 4)).toEqual([[0, 3], [3, 11], [11, 15]]);
    expect(e.words.map((w) => w.text)).toEqual(['The', 'company', 'was', 'founded', 'in', '2016.']);
    // Llama 2's prepended ▁ before a digit stands for no character.
    const n = tok.encode('0 1');
    expect(n.tokens.slice(1)).toEqual(['\u2581', '0', '\u2581', '1']);
    expect(n.offsets.slice(1)).toEqual([[0, 0], [0, 1], [1, 2], [2, 3]]);
    expect(n.words.map((w) => w.text)).toEqual(['0', '1']);
    // Byte-fallback pieces of one character all carry that character's span.
    const c = tok.encode('真谛');
    expect(c.tokens.slice(1)).toEqual(['\u2581', '真', '<0xE8>', '<0xB0>', '<0x9B>']);
    expect(c.offsets.slice(3)).toEqual([[1, 2], [1, 2], [1, 2]]);
  });

  it('llama3 / qwen2: byte-level tokens carry their leading space; an emoji split over tokens gets its whole span', async () => {
    const l3 = await load('llama3');
    const e = l3.encode('hello world');
    expect(e.ids).toEqual([128000, 15339, 1917]);
    expect(e.offsets).toEqual([[0, 0], [0, 5], [5, 11]]);
    expect(e.words.map((w) => [w.text, w.start, w.end])).toEqual([['hello', 0, 5], ['world', 6, 11]]);
    // One emoji, three tokens (🤗 = F0 9F A4 97): each covers the whole emoji.
    const text = casesOf('llama3').find((c) => c.name === 'EMOJIS_1')!.text;
    expect([...text].length).toBe(1);
    const qe = l3.encode(text);
    expect(qe.ids.length).toBe(4);
    expect(qe.offsets.slice(1)).toEqual([[0, text.length], [0, text.length], [0, text.length]]);
    expect(qe.words).toEqual([{ text, start: 0, end: text.length }]);
  });

  it('truncation keeps the template: right by default, left keeps the end', async () => {
    const tok = await load('llama2');
    const warnings: string[] = [];
    const r = tok.encode('The company was founded in 2016.', { maxLength: 4, onWarning: (m) => warnings.push(m) });
    expect(r.ids).toEqual([1, 450, 5001, 471]);
    expect(r.truncated).toBe(true);
    expect(warnings[0]).toMatch(/kept the first 3/);
    const l = tok.encode('The company was founded in 2016.', { maxLength: 3, truncation: 'left' });
    expect(l.ids).toEqual([1, 29953, 29889]);
    expect(l.words.map((w) => w.text)).toEqual(['2016.']);
  });
});

describe('tokenizer.json built here, ids exact by construction', () => {
  it('RoBERTa: byte-level BPE inside <s> … </s>; every merge forced, so "hi world" is <s> hi Ġworld </s>', async () => {
    // Ids 4 … 259 are the 256 byte symbols, 260 … 265 the merges' results in order (hi, Ġw … Ġworld).
    const tok = await load('roberta');
    const e = tok.encode('hi world');
    expect(e.ids).toEqual([0, 260, 265, 2]);
    expect(e.tokens).toEqual(['<s>', 'hi', '\u0120world', '</s>']);
    expect(e.offsets).toEqual([[0, 0], [0, 2], [2, 8], [0, 0]]);
    expect(e.special).toEqual([true, false, false, true]);
    expect(e.words.map((w) => w.text)).toEqual(['hi', 'world']);
    expect(tok.special).toEqual({ cls: 0, sep: 2, pad: 1, unk: 3, mask: 266 });
    // <mask> typed in the text is its token (lstrip: it takes the space before it) and a word.
    const m = tok.encode('hi <mask>');
    expect(m.ids).toEqual([0, 260, 266, 2]);
    expect(m.offsets[2]).toEqual([3, 9]);
    expect(m.special[2]).toBe(false);
  });

  it('Unigram (T5-style, Metaspace, </s> template): the best-scoring segmentation, unknown characters as <unk>', async () => {
    const tok = await load('unigram');
    // ▁ab: [▁a, b] scores -3, better than [▁ab] (-5); ▁c: [▁, c] (-5) is the only one.
    expect(tok.encode('ab c').ids).toEqual([4, 5, 3, 7, 1]);
    // ▁été: [▁é, t, é] (-6.5) beats [▁, é, t, é] (-11.5).
    const e = tok.encode('été');
    expect(e.ids).toEqual([8, 9, 10, 1]);
    expect(e.offsets.slice(0, 3)).toEqual([[0, 1], [1, 2], [2, 3]]);
    // z is in no piece: <unk> (id 2), covering z.
    const u = tok.encode('ab z');
    expect(u.ids).toEqual([4, 5, 3, 2, 1]);
    expect(u.offsets.slice(0, 4)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4]]);
    expect(u.words.map((w) => w.text)).toEqual(['ab', 'z']);
  });
});

describe('errors name the file', () => {
  const file = (text: string) => ({ tokenizerJson: { path: '/m/tokenizer.json', text } });
  const model = (m: unknown) => JSON.stringify({ model: m, added_tokens: [] });
  it('malformed JSON, unknown model type, missing or broken vocabulary → CheckpointError', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"model": ', /not valid JSON/],
      ['[1, 2]', /expected a JSON object/],
      [JSON.stringify({ added_tokens: [] }), /no "model" object/],
      [model({ type: 'WordLevel', vocab: { a: 0 } }), /model type "WordLevel" is not supported/],
      [model({ type: 'BPE', merges: [] }), /model.vocab must be/],
      [model({ type: 'BPE', vocab: { a: 0 } }), /model.merges must be a list/],
      [model({ type: 'BPE', vocab: { a: -1 }, merges: [] }), /not a token id/],
      [model({ type: 'Unigram', vocab: [['a', 'x']] }), /not a \[piece, score\] pair/],
      [model({ type: 'Unigram' }), /model.vocab must be/],
      [JSON.stringify({ model: { type: 'Unigram', vocab: [['a', -1]] }, normalizer: { type: 'Foo' } }), /cannot be loaded: .*Foo/],
      [JSON.stringify({ model: { type: 'Unigram', vocab: [['a', -1]] }, pre_tokenizer: { type: 'Bar' } }), /cannot be loaded: .*Bar/],
    ];
    for (const [text, message] of cases) {
      let err: unknown;
      try {
        hfTokenizerFromFiles(file(text));
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(CheckpointError);
      expect((err as Error).message, text).toMatch(message);
      expect((err as Error).message, text).toContain('/m/tokenizer.json');
    }
  });

  it('a BERT-family folder whose tokenizer lacks a template says so', () => {
    const j = JSON.parse(readFileSync(path.join(FIX, 'unigram', 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const tok = hfTokenizerFromFiles(file(JSON.stringify({ ...j, post_processor: null })));
    expect(() => tok.special).toThrow(CheckpointError);
  });
});

describe('model folders with only tokenizer.json', () => {
  it('a RoBERTa folder (BPE tokenizer.json, no vocab.json/merges.txt) tokenises through the shared loader', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-hf-tok-'));
    try {
      await fs.copyFile(path.join(FIX, 'roberta', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      await fs.copyFile(path.join(FIX, 'roberta', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
      const tok = await loadModelTokenizer(dir);
      expect(tok).not.toBeNull();
      expect(tok!.encode('hi world').ids).toEqual([0, 260, 265, 2]);
      expect(tok!.special.mask).toBe(266);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a WordPiece tokenizer.json still goes to relprop\'s WordPiece; a broken BPE one is an error naming it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-hf-tok-'));
    try {
      await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordPiece', unk_token: '[UNK]', vocab: { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, hi: 4 } }, pre_tokenizer: { type: 'BertPreTokenizer' }, added_tokens: [] }));
      const wp = await loadModelTokenizer(dir);
      expect(wp).not.toBeInstanceOf(HfTokenizer);
      expect(wp!.encode('hi').ids).toEqual([2, 4, 3]);
      await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: { a: 0 } }, added_tokens: [] }));
      await expect(loadModelTokenizer(dir)).rejects.toThrow(new RegExp(`${path.join(dir, 'tokenizer.json')}: model.merges must be a list`));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('loadModel: a RoBERTa checkpoint with only tokenizer.json explains text (encodeText gives <s> … </s>)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-hf-roberta-'));
    try {
      // The golden tiny BERT's weights under RoBERTa's names (as bert-layouts.test.ts does); its
      // vocabulary of 50 takes a tokenizer with ids below 50: the RoBERTa fixture's layout with
      // only the bytes of "hi world".
      const st = await readSafetensors(path.join(BERT_DIR, 'weights.safetensors'));
      const bert: Record<string, TensorToWrite> = Object.fromEntries([...st.tensors.values()].map((t) => [t.name, { shape: t.shape, data: st.getFloat32(t.name) }]));
      st.close();
      const config = JSON.parse(await fs.readFile(path.join(BERT_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
      const D = 32;
      const rename = (from: string, to: string) => Object.fromEntries(Object.entries(bert).filter(([k]) => k.startsWith(from)).map(([k, v]) => [to + k.slice(from.length), v]));
      const shifted = new Float32Array(33 * D);
      shifted.set(bert['bert.embeddings.position_embeddings.weight']!.data, D);
      const tensors = {
        ...rename('bert.embeddings.', 'roberta.embeddings.'),
        ...rename('bert.encoder.', 'roberta.encoder.'),
        'roberta.embeddings.position_embeddings.weight': { shape: [33, D], data: shifted },
        'roberta.embeddings.token_type_embeddings.weight': { shape: [1, D], data: bert['bert.embeddings.token_type_embeddings.weight']!.data.slice(0, D) },
        'classifier.dense.weight': bert['bert.pooler.dense.weight']!,
        'classifier.dense.bias': bert['bert.pooler.dense.bias']!,
        'classifier.out_proj.weight': bert['classifier.weight']!,
        'classifier.out_proj.bias': bert['classifier.bias']!,
      };
      await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'roberta', max_position_embeddings: 33, type_vocab_size: 1, pad_token_id: 1 }));
      await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
      const j = JSON.parse(readFileSync(path.join(FIX, 'roberta', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number>; merges: string[][] }; added_tokens: Array<{ id: number; content: string }> };
      const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
      for (const c of ['h', 'i', '\u0120', 'w', 'o', 'r', 'l', 'd']) vocab[c] = Object.keys(vocab).length;
      for (const [a, b] of j.model.merges) vocab[a! + b!] = Object.keys(vocab).length;
      vocab['<mask>'] = Object.keys(vocab).length;
      j.model.vocab = vocab;
      j.added_tokens = j.added_tokens.map((t) => ({ ...t, id: vocab[t.content]! }));
      await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(j));
      await fs.copyFile(path.join(FIX, 'roberta', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));

      const model = await loadModel(dir);
      try {
        expect(model).toBeInstanceOf(BertModel);
        const bertModel = model as BertModel;
        expect(bertModel.special).toEqual({ mask: 18, unk: 3 });
        const loaded = encodeText(bertModel, 'hi world');
        // hi = 12 (first merge), Ġworld = 17 (last), inside <s> (0) … </s> (2).
        expect(loaded.encoding!.ids).toEqual([0, 12, 17, 2]);
        expect(loaded.encoding!.words.map((w) => w.text)).toEqual(['hi', 'world']);
        const out = model.predict(loaded.input);
        expect([...out.dataSync()].every(Number.isFinite)).toBe(true);
        out.dispose();
        disposeTokens(loaded.input);
      } finally {
        model.dispose();
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
