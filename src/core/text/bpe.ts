/**
 * GPT-2's byte-level BPE (Radford et al. 2019; openai/gpt-2 encoder.py, HF's GPT2Tokenizer), with
 * every token's character offsets in the original text, so relevance lands back on the words typed.
 *
 * 1. Pre-tokenise with GPT-2's regex: contractions, a word / number / punctuation run each with at
 *    most one leading space, and whitespace runs (a run before a word leaves its last space to it).
 * 2. Each chunk's UTF-8 bytes become printable characters through GPT-2's bytes-to-unicode table
 *    (so the space byte is 'Ġ' and no byte is a control character).
 * 3. Adjacent symbols merge, lowest merge rank first, until no ranked pair remains.
 *
 * No normalisation, no unknown token (every byte has a token), no template: GPT-2 adds no BOS/EOS.
 * Offsets are JS (UTF-16) string indices; a token that holds only part of a character's UTF-8 bytes
 * (an emoji split across tokens) gets that whole character's span, as HF's alignment does.
 *
 * JS's `\s` is the Unicode White_Space set plus U+FEFF; Python's `regex` module (the reference)
 * differs only at U+001C–U+001F, U+0085 and U+FEFF, characters real text does not contain.
 *
 * Node-only parts (loadBpeTokenizer) import node:fs lazily, as tokenizer.ts does.
 */
import { CheckpointError, InputError, UsageError } from '../errors.js';
import type { Encoding, Word } from './tokenizer.js';

/** GPT-2's pre-tokeniser, verbatim (with the `u` flag for \p{…}). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 (controls,
 * space, …) to U+0100 upwards in byte order. Every symbol is one UTF-16 unit, so a symbol string's
 * length is its byte count.
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return table;
}

export interface BpeEncodeOptions {
  /** Most tokens kept. Default: no limit. */
  readonly maxLength?: number;
  /**
   * Which end a too-long text loses: 'right' (HF's default) or 'left', which keeps the text's end —
   * what a next-token prediction depends on most.
   */
  readonly truncation?: 'left' | 'right';
  readonly onWarning?: (message: string) => void;
}

export interface BpeSpec {
  /** Token (in byte-symbol form, e.g. 'Ġworld') → id. */
  readonly vocab: ReadonlyMap<string, number>;
  /** Merges in rank order, as pairs of symbols. */
  readonly merges: ReadonlyArray<readonly [string, string]>;
  /** Tokens matched whole in the raw text before pre-tokenising (e.g. '<|endoftext|>'), with their ids. */
  readonly added?: ReadonlyMap<string, number>;
  /** Where the vocabulary came from, for messages. */
  readonly source?: string;
}

/** One pre-tokenised chunk's BPE result: symbols and their byte lengths (cached per chunk). */
interface Pieces {
  readonly ids: number[];
  readonly tokens: string[];
  /** Byte length of each token. */
  readonly bytes: number[];
}

export class BpeTokenizer {
  readonly vocabSize: number;
  /** The id of '<|endoftext|>' (GPT-2's BOS, EOS and usual padding), when the vocabulary has it. */
  readonly endOfText: number | null;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly added: ReadonlyMap<string, number>;
  private readonly addedPattern: RegExp | null;
  private readonly idToTokenTable: Array<string | undefined>;
  private readonly addedIds = new Set<number>();
  private readonly byteChar = bytesToUnicode();
  private readonly charByte = new Map<string, number>();
  private readonly cache = new Map<string, Pieces>();
  private readonly source: string;

  constructor(spec: BpeSpec) {
    this.vocab = spec.vocab;
    this.source = spec.source ?? 'the vocabulary';
    spec.merges.forEach(([a, b], rank) => {
      // Symbols never hold a space (the space byte is 'Ġ'), so 'a b' is an unambiguous key. A repeated
      // pair keeps its last rank, as the reference's dict(zip(merges, range(n))) does.
      this.ranks.set(`${a} ${b}`, rank);
    });
    const added = new Map(spec.added ?? []);
    const eot = spec.vocab.get('<|endoftext|>');
    if (eot !== undefined && !added.has('<|endoftext|>')) added.set('<|endoftext|>', eot);
    this.added = added;
    this.endOfText = added.get('<|endoftext|>') ?? eot ?? null;
    let size = 0;
    for (const id of spec.vocab.values()) size = Math.max(size, id + 1);
    for (const id of added.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.idToTokenTable = new Array<string | undefined>(size);
    for (const [token, id] of spec.vocab) this.idToTokenTable[id] = token;
    for (const [token, id] of added) {
      this.idToTokenTable[id] = token;
      this.addedIds.add(id);
    }
    this.byteChar.forEach((c, b) => this.charByte.set(c, b));
    const contents = [...added.keys()].filter((c) => c.length > 0).sort((x, y) => y.length - x.length);
    this.addedPattern = contents.length ? new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'gu') : null;
  }

