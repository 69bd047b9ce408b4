import { describe, it, expect, beforeAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError, InputError, UsageError } from '../src/core/errors.js';
import {
  loadTokenizer,
  readTextFile,
  tokenizerFromFiles,
  tokenizerFromVocab,
  wordRelevance,
  type Encoding,
  type Tokenizer,
} from '../src/core/text/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(here, 'fixtures/tokenizer');

// The fixtures are cut-down bert-base-uncased / bert-base-cased vocabularies: each holds the pieces
// that the real checkpoint would produce for the texts below, so the expected tokens are the real
// model's. The ids are the fixture's own (line numbers of vocab.txt).
let uncased: Tokenizer;
let uncasedJson: Tokenizer;
let cased: Tokenizer;
let casedJson: Tokenizer;

beforeAll(async () => {
  [uncased, uncasedJson, cased, casedJson] = await Promise.all(
    ['uncased', 'uncased-json', 'cased', 'cased-json'].map((d) => loadTokenizer(path.join(FIX, d))),
  );
});

/** Tokens with their original text, the most readable way to state an expectation. */
function pieces(e: Encoding, text: string): Array<[string, string]> {
  return e.tokens.map((t, i) => [t, e.special[i] ? '' : text.slice(e.offsets[i][0], e.offsets[i][1])]);
}

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'relprop-tok-'));
}

