/**
 * BERT-style WordPiece tokenisation with offsets into the original text.
 *
 * Written here rather than taken from `@huggingface/tokenizers` (0.2): that package returns ids and
 * tokens but no character offsets, and an explanation has to be drawn back onto the words the user
 * typed. The behaviour follows the Rust `tokenizers` crate (what `transformers` uses by default,
 * also for a folder with only vocab.txt, which it converts): BertNormalizer, BertPreTokenizer,
 * WordPiece, then the [CLS] … [SEP] template. Where the Rust crate and the Python BasicTokenizer
 * differ (the CJK range starting at U+2B920, U+2028 counting as whitespace, no NFC pass), the Rust
 * crate wins.
 *
 * Node-only parts (loadTokenizer, readTextFile) import node:fs lazily, so the renderer can import
 * this module and build a tokenizer from file contents with tokenizerFromFiles.
 */
import { CheckpointError, InputError, UsageError } from '../errors.js';

/** A pre-tokenised word (whitespace/punctuation split) located in the original text. */
export interface Word {
  /** The original text of the word, `text.slice(start, end)`: what a user should see highlighted. */
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

export interface Encoding {
  /** Token ids, with [CLS] … [SEP]. */
  readonly ids: number[];
  readonly tokens: string[];
  /** Per token, JS string indices into the ORIGINAL text (end exclusive); [0, 0] for [CLS]/[SEP]. */
  readonly offsets: Array<[number, number]>;
  /** Per token, an index into `words`; null for the tokens the template adds. */
  readonly wordIds: Array<number | null>;
  /** Only words that kept at least one token after truncation, so every word has tokens. */
  readonly words: Word[];
  /**
   * True for the tokens the template adds ([CLS], [SEP]). A special token the user typed (the text
   * "[MASK]") is matched as HF does, but counts as part of the text: it has a word and is not special.
   */
  readonly special: boolean[];
  readonly attentionMask: number[];
  readonly truncated: boolean;
}

export interface SpecialTokens {
  cls: number;
  sep: number;
  pad: number;
  unk: number;
  mask: number | null;
}

export interface EncodeOptions {
  /** Most tokens, [CLS] and [SEP] included. Default: the tokenizer's model_max_length, else 512. */
  maxLength?: number;
  onWarning?: (message: string) => void;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  /**
   * Throws InputError('the text is empty') for empty/whitespace-only text. Truncates to maxLength
   * (default: the tokenizer's model_max_length or 512) including [CLS]/[SEP], and reports it via
   * `truncated` and onWarning.
   */
  encode(text: string, options?: EncodeOptions): Encoding;
  idToToken(id: number): string;
  tokenToId(token: string): number | undefined;
}

/** A tokenizer file's content and the path to name in errors. */
export interface TokenizerFile {
  readonly path: string;
  readonly text: string;
}

/** The files of a model folder that matter to its tokenizer; either tokenizerJson or vocabTxt. */
export interface TokenizerFiles {
  tokenizerJson?: TokenizerFile;
  vocabTxt?: TokenizerFile;
  tokenizerConfig?: TokenizerFile;
  specialTokensMap?: TokenizerFile;
  /** The model's config.json: max_position_embeddings bounds the default maxLength. */
  modelConfig?: TokenizerFile;
}

const DEFAULT_MAX_LENGTH = 512;
/** transformers writes int(1e30) as model_max_length when a checkpoint does not say. */
const UNSET_MAX_LENGTH = 1e6;

// ---------------------------------------------------------------------------------------------
// Character classes (BertNormalizer / BertPreTokenizer)

const RE_OTHER = /^\p{C}$/u;
const RE_PUNCT = /^\p{P}$/u;
const RE_NONSPACING_MARK = /\p{Mn}/gu;

/** Rust's char::is_whitespace (Unicode White_Space), which JS `\s` differs from at U+0085/U+FEFF. */
function isWhitespace(cp: number): boolean {
  if (cp < 0x80) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d);
  return (
    cp === 0x85 || cp === 0xa0 || cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000
  );
}

/** General category C*, except the three whitespace controls that BERT turns into spaces. */
function isControl(cp: number): boolean {
  if (cp === 0x09 || cp === 0x0a || cp === 0x0d) return false;
  if (cp < 0x80) return cp < 0x20 || cp === 0x7f;
  return RE_OTHER.test(String.fromCodePoint(cp));
}

/** ASCII symbols count as punctuation for BERT ($, +, <, =, >, ^, `, |, ~ are not P* in Unicode). */
function isPunctuation(cp: number): boolean {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  }
  return RE_PUNCT.test(String.fromCodePoint(cp));
}

/** The ranges of the Rust crate, including its U+2B920 start (Python BERT has U+2B820). */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

interface AddedToken {
  readonly content: string;
  readonly id: number;
  /** Matched in the normalised text by HF; approximated here by a case-insensitive match when lower-casing. */
  readonly normalized: boolean;
}

