import { describe, it, expect } from 'vitest';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HfTokenizer, hfTokenizerFromFiles, loadHfTokenizer } from '../src/core/text/hf-tokenizer.js';
import { tokenizerFromFiles, type Encoding } from '../src/core/text/tokenizer.js';
import { loadModelTokenizer } from '../src/core/text-inputs.js';
import { CheckpointError } from '../src/core/errors.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tokenizers');

interface Case {
  name: string;
  text: string;
  ids: number[];
  tokens?: string[];
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
        const e = tok.encode(c.text);
        expect(e.ids, c.name).toEqual(c.ids);
        if (c.tokens) expect(e.tokens.filter((_, i) => !e.special[i]), c.name).toEqual(c.tokens);
        expectExactOffsets(e, c.text, byteLevel, normalize);
        // Every token that is not the template's belongs to a word, and a word's text is its slice.
        e.wordIds.forEach((w, i) => expect(w === null).toBe(e.special[i]));
        for (const w of e.words) expect(c.text.slice(w.start, w.end)).toBe(w.text);
      }
    });
  }

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

  it('tokenizerFromFiles (the renderer\'s path) takes a BPE tokenizer.json', () => {
    const text = readFileSync(path.join(FIX, 'roberta', 'tokenizer.json'), 'utf8');
    const tok = tokenizerFromFiles({ tokenizerJson: { path: 'tokenizer.json', text } });
    expect(tok.encode('hi world').ids).toEqual([0, 260, 265, 2]);
  });
});