describe('BERT uncased tokenisation', () => {
  it('lower-cases and strips accents, with offsets into the original text', () => {
    const text = 'Héllo Wörld!';
    const e = uncased.encode(text);
    expect(e.tokens).toEqual(['[CLS]', 'hello', 'world', '!', '[SEP]']);
    expect(e.ids).toEqual([2, 26, 27, 5, 3]);
    expect(e.offsets).toEqual([[0, 0], [0, 5], [6, 11], [11, 12], [0, 0]]);
    expect(e.words).toEqual([
      { text: 'Héllo', start: 0, end: 5 },
      { text: 'Wörld', start: 6, end: 11 },
      { text: '!', start: 11, end: 12 },
    ]);
    expect(e.wordIds).toEqual([null, 0, 1, 2, null]);
    expect(e.special).toEqual([true, false, false, false, true]);
    expect(e.attentionMask).toEqual([1, 1, 1, 1, 1]);
    expect(e.truncated).toBe(false);
  });

  it('maps a decomposed accent (two code units) back onto both', () => {
    const text = 'He\u0301llo';
    const e = uncased.encode(text);
    expect(e.tokens).toEqual(['[CLS]', 'hello', '[SEP]']);
    expect(e.offsets[1]).toEqual([0, 6]);
    expect(uncased.encode('Café naïve RÉSUMÉ').tokens.slice(1, -1)).toEqual(['cafe', 'naive', 'resume']);
  });

  it('splits on punctuation, including ASCII symbols that Unicode does not call punctuation', () => {
    expect(pieces(uncased.encode("don't"), "don't")).toEqual([
      ['[CLS]', ''], ['don', 'don'], ["'", "'"], ['t', 't'], ['[SEP]', ''],
    ]);
    const usa = uncased.encode('U.S.A.');
    expect(usa.tokens).toEqual(['[CLS]', 'u', '.', 's', '.', 'a', '.', '[SEP]']);
    expect(usa.offsets.slice(1, -1)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]);
    expect(usa.words.map((w) => w.text)).toEqual(['U', '.', 'S', '.', 'A', '.']);
    expect(uncased.encode('$5 (it)').tokens.slice(1, -1)).toEqual(['$', '5', '(', 'it', ')']);
    // "|" is not in the vocabulary, but it is still its own word, so cat and sat survive.
    expect(uncased.encode('cat|sat').tokens.slice(1, -1)).toEqual(['cat', '[UNK]', 'sat']);
  });

  it('continues a word with ## pieces that share its word id', () => {
    const e = uncased.encode('unaffable');
    expect(e.tokens).toEqual(['[CLS]', 'un', '##aff', '##able', '[SEP]']);
    expect(e.offsets.slice(1, -1)).toEqual([[0, 2], [2, 5], [5, 9]]);
    expect(e.wordIds).toEqual([null, 0, 0, 0, null]);
    expect(e.words).toEqual([{ text: 'unaffable', start: 0, end: 9 }]);
  });

  it('gives one [UNK] covering the whole word when any part is unknown', () => {
    // An emoji is [UNK] in bert-base-uncased too; it is two UTF-16 code units.
    const e = uncased.encode('hello 🤗!');
    expect(e.tokens).toEqual(['[CLS]', 'hello', '[UNK]', '!', '[SEP]']);
    expect(e.offsets[2]).toEqual([6, 8]);
    expect(e.words[1]).toEqual({ text: '🤗', start: 6, end: 8 });
    // "hello" matches but "##q" does not: the word is [UNK], not hello + [UNK].
    const q = uncased.encode('helloq cat');
    expect(q.tokens).toEqual(['[CLS]', '[UNK]', 'cat', '[SEP]']);
    expect(q.offsets[1]).toEqual([0, 6]);
  });

  it('turns words longer than max_input_chars_per_word (100) into [UNK]', () => {
    const ok = uncased.encode('a'.repeat(100));
    expect(ok.tokens.length).toBe(102);
    expect(ok.tokens.slice(1, 3)).toEqual(['a', '##a']);
    const long = uncased.encode('a'.repeat(101));
    expect(long.tokens).toEqual(['[CLS]', '[UNK]', '[SEP]']);
    expect(long.offsets[1]).toEqual([0, 101]);
  });

  it('splits CJK characters one per token, even without spaces', () => {
    const e = uncased.encode('你好');
    expect(e.tokens).toEqual(['[CLS]', '你', '好', '[SEP]']);
    expect(e.offsets.slice(1, -1)).toEqual([[0, 1], [1, 2]]);
    expect(e.words.length).toBe(2);
    const mixed = 'hello你好world';
    expect(pieces(uncased.encode(mixed), mixed).slice(1, -1)).toEqual([
      ['hello', 'hello'], ['你', '你'], ['好', '好'], ['world', 'world'],
    ]);
  });

  it('drops control and format characters without splitting the word', () => {
    const text = 'hel\u0000lo\u200b wor\u0007ld\ufffd';
    const e = uncased.encode(text);
    expect(e.tokens).toEqual(['[CLS]', 'hello', 'world', '[SEP]']);
    expect(e.offsets.slice(1, -1)).toEqual([[0, 6], [8, 14]]);
    expect(e.words[0].text).toBe('hel\u0000lo');
    expect(() => uncased.encode('\u0000\u0007')).toThrow(InputError);
  });

  it('treats runs of spaces, tabs, newlines and Unicode spaces as one separator', () => {
    const text = '  hello\t\tworld\n\n!\r\n ';
    expect(uncased.encode(text).offsets.slice(1, -1)).toEqual([[2, 7], [9, 14], [16, 17]]);
    expect(uncased.encode('hello\u00a0world\u3000!').tokens.slice(1, -1)).toEqual(['hello', 'world', '!']);
  });

  it('matches special tokens typed in the text, as HF does, as part of the text', () => {
    const text = 'the [MASK] sat';
    const e = uncased.encode(text);
    expect(e.tokens).toEqual(['[CLS]', 'the', '[MASK]', 'sat', '[SEP]']);
    expect(e.ids[2]).toBe(4);
    expect(e.offsets[2]).toEqual([4, 10]);
    expect(e.special[2]).toBe(false);
    expect(e.wordIds[2]).toBe(1);
    // Not normalised: lower-case "[mask]" is ordinary text.
    expect(uncased.encode('[mask]').tokens).toEqual(['[CLS]', '[', 'mask', ']', '[SEP]']);
  });

  it('matches a normalized added token whatever its case when the tokenizer lower-cases', async () => {
    const json = JSON.parse(await fs.readFile(path.join(FIX, 'uncased-json/tokenizer.json'), 'utf8')) as {
      added_tokens: unknown[];
    };
    json.added_tokens.push({ id: 42, content: 'covid19', normalized: true, special: false });
    const t = tokenizerFromFiles({ tokenizerJson: { path: 'tokenizer.json', text: JSON.stringify(json) } });
    const e = t.encode('COVID19 cat');
    expect(e.tokens).toEqual(['[CLS]', 'covid19', 'cat', '[SEP]']);
    expect(e.ids[1]).toBe(42);
    expect(e.offsets[1]).toEqual([0, 7]);
    expect(t.vocabSize).toBe(43);
  });

  it('rejects empty and whitespace-only text', () => {
    expect(() => uncased.encode('')).toThrow(new InputError('the text is empty'));
    expect(() => uncased.encode(' \t\n\u00a0 ')).toThrow(new InputError('the text is empty'));
  });
});