interface NormalizerFlags {
  cleanText: boolean;
  handleChineseChars: boolean;
  stripAccents: boolean;
  lowercase: boolean;
}

interface TokenizerSpec extends NormalizerFlags {
  /** WordPiece vocabulary: what the greedy match looks up. */
  vocab: Map<string, number>;
  /** All tokens by id (vocabulary and added tokens). */
  idToToken: Array<string | undefined>;
  unkToken: string;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
  added: AddedToken[];
  /** Template tokens before and after the text. */
  prefix: Array<{ id: number; token: string }>;
  suffix: Array<{ id: number; token: string }>;
  special: SpecialTokens;
  maxLength: number;
}

/** A match table for one kind of piece (word-initial, or continuing without its "##"). */
interface PieceTable {
  ids: Map<string, number>;
  tokens: Map<string, string>;
  /** Longest entry in code points: bounds the greedy match so long words stay linear. */
  maxChars: number;
}

function pieceTable(entries: Iterable<[string, number, string]>): PieceTable {
  const table: PieceTable = { ids: new Map(), tokens: new Map(), maxChars: 1 };
  for (const [key, id, token] of entries) {
    if (key === '') continue;
    table.ids.set(key, id);
    table.tokens.set(key, token);
    let n = 0;
    for (const _ of key) n++;
    if (n > table.maxChars) table.maxChars = n;
  }
  return table;
}

/** Tokens found so far, as parallel arrays: one object per token made long texts GC-bound. */
class ContentTokens {
  ids: number[] = [];
  tokens: string[] = [];
  starts: number[] = [];
  ends: number[] = [];
  words: number[] = [];
  get length(): number {
    return this.ids.length;
  }
  push(id: number, token: string, start: number, end: number, word: number): void {
    this.ids.push(id);
    this.tokens.push(token);
    this.starts.push(start);
    this.ends.push(end);
    this.words.push(word);
  }
}

class WordPieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  private readonly spec: TokenizerSpec;
  private readonly unkId: number;
  private readonly initial: PieceTable;
  private readonly continuing: PieceTable;
  private readonly addedById = new Map<string, number>();
  /** Lower-cased content → id, for added tokens matched case-insensitively. */
  private readonly addedFoldedById = new Map<string, number>();
  private readonly addedExact: RegExp | null;
  private readonly addedFolded: RegExp | null;

  constructor(spec: TokenizerSpec) {
    this.spec = spec;
    this.vocabSize = spec.idToToken.length;
    this.special = { ...spec.special };
    this.unkId = spec.vocab.get(spec.unkToken) as number;
    const prefix = spec.continuingSubwordPrefix;
    const entries = [...spec.vocab];
    this.initial = pieceTable(entries.map(([token, id]) => [token, id, token]));
    this.continuing = pieceTable(
      entries.filter(([token]) => token.startsWith(prefix)).map(([token, id]) => [token.slice(prefix.length), id, token]),
    );
    for (const a of spec.added) this.addedById.set(a.content, a.id);
    const exact = spec.added.filter((a) => !(a.normalized && spec.lowercase));
    const folded = spec.added.filter((a) => a.normalized && spec.lowercase);
    for (const a of folded) this.addedFoldedById.set(a.content.toLowerCase(), a.id);
    this.addedExact = alternation(exact, 'gu');
    this.addedFolded = alternation(folded, 'giu');
  }

  idToToken(id: number): string {
    const token = Number.isInteger(id) ? this.spec.idToToken[id] : undefined;
    if (token === undefined) throw new UsageError(`token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    return token;
  }

  tokenToId(token: string): number | undefined {
    return this.addedById.get(token) ?? this.spec.vocab.get(token);
  }

  encode(text: string, options: EncodeOptions = {}): Encoding {
    const spec = this.spec;
    const nSpecial = spec.prefix.length + spec.suffix.length;
    const maxLength = options.maxLength ?? spec.maxLength;
    if (!Number.isInteger(maxLength) || maxLength < nSpecial + 1) {
      throw new UsageError(`maxLength must be an integer of at least ${nSpecial + 1}, got ${maxLength}`);
    }
    if (text.trim() === '') throw new InputError('the text is empty');

    const words: Word[] = [];
    const content = new ContentTokens();
    // The word being built: normalised code points and, per code point, its span in `text`.
    // Reused across words (cleared, not reallocated).
    const cps: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const flush = (): void => {
      if (cps.length === 0) return;
      const start = starts[0];
      const end = ends[ends.length - 1];
      const word = words.length;
      words.push({ text: text.slice(start, end), start, end });
      this.wordPiece(cps, starts, ends, word, content);
      cps.length = 0;
      starts.length = 0;
      ends.length = 0;
    };
    const push = (cp: number, start: number, end: number): void => {
      cps.push(cp);
      starts.push(start);
      ends.push(end);
    };

    for (const segment of this.splitAdded(text)) {
      if (segment.id !== undefined) {
        flush();
        const word = words.length;
        words.push({ text: text.slice(segment.start, segment.end), start: segment.start, end: segment.end });
        content.push(segment.id, this.idToToken(segment.id), segment.start, segment.end, word);
        continue;
      }
      let i = segment.start;
      while (i < segment.end) {
        const cp = text.codePointAt(i) as number;
        const next = i + (cp > 0xffff ? 2 : 1);
        if (spec.cleanText && (cp === 0 || cp === 0xfffd || isControl(cp))) {
          // Dropped without a boundary: "a\u200bb" stays one word, as in BERT.
        } else if (isWhitespace(cp)) {
          flush();
        } else if (cp < 0x80) {
          // ASCII has no accents and one-to-one case mapping: skip the string round trip.
          if (isPunctuation(cp)) {
            flush();
            push(cp, i, next);
            flush();
          } else {
            push(spec.lowercase && cp >= 65 && cp <= 90 ? cp + 32 : cp, i, next);
          }
        } else {
          const isolate = spec.handleChineseChars && isChineseChar(cp);
          if (isolate) flush();
          for (const char of this.normalizeChar(cp)) {
            const c = char.codePointAt(0) as number;
            if (isWhitespace(c)) {
              flush();
            } else if (isPunctuation(c)) {
              flush();
              push(c, i, next);
              flush();
            } else {
              push(c, i, next);
            }
          }
          if (isolate) flush();
        }
        i = next;
      }
      flush();
    }
    if (content.length === 0) {
      throw new InputError('the text is empty after normalisation (only control characters or accents)');
    }

    const room = maxLength - nSpecial;
    const truncated = content.length > room;
    const kept = truncated ? room : content.length;
    const keptWords = truncated ? words.slice(0, content.words[kept - 1] + 1) : words;
    if (truncated) {
      options.onWarning?.(
        `the text has ${content.length + nSpecial} tokens, more than maxLength ${maxLength}: ` +
          `kept the first ${room} (text up to character ${content.ends[kept - 1]} of ${text.length})`,
      );
    }

    const head = spec.prefix;
    const tail = spec.suffix;
    const total = head.length + kept + tail.length;
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: Array<[number, number]> = [];
    const wordIds: Array<number | null> = [];
    const special: boolean[] = [];
    for (const t of head) {
      ids.push(t.id);
      tokens.push(t.token);
      offsets.push([0, 0]);
      wordIds.push(null);
      special.push(true);
    }
    for (let k = 0; k < kept; k++) {
      ids.push(content.ids[k]);
      tokens.push(content.tokens[k]);
      offsets.push([content.starts[k], content.ends[k]]);
      wordIds.push(content.words[k]);
      special.push(false);
    }
    for (const t of tail) {
      ids.push(t.id);
      tokens.push(t.token);
      offsets.push([0, 0]);
      wordIds.push(null);
      special.push(true);
    }
    return {
      ids,
      tokens,
      offsets,
      wordIds,
      words: keptWords,
      special,
      attentionMask: new Array<number>(total).fill(1),
      truncated,
    };
  }

  /** BertNormalizer on one non-ASCII code point: NFD accent stripping, then lower-casing (the Rust order). */
  private normalizeChar(cp: number): string {
    const spec = this.spec;
    let s = String.fromCodePoint(cp);
    if (spec.stripAccents) s = s.normalize('NFD').replace(RE_NONSPACING_MARK, '');
    if (!spec.lowercase) return s;
    // Per code point, like Rust's char::to_lowercase: no final-sigma context, so Σ is always σ.
    let out = '';
    for (const c of s) out += c.toLowerCase();
    return out;
  }

  /** Greedy longest-match-first WordPiece; an unmatchable or too-long word is one [UNK]. */
  private wordPiece(cps: number[], starts: number[], ends: number[], word: number, out: ContentTokens): void {
    const spec = this.spec;
    const n = cps.length;
    if (n > spec.maxInputCharsPerWord) {
      out.push(this.unkId, spec.unkToken, starts[0], ends[n - 1], word);
      return;
    }
    const joined = String.fromCodePoint(...cps);
    // UTF-16 position of each code point boundary (the identity unless the word has astral chars).
    let at: number[] | null = null;
    if (joined.length !== n) {
      at = new Array<number>(n + 1);
      at[0] = 0;
      for (let k = 0; k < n; k++) at[k + 1] = at[k] + (cps[k] > 0xffff ? 2 : 1);
    }
    const before = out.length;
    let start = 0;
    while (start < n) {
      const table = start === 0 ? this.initial : this.continuing;
      let end = Math.min(n, start + table.maxChars);
      let id: number | undefined;
      let key = '';
      while (end > start) {
        key = at === null ? joined.slice(start, end) : joined.slice(at[start], at[end]);
        id = table.ids.get(key);
        if (id !== undefined) break;
        end--;
      }
      if (id === undefined) {
        // Undo the pieces matched so far: the whole word becomes one [UNK].
        for (const column of [out.ids, out.tokens, out.starts, out.ends, out.words]) column.length = before;
        out.push(this.unkId, spec.unkToken, starts[0], ends[n - 1], word);
        return;
      }
      out.push(id, table.tokens.get(key) as string, starts[start], ends[end - 1], word);
      start = end;
    }
  }

  /** Splits the raw text around added tokens ([CLS], [MASK], …) that appear in it, as HF does. */
  private splitAdded(text: string): Array<{ start: number; end: number; id?: number }> {
    if (this.addedExact === null && this.addedFolded === null) return [{ start: 0, end: text.length }];
    const segments: Array<{ start: number; end: number; id?: number }> = [];
    let pos = 0;
    for (;;) {
      const a = nextMatch(this.addedExact, text, pos);
      const b = nextMatch(this.addedFolded, text, pos);
      const m = a === null ? b : b === null ? a : b.index < a.index || (b.index === a.index && b.length > a.length) ? b : a;
      if (m === null) break;
      if (m.index > pos) segments.push({ start: pos, end: m.index });
      const matched = text.slice(m.index, m.index + m.length);
      const id = m === a ? this.addedById.get(matched) : this.addedFoldedById.get(matched.toLowerCase());
      segments.push({ start: m.index, end: m.index + m.length, id: id ?? this.unkId });
      pos = m.index + m.length;
    }
    if (pos < text.length) segments.push({ start: pos, end: text.length });
    return segments;
  }
}

function alternation(tokens: AddedToken[], flags: string): RegExp | null {
  const contents = [...new Set(tokens.map((t) => t.content).filter((c) => c.length > 0))];
  if (contents.length === 0) return null;
  // Longest first, so "[MASK]x" style overlaps take the longest token, as HF's trie does.
  contents.sort((x, y) => y.length - x.length);
  return new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), flags);
}

function nextMatch(re: RegExp | null, text: string, from: number): { index: number; length: number } | null {
  if (re === null) return null;
  re.lastIndex = from;
  const m = re.exec(text);
  return m === null ? null : { index: m.index, length: m[0].length };
}


// ---------------------------------------------------------------------------------------------
// Building a tokenizer from a model folder's files

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseJson(file: TokenizerFile): Json {
  let value: unknown;
  try {
    value = JSON.parse(file.text);
  } catch (err) {
    throw new CheckpointError(`not valid JSON (${(err as Error).message})`, file.path);
  }
  if (!isObject(value)) throw new CheckpointError('expected a JSON object', file.path);
  return value;
}

function flag(value: unknown, fallback: boolean, name: string, path: string | undefined): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new CheckpointError(`${name} must be true or false, got ${JSON.stringify(value)}`, path);
  return value;
}

/** Special tokens in tokenizer_config.json are strings, or AddedToken objects in older files. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

interface TokenNames {
  cls?: string;
  sep?: string;
  pad?: string;
  unk?: string;
  mask?: string;
}

/** What tokenizer_config.json, special_tokens_map.json and config.json say about the tokenizer. */
interface FolderConfig {
  /** Only the flags the file sets explicitly: transformers lets them override tokenizer.json. */
  lowercase?: boolean;
  stripAccents?: boolean;
  handleChineseChars?: boolean;
  modelMaxLength?: number;
  maxPositions?: number;
  names: TokenNames;
  added: AddedToken[];
}

function readFolderConfig(files: TokenizerFiles): FolderConfig {
  const out: FolderConfig = { names: {}, added: [] };
  const readNames = (json: Json): void => {
    for (const key of ['cls', 'sep', 'pad', 'unk', 'mask'] as const) {
      const content = tokenContent(json[`${key}_token`]);
      if (content !== undefined) out.names[key] ??= content;
    }
  };
  if (files.tokenizerConfig) {
    const { path } = files.tokenizerConfig;
    const json = parseJson(files.tokenizerConfig);
    if (json.do_lower_case != null) out.lowercase = flag(json.do_lower_case, true, 'do_lower_case', path);
    if (json.strip_accents != null) out.stripAccents = flag(json.strip_accents, true, 'strip_accents', path);
    if (json.tokenize_chinese_chars != null) {
      out.handleChineseChars = flag(json.tokenize_chinese_chars, true, 'tokenize_chinese_chars', path);
    }
    const m = json.model_max_length;
    if (typeof m === 'number' && Number.isInteger(m) && m > 0 && m < UNSET_MAX_LENGTH) out.modelMaxLength = m;
    readNames(json);
    if (isObject(json.added_tokens_decoder)) {
      for (const [key, value] of Object.entries(json.added_tokens_decoder)) {
        const id = Number(key);
        const content = tokenContent(value);
        if (!Number.isInteger(id) || id < 0 || content === undefined) {
          throw new CheckpointError(`added_tokens_decoder entry ${JSON.stringify(key)} is not a token`, path);
        }
        const special = isObject(value) && value.special === true;
        const normalized = isObject(value) && typeof value.normalized === 'boolean' ? value.normalized : !special;
        out.added.push({ content, id, normalized });
      }
    }
  }
  if (files.specialTokensMap) readNames(parseJson(files.specialTokensMap));
  if (files.modelConfig) {
    const p = parseJson(files.modelConfig).max_position_embeddings;
    if (typeof p === 'number' && Number.isInteger(p) && p > 0) out.maxPositions = p;
  }
  return out;
}

/** model_max_length, bounded by the model's position table so the default never overruns it. */
function defaultMaxLength(config: FolderConfig, fromTokenizerJson?: number): number {
  const stated = config.modelMaxLength ?? fromTokenizerJson ?? config.maxPositions ?? DEFAULT_MAX_LENGTH;
  return config.maxPositions !== undefined ? Math.min(stated, config.maxPositions) : stated;
}

interface Template {
  prefix: Array<{ id: number; token: string }>;
  suffix: Array<{ id: number; token: string }>;
}

function lookup(vocab: Map<string, number>, added: AddedToken[], token: string): number | undefined {
  return added.find((a) => a.content === token)?.id ?? vocab.get(token);
}

function checkTemplate(t: Template, path: string | undefined): Template {
  if (t.prefix.length === 0 || t.suffix.length === 0) {
    throw new CheckpointError(
      'the post_processor must put a special token before and after the text ([CLS] … [SEP]) for a BERT-style classifier',
      path,
    );
  }
  return t;
}

function parsePostProcessor(value: unknown, fallback: () => Template, path: string): Template {
  if (value === null || value === undefined) return fallback();
  if (!isObject(value)) throw new CheckpointError('post_processor must be an object', path);
  const pair = (v: unknown, name: string): { token: string; id: number } => {
    if (!Array.isArray(v) || typeof v[0] !== 'string' || !Number.isInteger(v[1])) {
      throw new CheckpointError(`post_processor.${name} must be [token, id]`, path);
    }
    return { token: v[0], id: v[1] as number };
  };
  switch (value.type) {
    case 'BertProcessing':
    case 'RobertaProcessing':
      return checkTemplate({ prefix: [pair(value.cls, 'cls')], suffix: [pair(value.sep, 'sep')] }, path);
    case 'TemplateProcessing': {
      const single = value.single;
      const specials = isObject(value.special_tokens) ? value.special_tokens : {};
      if (!Array.isArray(single)) throw new CheckpointError('post_processor.single must be a list', path);
      const out: Template = { prefix: [], suffix: [] };
      let seenSequence = false;
      for (const piece of single) {
        if (isObject(piece) && isObject(piece.Sequence)) {
          if (seenSequence) throw new CheckpointError('post_processor.single has more than one sequence', path);
          seenSequence = true;
        } else if (isObject(piece) && isObject(piece.SpecialToken) && typeof piece.SpecialToken.id === 'string') {
          const name = piece.SpecialToken.id;
          const entry = specials[name];
          if (!isObject(entry) || !Array.isArray(entry.ids) || !Array.isArray(entry.tokens) || entry.ids.length !== entry.tokens.length) {
            throw new CheckpointError(`post_processor.special_tokens has no ids for "${name}"`, path);
          }
          const tokens = entry.tokens as unknown[];
          (entry.ids as unknown[]).forEach((id, k) => {
            if (!Number.isInteger(id) || typeof tokens[k] !== 'string') {
              throw new CheckpointError(`post_processor.special_tokens["${name}"] is malformed`, path);
            }
            (seenSequence ? out.suffix : out.prefix).push({ id: id as number, token: tokens[k] as string });
          });
        } else {
          throw new CheckpointError(`post_processor.single has an entry that is not a SpecialToken or Sequence`, path);
        }
      }
      if (!seenSequence) throw new CheckpointError('post_processor.single has no sequence', path);
      return checkTemplate(out, path);
    }
    case 'Sequence': {
      // Other processors in a Sequence (ByteLevel) only trim offsets, which WordPiece never needs.
      const processors = Array.isArray(value.processors) ? value.processors : [];
      const main = processors.find(
        (p) => isObject(p) && ['BertProcessing', 'RobertaProcessing', 'TemplateProcessing'].includes(p.type as string),
      );
      return main === undefined ? fallback() : parsePostProcessor(main, fallback, path);
    }
    default:
      throw new CheckpointError(`post_processor type ${JSON.stringify(value.type)} is not supported`, path);
  }
}

interface ParsedNormalizer {
  cleanText: boolean;
  handleChineseChars: boolean;
  /** null: follows lowercase, as in BertNormalizer. */
  stripAccents: boolean | null;
  lowercase: boolean;
}

function parseNormalizer(value: unknown, path: string): ParsedNormalizer {
  if (value === null || value === undefined) {
    return { cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false };
  }
  if (!isObject(value)) throw new CheckpointError('normalizer must be an object', path);
  if (value.type === 'Sequence' && Array.isArray(value.normalizers) && value.normalizers.length === 1) {
    return parseNormalizer(value.normalizers[0], path);
  }
  if (value.type !== 'BertNormalizer') {
    throw new CheckpointError(
      `normalizer ${JSON.stringify(value.type)} is not supported: BERT-style tokenizers use BertNormalizer`,
      path,
    );
  }
  return {
    cleanText: flag(value.clean_text, true, 'normalizer.clean_text', path),
    handleChineseChars: flag(value.handle_chinese_chars, true, 'normalizer.handle_chinese_chars', path),
    stripAccents: value.strip_accents == null ? null : flag(value.strip_accents, false, 'normalizer.strip_accents', path),
    lowercase: flag(value.lowercase, true, 'normalizer.lowercase', path),
  };
}

function checkPreTokenizer(value: unknown, path: string): void {
  const ok = (v: unknown): boolean =>
    isObject(v) &&
    (v.type === 'BertPreTokenizer' ||
      (v.type === 'Sequence' && Array.isArray(v.pretokenizers) && v.pretokenizers.length === 1 && ok(v.pretokenizers[0])));
  if (!ok(value)) {
    const type = isObject(value) ? JSON.stringify(value.type) : String(value);
    throw new CheckpointError(`pre_tokenizer ${type} is not supported: BERT-style tokenizers use BertPreTokenizer`, path);
  }
}

/** Checks the ids every BERT classifier needs and builds the remaining fields of the spec. */
function finishSpec(
  base: Omit<TokenizerSpec, 'special' | 'idToToken'> & { extraIds: Array<[number, string]> },
  names: TokenNames,
  padId: number | undefined,
  path: string | undefined,
): TokenizerSpec {
  const { vocab, added } = base;
  const need = (name: string, token: string): number => {
    const id = lookup(vocab, added, token);
    if (id === undefined) throw new CheckpointError(`the vocabulary has no ${name} token ${JSON.stringify(token)}`, path);
    return id;
  };
  if (!vocab.has(base.unkToken)) {
    throw new CheckpointError(`the vocabulary has no unknown token ${JSON.stringify(base.unkToken)}`, path);
  }
  const pad = padId ?? need('padding', names.pad ?? '[PAD]');
  const maskId = lookup(vocab, added, names.mask ?? '[MASK]');
  const special: SpecialTokens = {
    cls: base.prefix[0].id,
    sep: base.suffix[base.suffix.length - 1].id,
    pad,
    unk: vocab.get(base.unkToken) as number,
    mask: maskId ?? null,
  };
  let size = 0;
  for (const id of vocab.values()) size = Math.max(size, id + 1);
  for (const [id] of base.extraIds) size = Math.max(size, id + 1);
  const idToToken = new Array<string | undefined>(size).fill(undefined);
  for (const [token, id] of vocab) idToToken[id] = token;
  for (const [id, token] of base.extraIds) idToToken[id] = token;
  const { extraIds: _unused, ...rest } = base;
  return { ...rest, idToToken, special };
}

function specFromTokenizerJson(file: TokenizerFile, config: FolderConfig): TokenizerSpec {
  const { path } = file;
  const root = parseJson(file);
  const model = root.model;
  if (!isObject(model)) throw new CheckpointError('has no "model" object', path);
  if (model.type !== 'WordPiece') {
    throw new CheckpointError(
      model.type === undefined
        ? 'model.type is missing: only WordPiece (BERT-style) tokenizers are supported'
        : `model type ${JSON.stringify(model.type)} is not supported: only WordPiece (BERT-style) tokenizers are`,
      path,
    );
  }
  if (!isObject(model.vocab)) throw new CheckpointError('model.vocab must be an object of token → id', path);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new CheckpointError(`model.vocab[${JSON.stringify(token)}] is not a token id`, path);
    }
    vocab.set(token, id as number);
  }
  if (vocab.size === 0) throw new CheckpointError('model.vocab is empty', path);
  const text = (v: unknown, fallback: string, name: string): string => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new CheckpointError(`${name} must be a string`, path);
    return v;
  };
  const unkToken = text(model.unk_token, '[UNK]', 'model.unk_token');
  const continuingSubwordPrefix = text(model.continuing_subword_prefix, '##', 'model.continuing_subword_prefix');
  const maxChars = model.max_input_chars_per_word ?? 100;
  if (!Number.isInteger(maxChars) || (maxChars as number) < 1) {
    throw new CheckpointError('model.max_input_chars_per_word must be a positive integer', path);
  }

  const normalizer = parseNormalizer(root.normalizer, path);
  checkPreTokenizer(root.pre_tokenizer, path);
  const lowercase = config.lowercase ?? normalizer.lowercase;
  const stripAccents = config.stripAccents ?? normalizer.stripAccents ?? lowercase;

  const added: AddedToken[] = [];
  const extraIds: Array<[number, string]> = [];
  if (root.added_tokens !== undefined && root.added_tokens !== null) {
    if (!Array.isArray(root.added_tokens)) throw new CheckpointError('added_tokens must be a list', path);
    for (const a of root.added_tokens) {
      if (!isObject(a) || typeof a.content !== 'string' || !Number.isInteger(a.id) || (a.id as number) < 0) {
        throw new CheckpointError('added_tokens has an entry without content and id', path);
      }
      const normalized = typeof a.normalized === 'boolean' ? a.normalized : a.special !== true;
      added.push({ content: a.content, id: a.id as number, normalized });
      extraIds.push([a.id as number, a.content]);
    }
  }

  const names = config.names;
  const fallback = (): Template => {
    // No post_processor: HF would add nothing, but a classifier's head reads [CLS], so add them.
    const cls = names.cls ?? '[CLS]';
    const sep = names.sep ?? '[SEP]';
    const clsId = lookup(vocab, added, cls);
    const sepId = lookup(vocab, added, sep);
    if (clsId === undefined || sepId === undefined) {
      throw new CheckpointError(`has no post_processor and no ${cls}/${sep} tokens to put around the text`, path);
    }
    return { prefix: [{ id: clsId, token: cls }], suffix: [{ id: sepId, token: sep }] };
  };
  const template = parsePostProcessor(root.post_processor, fallback, path);

  const padding = isObject(root.padding) ? root.padding : undefined;
  const padId = padding && Number.isInteger(padding.pad_id) && names.pad === undefined ? (padding.pad_id as number) : undefined;
  const truncation = isObject(root.truncation) ? root.truncation : undefined;
  const truncLength = truncation && Number.isInteger(truncation.max_length) ? (truncation.max_length as number) : undefined;

  return finishSpec(
    {
      vocab,
      extraIds,
      unkToken,
      continuingSubwordPrefix,
      maxInputCharsPerWord: maxChars as number,
      cleanText: normalizer.cleanText,
      handleChineseChars: config.handleChineseChars ?? normalizer.handleChineseChars,
      stripAccents,
      lowercase,
      added,
      ...template,
      maxLength: defaultMaxLength(config, truncLength),
    },
    names,
    padId,
    path,
  );
}

interface VocabOptions {
  lowercase: boolean;
  stripAccents: boolean;
  handleChineseChars: boolean;
  maxLength: number;
  names: TokenNames;
  added: AddedToken[];
}

function specFromVocab(list: string[], options: VocabOptions, path: string | undefined): TokenizerSpec {
  if (list.length === 0) throw new CheckpointError('the vocabulary is empty', path);
  const vocab = new Map<string, number>();
  // Later duplicates win, as in BertTokenizer's load_vocab; the id stays the line number.
  list.forEach((token, id) => vocab.set(token, id));
  const extraIds: Array<[number, string]> = list.map((token, id) => [id, token]);
  const names = options.names;
  const unkToken = names.unk ?? '[UNK]';
  const cls = names.cls ?? '[CLS]';
  const sep = names.sep ?? '[SEP]';
  // As transformers' conversion of a vocab.txt does: special tokens are added tokens, matched in
  // the raw text before normalisation, so "[MASK]" typed in the text is the mask token.
  const added = [...options.added];
  for (const name of [cls, sep, names.pad ?? '[PAD]', unkToken, names.mask ?? '[MASK]']) {
    const id = vocab.get(name);
    if (id !== undefined && !added.some((a) => a.content === name)) added.push({ content: name, id, normalized: false });
  }
  for (const a of options.added) if (a.id >= list.length) extraIds.push([a.id, a.content]);
  const clsId = lookup(vocab, added, cls);
  const sepId = lookup(vocab, added, sep);
  if (clsId === undefined) throw new CheckpointError(`the vocabulary has no classifier token ${JSON.stringify(cls)}`, path);
  if (sepId === undefined) throw new CheckpointError(`the vocabulary has no separator token ${JSON.stringify(sep)}`, path);
  return finishSpec(
    {
      vocab,
      extraIds,
      unkToken,
      continuingSubwordPrefix: '##',
      maxInputCharsPerWord: 100,
      cleanText: true,
      handleChineseChars: options.handleChineseChars,
      stripAccents: options.stripAccents,
      lowercase: options.lowercase,
      added,
      prefix: [{ id: clsId, token: cls }],
      suffix: [{ id: sepId, token: sep }],
      maxLength: options.maxLength,
    },
    names,
    undefined,
    path,
  );
}

function parseVocabTxt(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  // Only a CR before the newline is dropped: other whitespace can be part of a token.
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/**
 * A BERT WordPiece tokenizer from a vocabulary list (id = index), with BertTokenizer's defaults:
 * lower-casing on, accents stripped when lower-casing, CJK characters split, maxLength 512.
 */
export function tokenizerFromVocab(
  vocab: string[],
  options: { lowercase?: boolean; stripAccents?: boolean; maxLength?: number } = {},
): Tokenizer {
  const lowercase = options.lowercase ?? true;
  return new WordPieceTokenizer(
    specFromVocab(
      vocab,
      {
        lowercase,
        stripAccents: options.stripAccents ?? lowercase,
        handleChineseChars: true,
        maxLength: options.maxLength ?? DEFAULT_MAX_LENGTH,
        names: {},
        added: [],
      },
      undefined,
    ),
  );
}

/**
 * A tokenizer from the contents of a model folder's files (for the renderer, which has no file
 * system): tokenizer.json if given, else vocab.txt with tokenizer_config.json's flags.
 */
export function tokenizerFromFiles(files: TokenizerFiles): Tokenizer {
  const config = readFolderConfig(files);
  if (files.tokenizerJson) return new WordPieceTokenizer(specFromTokenizerJson(files.tokenizerJson, config));
  if (!files.vocabTxt) throw new CheckpointError('no tokenizer.json or vocab.txt given');
  const lowercase = config.lowercase ?? true;
  return new WordPieceTokenizer(
    specFromVocab(
      parseVocabTxt(files.vocabTxt.text),
      {
        lowercase,
        stripAccents: config.stripAccents ?? lowercase,
        handleChineseChars: config.handleChineseChars ?? true,
        maxLength: defaultMaxLength(config),
        names: config.names,
        added: config.added,
      },
      files.vocabTxt.path,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Node: files

async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  return import('node:fs/promises');
}

/** Reads an optional file of a model folder; undefined when it is not there. */
async function readOptional(path: string): Promise<TokenizerFile | undefined> {
  const fs = await nodeFs();
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot be read (${(err as Error).message})`, path);
  }
  try {
    return { path, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    throw new CheckpointError(`not UTF-8 text (invalid byte at offset ${firstInvalidUtf8(bytes)})`, path);
  }
}