  idToToken(id: number): string {
    const token = Number.isInteger(id) ? this.idToTokenTable[id] : undefined;
    if (token === undefined) throw new UsageError(`token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    return token;
  }

  /** The id of a token in its vocabulary form ('Ġworld'), not of a text (see encode). */
  tokenToId(token: string): number | undefined {
    return this.added.get(token) ?? this.vocab.get(token);
  }

  /** The UTF-8 bytes a token stands for (an added token: its own text). */
  tokenBytes(id: number): Uint8Array {
    const token = this.idToToken(id);
    if (this.addedIds.has(id)) return new TextEncoder().encode(token);
    const out = new Uint8Array(token.length);
    for (let i = 0; i < token.length; i++) {
      const b = this.charByte.get(token[i]!);
      if (b === undefined) throw new UsageError(`token ${id} ('${token}') holds '${token[i]}', which is not a byte symbol`);
      out[i] = b;
    }
    return out;
  }

  /** The text of a sequence of ids: their bytes joined, then UTF-8 decoded (a broken sequence gives U+FFFD). */
  decode(ids: readonly number[]): string {
    const parts = ids.map((id) => this.tokenBytes(id));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder('utf-8').decode(all);
  }

  /**
   * Ids, tokens and offsets of `text`. Words are the pre-tokeniser's chunks without the single
   * leading space a word chunk carries (so a highlight covers "Paris", not " Paris"); tokens keep the
   * space in their offsets, since that is what they encode. Only the empty string is refused:
   * whitespace is text to GPT-2.
   */
  encode(text: string, options: BpeEncodeOptions = {}): Encoding {
    if (text === '') throw new InputError('the text is empty');
    const maxLength = options.maxLength ?? Infinity;
    if (!(maxLength >= 1) || (maxLength !== Infinity && !Number.isInteger(maxLength))) {
      throw new UsageError(`maxLength must be a positive integer, got ${maxLength}`);
    }
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: Array<[number, number]> = [];
    const wordIds: number[] = [];
    const words: Word[] = [];
    for (const seg of this.splitAdded(text)) {
      if (seg.id !== undefined) {
        wordIds.push(words.length);
        words.push({ text: text.slice(seg.start, seg.end), start: seg.start, end: seg.end });
        ids.push(seg.id);
        tokens.push(this.idToToken(seg.id));
        offsets.push([seg.start, seg.end]);
        continue;
      }
      GPT2_PATTERN.lastIndex = 0;
      for (const m of text.slice(seg.start, seg.end).matchAll(GPT2_PATTERN)) {
        const chunk = m[0];
        const start = seg.start + m.index!;
        // ' ?\p{L}+' and its kin carry one space before the word; whitespace runs are words of their own.
        const lead = chunk.length > 1 && chunk[0] === ' ' && /\S/u.test(chunk[1]!) ? 1 : 0;
        const word = words.length;
        words.push({ text: chunk.slice(lead), start: start + lead, end: start + chunk.length });
        this.encodeChunk(chunk, start, word, ids, tokens, offsets, wordIds);
      }
    }

    let first = 0;
    let end = ids.length;
    const truncated = ids.length > maxLength;
    if (truncated) {
      const left = options.truncation === 'left';
      if (left) first = ids.length - maxLength;
      else end = maxLength;
      options.onWarning?.(
        `the text has ${ids.length} tokens, more than the maximum of ${maxLength}: kept the ` +
          (left ? `last ${maxLength} (text from character ${offsets[first]![0]} of ${text.length})` : `first ${maxLength} (text up to character ${offsets[end - 1]![1]} of ${text.length})`),
      );
    }
    const firstWord = wordIds[first] ?? 0;
    const lastWord = wordIds[end - 1] ?? -1;
    const n = end - first;
    return {
      ids: ids.slice(first, end),
      tokens: tokens.slice(first, end),
      offsets: offsets.slice(first, end),
      wordIds: wordIds.slice(first, end).map((w) => w - firstWord),
      words: words.slice(firstWord, lastWord + 1),
      special: new Array<boolean>(n).fill(false),
      attentionMask: new Array<number>(n).fill(1),
      truncated,
    };
  }

  /** BPE of one pre-tokenised chunk starting at `start` in the text; appends its tokens. */
  private encodeChunk(
    chunk: string,
    start: number,
    word: number,
    ids: number[],
    tokens: string[],
    offsets: Array<[number, number]>,
    wordIds: number[],
  ): void {
    const bytes = new TextEncoder().encode(chunk);
    // Per byte: the UTF-16 span (in the text) of the character it belongs to.
    const charStart = new Array<number>(bytes.length);
    const charEnd = new Array<number>(bytes.length);
    let b = 0;
    for (let i = 0; i < chunk.length; ) {
      const cp = chunk.codePointAt(i)!;
      const units = cp > 0xffff ? 2 : 1;
      // A lone surrogate is written as U+FFFD's three bytes by TextEncoder.
      const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      for (let k = 0; k < n; k++, b++) {
        charStart[b] = start + i;
        charEnd[b] = start + i + units;
      }
      i += units;
    }
    const pieces = this.bpe(chunk, bytes);
    let at = 0;
    pieces.ids.forEach((id, k) => {
      const len = pieces.bytes[k]!;
      ids.push(id);
      tokens.push(pieces.tokens[k]!);
      offsets.push([charStart[at]!, charEnd[at + len - 1]!]);
      wordIds.push(word);
      at += len;
    });
  }

  private bpe(chunk: string, bytes: Uint8Array): Pieces {
    const cached = this.cache.get(chunk);
    if (cached) return cached;
    let symbols = Array.from(bytes, (x) => this.byteChar[x]!);
    while (symbols.length > 1) {
      let best = Infinity;
      let pair: [string, string] | null = null;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          pair = [symbols[i]!, symbols[i + 1]!];
        }
      }
      if (pair === null) break;
      // Every occurrence of the best pair, left to right, without overlaps (as encoder.py).
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; ) {
        if (i + 1 < symbols.length && symbols[i] === pair[0] && symbols[i + 1] === pair[1]) {
          merged.push(pair[0] + pair[1]);
          i += 2;
        } else {
          merged.push(symbols[i]!);
          i += 1;
        }
      }
      symbols = merged;
    }
    const ids = symbols.map((s) => {
      const id = this.vocab.get(s);
      if (id === undefined) throw new InputError(`the piece '${s}' of '${chunk}' has no token in ${this.source} (a byte-level vocabulary holds all 256 bytes)`);
      return id;
    });
    const pieces: Pieces = { ids, tokens: symbols, bytes: symbols.map((s) => s.length) };
    // Bounded: a long text of distinct words should not grow the cache without end.
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(chunk, pieces);
    return pieces;
  }

  /** The text cut around added tokens ('<|endoftext|>') it contains, as HF does before pre-tokenising. */
  private splitAdded(text: string): Array<{ start: number; end: number; id?: number }> {
    if (this.addedPattern === null) return [{ start: 0, end: text.length }];
    const segments: Array<{ start: number; end: number; id?: number }> = [];
    let pos = 0;
    this.addedPattern.lastIndex = 0;
    for (const m of text.matchAll(this.addedPattern)) {
      if (m.index! > pos) segments.push({ start: pos, end: m.index! });
      segments.push({ start: m.index!, end: m.index! + m[0].length, id: this.added.get(m[0])! });
      pos = m.index! + m[0].length;
    }
    if (pos < text.length) segments.push({ start: pos, end: text.length });
    return segments;
  }
}

// ---------------------------------------------------------------------------------------------
// Files: vocab.json + merges.txt (GPT2Tokenizer), or tokenizer.json (GPT2TokenizerFast)

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonFile(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`not valid JSON: ${(err as Error).message}`, path);
  }
}

function vocabFrom(value: unknown, path: string, where: string): Map<string, number> {
  if (!isObject(value)) throw new CheckpointError(`${where} must be an object of token → id`, path);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new CheckpointError(`${where}: token '${token}' has id ${JSON.stringify(id)}, not a non-negative integer`, path);
    vocab.set(token, id);
  }
  return vocab;
}

/** merges.txt: an optional '#version' line, then one 'a b' pair per line. */
export function parseMerges(text: string, path: string): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new CheckpointError(`line ${i + 1} is not a merge 'a b': ${JSON.stringify(line)}`, path);
    merges.push([parts[0], parts[1]]);
  });
  return merges;
}

export interface BpeFiles {
  readonly vocabJson?: { readonly path: string; readonly text: string };
  readonly mergesTxt?: { readonly path: string; readonly text: string };
  readonly tokenizerJson?: { readonly path: string; readonly text: string };
  /** tokenizer_config.json: its added_tokens_decoder names tokens matched whole. */
  readonly tokenizerConfig?: { readonly path: string; readonly text: string };
}

/** From file contents (the renderer has no file system): vocab.json + merges.txt, else tokenizer.json. */
export function bpeTokenizerFromFiles(files: BpeFiles): BpeTokenizer {
  const added = new Map<string, number>();
  if (files.tokenizerConfig) {
    const cfg = parseJsonFile(files.tokenizerConfig.text, files.tokenizerConfig.path);
    const decoder = isObject(cfg) ? cfg['added_tokens_decoder'] : undefined;
    if (isObject(decoder)) {
      for (const [id, t] of Object.entries(decoder)) {
        if (isObject(t) && typeof t['content'] === 'string' && /^\d+$/.test(id)) added.set(t['content'], Number(id));
      }
    }
  }
  if (files.vocabJson && files.mergesTxt) {
    return new BpeTokenizer({
      vocab: vocabFrom(parseJsonFile(files.vocabJson.text, files.vocabJson.path), files.vocabJson.path, 'vocab.json'),
      merges: parseMerges(files.mergesTxt.text, files.mergesTxt.path),
      added,
      source: files.vocabJson.path,
    });
  }
  if (!files.tokenizerJson) throw new CheckpointError('no vocab.json + merges.txt or tokenizer.json given');
  const { path, text } = files.tokenizerJson;
  const json = parseJsonFile(text, path);
  const model = isObject(json) ? json['model'] : undefined;
  if (!isObject(model) || model['type'] !== 'BPE') {
    throw new CheckpointError(`model.type is ${JSON.stringify(isObject(model) ? model['type'] : undefined)}; a GPT-2 model needs byte-level 'BPE'`, path);
  }
  const pre = isObject(json) ? json['pre_tokenizer'] : undefined;
  const types = isObject(pre) ? [pre['type'], ...(Array.isArray(pre['pretokenizers']) ? pre['pretokenizers'].map((p: unknown) => (isObject(p) ? p['type'] : undefined)) : [])] : [];
  if (!types.includes('ByteLevel')) throw new CheckpointError(`pre_tokenizer is not ByteLevel: only GPT-2's byte-level BPE is supported`, path);
  const rawMerges = model['merges'];
  if (!Array.isArray(rawMerges)) throw new CheckpointError('model.merges must be an array', path);
  // Older files write 'a b' strings, newer ones [a, b] pairs.
  const merges = rawMerges.map((m: unknown, i): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
    }
    throw new CheckpointError(`model.merges[${i}] is not a merge: ${JSON.stringify(m)}`, path);
  });
  const addedTokens = isObject(json) ? json['added_tokens'] : undefined;
  if (Array.isArray(addedTokens)) {
    for (const t of addedTokens) if (isObject(t) && typeof t['content'] === 'string' && typeof t['id'] === 'number') added.set(t['content'], t['id']);
  }
  return new BpeTokenizer({ vocab: vocabFrom(model['vocab'], path, 'model.vocab'), merges, added, source: path });
}

/** A GPT-2 folder's tokenizer, or null when it has none (vocab.json + merges.txt, or tokenizer.json). */
export async function loadBpeTokenizer(dir: string): Promise<BpeTokenizer | null> {
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  const read = async (name: string) => {
    const path = join(dir, name);
    try {
      return { path, text: new TextDecoder('utf-8', { fatal: true }).decode(await fs.readFile(path)) };
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw new CheckpointError(err instanceof TypeError ? 'not UTF-8 text' : `cannot be read (${(err as Error).message})`, path);
    }
  };
  const [vocabJson, mergesTxt, tokenizerJson, tokenizerConfig] = await Promise.all(['vocab.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json'].map(read));
  if (vocabJson && !mergesTxt) throw new CheckpointError('has vocab.json but no merges.txt (GPT-2\'s tokenizer needs both)', dir);
  if (!(vocabJson && mergesTxt) && !tokenizerJson) return null;
  return bpeTokenizerFromFiles({ vocabJson, mergesTxt, tokenizerJson, tokenizerConfig });
}