describe('truncation', () => {
  it('cuts long input to the default 512, keeps [SEP] last and warns', () => {
    const warnings: string[] = [];
    const e = uncased.encode('hello '.repeat(600), { onWarning: (m) => warnings.push(m) });
    expect(e.ids.length).toBe(512);
    expect(e.tokens[0]).toBe('[CLS]');
    expect(e.tokens[511]).toBe('[SEP]');
    expect(e.truncated).toBe(true);
    expect(e.words.length).toBe(510);
    expect(e.attentionMask.length).toBe(512);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/602 tokens.*512/);
  });

  it('honours maxLength, may cut inside a word, and keeps only words with tokens', () => {
    const e = uncased.encode('unaffable cat', { maxLength: 4 });
    expect(e.tokens).toEqual(['[CLS]', 'un', '##aff', '[SEP]']);
    expect(e.words).toEqual([{ text: 'unaffable', start: 0, end: 9 }]);
    expect(e.truncated).toBe(true);
    const warnings: string[] = [];
    const fits = uncased.encode('the cat sat', { maxLength: 5, onWarning: (m) => warnings.push(m) });
    expect(fits.truncated).toBe(false);
    expect(warnings).toEqual([]);
    expect(() => uncased.encode('cat', { maxLength: 2 })).toThrow(UsageError);
  });

  it('takes the default from tokenizer_config.json, bounded by config.json positions', async () => {
    const dir = await tempDir();
    await fs.copyFile(path.join(FIX, 'uncased/vocab.txt'), path.join(dir, 'vocab.txt'));
    await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 16 }));
    const text = 'cat '.repeat(40);
    expect((await loadTokenizer(dir)).encode(text).ids.length).toBe(16);
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ max_position_embeddings: 8 }));
    expect((await loadTokenizer(dir)).encode(text).ids.length).toBe(8);
    // transformers' "unset" model_max_length (int(1e30)) means the model's own limit.
    await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    await fs.rm(path.join(dir, 'config.json'));
    expect((await loadTokenizer(dir)).encode('cat '.repeat(600)).ids.length).toBe(512);
  });
});

describe('cased (do_lower_case: false)', () => {
  it('keeps case and accents', () => {
    expect(cased.encode('Hello World!').tokens).toEqual(['[CLS]', 'Hello', 'World', '!', '[SEP]']);
    const lower = cased.encode('hello world');
    expect(lower.tokens).toEqual(['[CLS]', 'hello', 'world', '[SEP]']);
    expect(lower.ids[1]).not.toBe(cased.encode('Hello').ids[1]);
    const text = 'Héllo café';
    expect(pieces(cased.encode(text), text).slice(1, -1)).toEqual([
      ['H', 'H'], ['##é', 'é'], ['##llo', 'llo'], ['caf', 'caf'], ['##é', 'é'],
    ]);
  });

  it('uses the last line of a duplicated vocab.txt entry, as BertTokenizer does', () => {
    expect(cased.tokenToId('##é')).toBe(14);
    expect(cased.idToToken(11)).toBe('##é');
  });
});