/** From a model folder: tokenizer.json if present, else vocab.txt (+ tokenizer_config.json). */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const fs = await nodeFs();
  const { join } = await import('node:path');
  let isDir: boolean;
  try {
    isDir = (await fs.stat(dir)).isDirectory();
  } catch {
    throw new CheckpointError('model folder not found', dir);
  }
  if (!isDir) throw new CheckpointError('is not a folder (expected a model folder with tokenizer.json or vocab.txt)', dir);
  const [tokenizerJson, tokenizerConfig, specialTokensMap, modelConfig] = await Promise.all(
    ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'config.json'].map((name) =>
      readOptional(join(dir, name)),
    ),
  );
  const vocabTxt = tokenizerJson ? undefined : await readOptional(join(dir, 'vocab.txt'));
  if (!tokenizerJson && !vocabTxt) throw new CheckpointError('has no tokenizer.json or vocab.txt', dir);
  return tokenizerFromFiles({ tokenizerJson, vocabTxt, tokenizerConfig, specialTokensMap, modelConfig });
}

/** Byte offset of the first byte that breaks UTF-8 (for the error message), or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let n: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Reads a text file for the CLI; InputError naming the file when it is missing, not UTF-8 or empty. */
export async function readTextFile(path: string): Promise<string> {
  const fs = await nodeFs();
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') throw new InputError('file not found', path);
    if (code === 'EISDIR') throw new InputError('is a folder, not a text file', path);
    throw new InputError(`cannot be read (${(err as Error).message})`, path);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const utf16 = bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
    throw new InputError(
      utf16
        ? 'is UTF-16 text; save it as UTF-8'
        : `is not UTF-8 text (invalid byte 0x${bytes[firstInvalidUtf8(bytes)]?.toString(16).padStart(2, '0')} at byte ${firstInvalidUtf8(bytes)}); save it as UTF-8`,
      path,
    );
  }
  if (text.trim() === '') throw new InputError(bytes.length === 0 ? 'the file is empty' : 'the file has only whitespace', path);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Relevance

/**
 * Relevance per word: the sum over its tokens, special tokens dropped. A sum (not a mean or max)
 * so that the word totals equal the token totals, which keeps conservation checks meaningful.
 */
export function wordRelevance(encoding: Encoding, tokenRelevance: ArrayLike<number>): number[] {
  if (tokenRelevance.length !== encoding.tokens.length) {
    throw new UsageError(
      `token relevance has ${tokenRelevance.length} values for ${encoding.tokens.length} tokens`,
    );
  }
  const out = new Array<number>(encoding.words.length).fill(0);
  for (let t = 0; t < encoding.wordIds.length; t++) {
    const w = encoding.wordIds[t];
    if (w !== null && !encoding.special[t]) out[w] += tokenRelevance[t];
  }
  return out;
}