describe('vocab.txt and tokenizer.json agree', () => {
  const texts = [
    'Héllo Wörld!',
    "don't stop, U.S.A.",
    'unaffable hello 🤗!',
    '你好 hello你好world',
    'hel\u0000lo\u200b  wor\u0007ld\t\n!',
    'the [MASK] sat on the mat.',
    'Café naïve RÉSUMÉ $5 (it)',
    'a'.repeat(101) + ' ' + 'a'.repeat(7),
    'Hello World! hello world Héllo café',
  ];

  it('gives identical encodings (uncased, TemplateProcessing)', () => {
    for (const text of texts) expect(uncasedJson.encode(text), text).toEqual(uncased.encode(text));
    expect(uncasedJson.special).toEqual(uncased.special);
    expect(uncasedJson.vocabSize).toBe(uncased.vocabSize);
  });

  it('gives identical encodings (cased, BertProcessing)', () => {
    for (const text of texts) expect(casedJson.encode(text), text).toEqual(cased.encode(text));
  });

  it('also agrees with tokenizerFromVocab', async () => {
    const lines = (await fs.readFile(path.join(FIX, 'uncased/vocab.txt'), 'utf8')).trimEnd().split('\n');
    const fromList = tokenizerFromVocab(lines);
    for (const text of texts) expect(fromList.encode(text)).toEqual(uncased.encode(text));
    const casedList = tokenizerFromVocab(
      (await fs.readFile(path.join(FIX, 'cased/vocab.txt'), 'utf8')).trimEnd().split('\n'),
      { lowercase: false },
    );
    expect(casedList.encode('Héllo').tokens).toEqual(['[CLS]', 'H', '##é', '##llo', '[SEP]']);
    expect(tokenizerFromVocab(lines, { maxLength: 6 }).encode('cat '.repeat(9)).ids.length).toBe(6);
  });

  it('lets explicit tokenizer_config.json flags override the tokenizer.json normalizer, as transformers does', async () => {
    const dir = await tempDir();
    await fs.copyFile(path.join(FIX, 'uncased-json/tokenizer.json'), path.join(dir, 'tokenizer.json'));
    await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    expect((await loadTokenizer(dir)).encode('Hello hello').tokens).toEqual(['[CLS]', '[UNK]', 'hello', '[SEP]']);
  });
});

describe('vocabulary and special tokens', () => {
  it('reports ids both ways', () => {
    expect(uncased.special).toEqual({ cls: 2, sep: 3, pad: 0, unk: 1, mask: 4 });
    expect(uncased.vocabSize).toBe(42);
    expect(uncased.idToToken(26)).toBe('hello');
    expect(uncased.tokenToId('hello')).toBe(26);
    expect(uncased.tokenToId('nope')).toBeUndefined();
    expect(() => uncased.idToToken(42)).toThrow(UsageError);
    expect(() => uncased.idToToken(-1)).toThrow(UsageError);
  });

  it('has mask null when the vocabulary has none', () => {
    const t = tokenizerFromVocab(['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'cat']);
    expect(t.special.mask).toBeNull();
    expect(t.encode('cat').ids).toEqual([2, 4, 3]);
  });
});

describe('loading errors', () => {
  async function folderWith(files: Record<string, string>): Promise<string> {
    const dir = await tempDir();
    for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content);
    return dir;
  }
  type TokenizerJson = { model: { type: string }; normalizer: unknown; pre_tokenizer: unknown };
  const tokenizerJson = (edit: (j: TokenizerJson) => void): Promise<string> =>
    fs.readFile(path.join(FIX, 'uncased-json/tokenizer.json'), 'utf8').then((s) => {
      const j = JSON.parse(s) as TokenizerJson;
      edit(j);
      return JSON.stringify(j);
    });

  it('names a missing folder, and a folder with no tokenizer', async () => {
    await expect(loadTokenizer('/nonexistent/model')).rejects.toThrow(/\/nonexistent\/model: model folder not found/);
    const empty = await tempDir();
    await expect(loadTokenizer(empty)).rejects.toThrow(CheckpointError);
    await expect(loadTokenizer(empty)).rejects.toThrow(/has no tokenizer\.json or vocab\.txt/);
  });

  it('rejects model types other than WordPiece, naming tokenizer.json', async () => {
    const dir = await folderWith({ 'tokenizer.json': await tokenizerJson((j) => (j.model.type = 'BPE')) });
    const err = await loadTokenizer(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toContain(path.join(dir, 'tokenizer.json'));
    expect((err as Error).message).toMatch(/model type "BPE" is not supported: only WordPiece/);
  });

  it('rejects other normalizers and pre-tokenizers, and bad JSON', async () => {
    const norm = await folderWith({ 'tokenizer.json': await tokenizerJson((j) => (j.normalizer = { type: 'NFKC' })) });
    await expect(loadTokenizer(norm)).rejects.toThrow(/normalizer "NFKC" is not supported/);
    const pre = await folderWith({ 'tokenizer.json': await tokenizerJson((j) => (j.pre_tokenizer = { type: 'Whitespace' })) });
    await expect(loadTokenizer(pre)).rejects.toThrow(/pre_tokenizer "Whitespace" is not supported/);
    const bad = await folderWith({ 'tokenizer.json': '{"model": ' });
    await expect(loadTokenizer(bad)).rejects.toThrow(/tokenizer\.json: not valid JSON/);
    const badConfig = await folderWith({ 'vocab.txt': '[PAD]\n[UNK]\n[CLS]\n[SEP]\n', 'tokenizer_config.json': '[' });
    await expect(loadTokenizer(badConfig)).rejects.toThrow(/tokenizer_config\.json: not valid JSON/);
  });

  it('names vocab.txt when it lacks a token a classifier needs', async () => {
    const dir = await folderWith({ 'vocab.txt': '[PAD]\n[UNK]\n[SEP]\nhello\n' });
    await expect(loadTokenizer(dir)).rejects.toThrow(/vocab\.txt: the vocabulary has no classifier token "\[CLS\]"/);
    const noUnk = await folderWith({ 'vocab.txt': '[PAD]\n[CLS]\n[SEP]\nhello\n' });
    await expect(loadTokenizer(noUnk)).rejects.toThrow(/vocab\.txt: the vocabulary has no unknown token/);
    const bytes = await folderWith({});
    await fs.writeFile(path.join(bytes, 'vocab.txt'), Buffer.from([0x5b, 0xff, 0x0a]));
    await expect(loadTokenizer(bytes)).rejects.toThrow(/vocab\.txt: not UTF-8/);
  });

  it('builds from file contents without a file system', async () => {
    const text = await fs.readFile(path.join(FIX, 'uncased-json/tokenizer.json'), 'utf8');
    const t = tokenizerFromFiles({ tokenizerJson: { path: 'tokenizer.json', text } });
    expect(t.encode('unaffable').tokens).toEqual(['[CLS]', 'un', '##aff', '##able', '[SEP]']);
    expect(() => tokenizerFromFiles({})).toThrow(CheckpointError);
  });
});

describe('wordRelevance', () => {
  it('sums the pieces of each word and drops special tokens', () => {
    const e = uncased.encode('unaffable hello');
    expect(e.tokens).toEqual(['[CLS]', 'un', '##aff', '##able', 'hello', '[SEP]']);
    const r = wordRelevance(e, new Float32Array([10, 1, 2, 3, 4, 20]));
    expect(r).toEqual([6, 4]);
    expect(r.length).toBe(e.words.length);
    expect(() => wordRelevance(e, [1, 2, 3])).toThrow(UsageError);
  });

  it('counts a special token typed in the text as a word', () => {
    const e = uncased.encode('[MASK] cat');
    expect(wordRelevance(e, [9, 1, 2, 9])).toEqual([1, 2]);
  });
});

describe('readTextFile', () => {
  it('reads UTF-8 and drops a byte-order mark', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'in.txt');
    await fs.writeFile(file, Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('Héllo\n')]));
    expect(await readTextFile(file)).toBe('Héllo\n');
  });

  it('names the file for non-UTF-8 bytes, a missing file and an empty file', async () => {
    const dir = await tempDir();
    const latin1 = path.join(dir, 'latin1.txt');
    await fs.writeFile(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in Latin-1
    const err = await readTextFile(latin1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`${latin1}: is not UTF-8 text (invalid byte 0xe9 at byte 3); save it as UTF-8`);

    const utf16 = path.join(dir, 'utf16.txt');
    await fs.writeFile(utf16, Buffer.from('\ufeffhi', 'utf16le'));
    await expect(readTextFile(utf16)).rejects.toThrow(/utf16\.txt: is UTF-16 text/);

    const missing = path.join(dir, 'missing.txt');
    await expect(readTextFile(missing)).rejects.toThrow(new InputError('file not found', missing));

    const empty = path.join(dir, 'empty.txt');
    await fs.writeFile(empty, '');
    await expect(readTextFile(empty)).rejects.toThrow(new InputError('the file is empty', empty));
    const blank = path.join(dir, 'blank.txt');
    await fs.writeFile(blank, ' \n\t\n');
    await expect(readTextFile(blank)).rejects.toThrow(InputError);
    await expect(readTextFile(dir)).rejects.toThrow(/is a folder/);
  });
});
