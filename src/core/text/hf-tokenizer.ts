/**
 * Any HuggingFace `tokenizer.json` (byte-level BPE as GPT-2, RoBERTa, Llama 3 and Qwen2 ship it;
 * SentencePiece-style Metaspace BPE with byte fallback as Llama 2, Mistral and Gemma ship it;
 * Unigram as T5 and XLM-R ship it) turned into relprop's `Encoding`, with character offsets into the
 * original text so relevance can be drawn back onto the words typed.
 *
 * The tokens come from HuggingFace's own JavaScript tokenizers (`@huggingface/tokenizers`), which
 * reproduce the Rust crate's ids but return no offsets. The offsets are derived here, walking the
 * same steps the package walks (split around added tokens, normalise, split around normalised added
 * tokens, pre-tokenise, model), with two pieces of bookkeeping:
 *   - the normaliser is replayed with a map from every normalised character to the original span it
 *     came from, and the replay must give exactly the package's normalised string (else an error,
 *     never a guess);
 *   - each model token's text (its bytes for byte-level tokens and `<0xNN>` pieces, ▁ read as a
 *     space) is matched against the normalised text in order; spaces a pre-tokeniser inserts
 *     (add_prefix_space, Metaspace's prepend) take no room, whitespace it drops is stepped over.
 * A token holding only part of a character's UTF-8 bytes gets that whole character's span, as HF's
 * own alignment does. A token that does not match is an error naming tokenizer.json.
 *
 * Words (what a highlight covers) are SentencePiece's and GPT-2's: a new word starts where a token
 * begins with whitespace, at every pre-tokeniser piece, and around added tokens.
 */
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { CheckpointError, InputError, UsageError } from '../errors.js';
import type { Encoding, SpecialTokens, Tokenizer, TokenizerFile, Word } from './tokenizer.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The tokenizer.json model types this module reads. */
export const HF_MODEL_TYPES = ['BPE', 'Unigram', 'WordPiece'] as const;

export interface HfEncodeOptions {
  /** Most tokens, the template's included. Default: tokenizer_config's model_max_length, else no limit. */
  readonly maxLength?: number;
  /** Which end a too-long text loses: 'right' (HF's default) or 'left' (keeps the end, for decoders). */
  readonly truncation?: 'left' | 'right';
  /** Put the template's tokens (BOS, <s> … </s>) around the text. Default true. */
  readonly addSpecialTokens?: boolean;
  readonly onWarning?: (message: string) => void;
}

/** Special tokens by role; null where the tokenizer has none. */
export interface HfSpecialIds {
  readonly bos: number | null;
  readonly eos: number | null;
  readonly pad: number | null;
  readonly unk: number | null;
  readonly mask: number | null;
}

/** What the package's objects hold at run time (its typings declare less). */
interface RtNormalizer {
  readonly config: Json;
  readonly normalizers?: Array<RtNormalizer | null>;
  readonly pattern?: RegExp | null;
  normalize(text: string): string;
}
interface RtAdded {
  readonly content: string;
  readonly id: number;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}
interface RtTokenizer {
  readonly normalizer: RtNormalizer | null;
  readonly pre_tokenizer: ((text: string, options: { section_index: number }) => string[]) | null;
  readonly model: ((pieces: string[]) => string[]) & { tokens_to_ids: Map<string, number>; unk_token_id?: number; unk_token?: string };
  readonly splitter_unnormalized: { split(text: string): string[] };
  readonly splitter_normalized: { split(text: string): string[] };
  readonly added_tokens_map: Map<string, RtAdded>;
  readonly remove_space?: boolean;
  readonly do_lowercase_and_remove_accent?: boolean;
  id_to_token(id: number): string | undefined;
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
}

/** GPT-2's bytes_to_unicode, inverted: a byte-level token's symbol → its byte. */
const SYMBOL_BYTE: ReadonlyMap<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  return map;
})();
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();
const isWs = (s: string) => /^\s+$/u.test(s);

/** A string with, per UTF-16 unit, the span of the original text it came from. */
interface Aligned {
  text: string;
  starts: number[];
  ends: number[];
}

function slice(a: Aligned, from: number, to: number): Aligned {
  return { text: a.text.slice(from, to), starts: a.starts.slice(from, to), ends: a.ends.slice(from, to) };
}

/** Characters with any combining marks after them: the unit a per-character normaliser is replayed on. */
const SEGMENT = /\P{M}\p{M}*|\p{M}+/gsu;

/** Per-segment and whole-string agree for the normalisers that act on characters (NFKC, lowercase, …). */
function mapSegments(a: Aligned, f: (s: string) => string): Aligned {
  const out: Aligned = { text: '', starts: [], ends: [] };
  for (const m of a.text.matchAll(SEGMENT)) {
    const from = m.index!;
    const to = from + m[0].length;
    const start = Math.min(...a.starts.slice(from, to));
    const end = Math.max(...a.ends.slice(from, to));
    const replaced = f(m[0]);
    out.text += replaced;
    for (let k = 0; k < replaced.length; k++) {
      out.starts.push(start);
      out.ends.push(end);
    }
  }
  return out;
}

function replaceAligned(a: Aligned, pattern: RegExp, content: string): Aligned {
  const out: Aligned = { text: '', starts: [], ends: [] };
  let pos = 0;
  const keep = (to: number) => {
    out.text += a.text.slice(pos, to);
    out.starts.push(...a.starts.slice(pos, to));
    out.ends.push(...a.ends.slice(pos, to));
  };
  pattern.lastIndex = 0;
  for (const m of a.text.matchAll(pattern)) {
    if (m[0].length === 0) continue;
    keep(m.index!);
    const to = m.index! + m[0].length;
    const start = Math.min(...a.starts.slice(m.index!, to));
    const end = Math.max(...a.ends.slice(m.index!, to));
    out.text += content;
    for (let k = 0; k < content.length; k++) {
      out.starts.push(start);
      out.ends.push(end);
    }
    pos = to;
  }
  keep(a.text.length);
  return out;
}

function normalizeAligned(n: RtNormalizer | null, a: Aligned): Aligned {
  if (n === null) return a;
  switch (n.config['type']) {
    case 'Sequence':
      return (n.normalizers ?? []).reduce((acc, step) => normalizeAligned(step, acc), a);
    case 'Prepend': {
      // The inserted marker stands for no original character: zero width at the text's start.
      const p = String(n.config['prepend'] ?? '');
      const at = a.starts[0] ?? 0;
      return { text: p + a.text, starts: [...new Array<number>(p.length).fill(at), ...a.starts], ends: [...new Array<number>(p.length).fill(at), ...a.ends] };
    }
    case 'Replace':
      return n.pattern ? replaceAligned(a, n.pattern, String(n.config['content'] ?? '')) : a;
    case 'Strip': {
      let from = 0;
      let to = a.text.length;
      if (n.config['strip_left']) from = a.text.length - a.text.trimStart().length;
      if (n.config['strip_right']) to = Math.max(from, a.text.trimEnd().length);
      return slice(a, from, to);
    }
    default:
      return mapSegments(a, (s) => n.normalize(s));
  }
}

/** A token's text as bytes, or null for an unknown token whose text is not known. */
type Surface = Uint8Array | null;

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly ids: HfSpecialIds;
  /** Where the tokenizer came from, for messages. */
  readonly path: string;
  /** The model type in tokenizer.json ('BPE', 'Unigram', 'WordPiece'). */
  readonly modelType: string;
  readonly byteLevel: boolean;
  readonly defaultMaxLength: number;
  private readonly hf: RtTokenizer;
  private readonly prefix: number[];
  private readonly suffix: number[];
  private readonly replacement: string;
  private readonly byteFallback: boolean;
  private readonly vocab: ReadonlyMap<string, number>;

  constructor(json: Json, config: Json, path: string) {
    this.path = path;
    const model = json['model'];
    if (!isObject(model)) throw new CheckpointError('has no "model" object', path);
    const type = model['type'];
    if (typeof type !== 'string' || !(HF_MODEL_TYPES as readonly string[]).includes(type)) {
      throw new CheckpointError(`model type ${JSON.stringify(type)} is not supported (supported: ${HF_MODEL_TYPES.join(', ')})`, path);
    }
    this.modelType = type;
    const vocab = model['vocab'];
    if (type === 'Unigram') {
      if (!Array.isArray(vocab) || vocab.length === 0) throw new CheckpointError('model.vocab must be a non-empty list of [piece, score]', path);
      vocab.forEach((e: unknown, i) => {
        if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !Number.isFinite(e[1])) {
          throw new CheckpointError(`model.vocab[${i}] is not a [piece, score] pair: ${JSON.stringify(e)}`, path);
        }
      });
      const unk = model['unk_id'];
      if (unk !== undefined && unk !== null && (typeof unk !== 'number' || !Number.isInteger(unk) || unk < 0 || unk >= vocab.length)) {
        throw new CheckpointError(`model.unk_id ${JSON.stringify(unk)} is not an index into model.vocab`, path);
      }
    } else {
      if (!isObject(vocab) || Object.keys(vocab).length === 0) throw new CheckpointError('model.vocab must be a non-empty object of token → id', path);
      for (const [token, id] of Object.entries(vocab)) {
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new CheckpointError(`model.vocab[${JSON.stringify(token)}] is ${JSON.stringify(id)}, not a token id`, path);
      }
      if (type === 'BPE' && !Array.isArray(model['merges'])) throw new CheckpointError('model.merges must be a list', path);
    }
    if (!Array.isArray(json['added_tokens'] ?? [])) throw new CheckpointError('added_tokens must be a list', path);
    for (const t of (json['added_tokens'] ?? []) as unknown[]) {
      if (!isObject(t) || typeof t['content'] !== 'string' || typeof t['id'] !== 'number') throw new CheckpointError(`added_tokens has an entry without content and id: ${JSON.stringify(t)}`, path);
    }
    if (config['remove_space'] === true || config['do_lowercase_and_remove_accent'] === true) {
      throw new CheckpointError('remove_space / do_lowercase_and_remove_accent are not supported (offsets could not be kept)', path);
    }
    try {
      const full = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json };
      this.hf = new HfTokenizerImpl(full, config) as unknown as RtTokenizer;
    } catch (err) {
      throw new CheckpointError(`cannot be loaded: ${(err as Error).message}`, path);
    }
    this.byteLevel = JSON.stringify(json['pre_tokenizer'] ?? null).includes('"ByteLevel"') || (isObject(json['decoder']) && JSON.stringify(json['decoder']).includes('"ByteLevel"'));
    const meta = JSON.stringify([json['pre_tokenizer'], json['decoder']]).match(/"replacement":"([^"]+)"/);
    this.replacement = meta ? JSON.parse(`"${meta[1]}"`) as string : '\u2581';
    this.byteFallback = model['byte_fallback'] === true;

    const all = new Map<string, number>(this.hf.model.tokens_to_ids);
    for (const t of this.hf.added_tokens_map.values()) all.set(t.content, t.id);
    this.vocab = all;
    let size = 0;
    for (const id of all.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;

    const { prefix, suffix } = template(json['post_processor'], path);
    const named = (key: string): number | null => {
      const v = config[key];
      const content = typeof v === 'string' ? v : isObject(v) && typeof v['content'] === 'string' ? v['content'] : null;
      if (content === null) return null;
      const id = all.get(content);
      if (id === undefined) throw new CheckpointError(`${key} ${JSON.stringify(content)} is not in the vocabulary`, path);
      return id;
    };
    const bos = named('bos_token') ?? (prefix.length > 0 ? prefix[0]! : null);
    const eos = named('eos_token') ?? (suffix.length > 0 ? suffix[suffix.length - 1]! : null);
    // transformers rebuilds Llama/Gemma templates from add_bos_token / add_eos_token; a config that
    // states them is what its tokenizer does.
    if (config['add_bos_token'] === false && bos !== null && prefix[0] === bos) prefix.shift();
    if (config['add_bos_token'] === true && bos !== null && prefix[0] !== bos) prefix.unshift(bos);
    if (config['add_eos_token'] === false && eos !== null && suffix[suffix.length - 1] === eos) suffix.pop();
    if (config['add_eos_token'] === true && eos !== null && suffix[suffix.length - 1] !== eos) suffix.push(eos);
    for (const id of [...prefix, ...suffix]) {
      if (id >= size) throw new CheckpointError(`post_processor adds token id ${id}, outside the vocabulary of ${size}`, path);
    }
    this.prefix = prefix;
    this.suffix = suffix;
    const unk = this.hf.model.unk_token_id ?? named('unk_token') ?? all.get('<unk>');
    this.ids = {
      bos,
      eos,
      pad: named('pad_token') ?? all.get('<pad>') ?? null,
      unk: unk ?? null,
      mask: named('mask_token') ?? all.get('<mask>') ?? null,
    };
    const max = config['model_max_length'];
    this.defaultMaxLength = typeof max === 'number' && Number.isInteger(max) && max > 0 && max < 1e6 ? max : Infinity;
  }

  /**
   * The roles a BERT-family classifier reads (RoBERTa's <s> … </s>): the template's first and last
   * tokens, padding and the unknown token. An error naming the file when the tokenizer lacks one.
   */
  get special(): SpecialTokens {
    const cls = this.prefix[0];
    const sep = this.suffix[this.suffix.length - 1];
    const { pad, unk, mask } = this.ids;
    if (cls === undefined || sep === undefined || pad === null || unk === null) {
      throw new CheckpointError('an encoder classifier needs a template with a first and last token (post_processor), a pad token and an unknown token', this.path);
    }
    return { cls, sep, pad, unk, mask };
  }

  idToToken(id: number): string {
    const token = Number.isInteger(id) ? this.hf.id_to_token(id) : undefined;
    if (token === undefined) throw new UsageError(`token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    return token;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The text of ids, as HF's decoder writes it. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  encode(text: string, options: HfEncodeOptions = {}): Encoding {
    if (text === '') throw new InputError('the text is empty');
    const maxLength = options.maxLength ?? this.defaultMaxLength;
    if (!(maxLength >= 1) || (maxLength !== Infinity && !Number.isInteger(maxLength))) {
      throw new UsageError(`maxLength must be a positive integer, got ${maxLength}`);
    }
    const content = this.encodeContent(text);
    if (content.ids.length === 0) throw new InputError('the text gives no tokens (it is only whitespace the tokenizer drops)');
    const prefix = options.addSpecialTokens === false ? [] : this.prefix;
    const suffix = options.addSpecialTokens === false ? [] : this.suffix;
    const room = maxLength - prefix.length - suffix.length;
    if (room < 1) throw new UsageError(`maxLength ${maxLength} leaves no room for text between the ${prefix.length + suffix.length} template tokens`);
    let first = 0;
    let end = content.ids.length;
    const truncated = end > room;
    if (truncated) {
      const left = options.truncation === 'left';
      if (left) first = end - room;
      else end = room;
      options.onWarning?.(
        `the text has ${content.ids.length + prefix.length + suffix.length} tokens, more than the maximum of ${maxLength}: kept the ` +
          (left ? `last ${room} (text from character ${content.offsets[first]![0]} of ${text.length})` : `first ${room} (text up to character ${content.offsets[end - 1]![1]} of ${text.length})`),
      );
    }
    const firstWord = content.wordIds[first]!;
    const lastWord = content.wordIds[end - 1]!;
    const n = prefix.length + (end - first) + suffix.length;
    const tokenOf = (id: number) => this.idToToken(id);
    return {
      ids: [...prefix, ...content.ids.slice(first, end), ...suffix],
      tokens: [...prefix.map(tokenOf), ...content.tokens.slice(first, end), ...suffix.map(tokenOf)],
      offsets: [...prefix.map((): [number, number] => [0, 0]), ...content.offsets.slice(first, end), ...suffix.map((): [number, number] => [0, 0])],
      wordIds: [...prefix.map(() => null), ...content.wordIds.slice(first, end).map((w) => w - firstWord), ...suffix.map(() => null)],
      words: content.words.slice(firstWord, lastWord + 1),
      special: [...prefix.map(() => true), ...new Array<boolean>(end - first).fill(false), ...suffix.map(() => true)],
      attentionMask: new Array<number>(n).fill(1),
      truncated,
    };
  }

  /** The text's own tokens (no template), as the package's encode_text makes them, with offsets. */
  private encodeContent(text: string) {
    const hf = this.hf;
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: Array<[number, number]> = [];
    /** Per token: does it start a word. */
    const starts: boolean[] = [];
    const push = (token: string, span: [number, number], newWord: boolean) => {
      const id = hf.added_tokens_map.get(token)?.id ?? hf.model.tokens_to_ids.get(token) ?? hf.model.unk_token_id;
      if (id === undefined) throw new InputError(`the piece ${JSON.stringify(token)} has no token in ${this.path} and the tokenizer has no unknown token`);
      ids.push(id);
      tokens.push(hf.id_to_token(id) ?? token);
      offsets.push(span);
      starts.push(newWord);
    };

    // 1. Sections around added tokens matched in the raw text; lstrip/rstrip eat the whitespace beside them.
    const sections = hf.splitter_unnormalized.split(text);
    const bounds: Array<[number, number]> = [];
    let at = 0;
    for (const s of sections) {
      bounds.push([at, at + s.length]);
      at += s.length;
    }
    if (at !== text.length) throw new CheckpointError('splitting around added tokens lost text', this.path);
    sections.forEach((s, i) => {
      const added = hf.added_tokens_map.get(s);
      if (!added) return;
      if (added.lstrip && i > 0) bounds[i - 1]![1] = bounds[i - 1]![0] + text.slice(...bounds[i - 1]!).trimEnd().length;
      if (added.rstrip && i < sections.length - 1) {
        const next = bounds[i + 1]!;
        next[0] = next[1] - text.slice(...next).trimStart().length;
      }
    });

    bounds.forEach(([from, to], sectionIndex) => {
      if (to <= from) return;
      const raw = text.slice(from, to);
      if (hf.added_tokens_map.has(raw)) {
        push(raw, [from, to], true);
        return;
      }
      // 2. Normalise, keeping where each character came from; the replay must be the package's result.
      let norm: Aligned = { text: raw, starts: [], ends: [] };
      for (let k = 0; k < raw.length; k++) {
        norm.starts.push(from + k);
        norm.ends.push(from + k + 1);
      }
      // A surrogate pair is one character: both units take its whole span.
      for (let k = 0; k + 1 < raw.length; k++) {
        const c = raw.charCodeAt(k);
        if (c >= 0xd800 && c <= 0xdbff) {
          const d = raw.charCodeAt(k + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            norm.ends[k] = from + k + 2;
            norm.starts[k + 1] = from + k;
            k++;
          }
        }
      }
      if (hf.normalizer !== null) {
        const expected = hf.normalizer.normalize(raw);
        norm = normalizeAligned(hf.normalizer, norm);
        if (norm.text !== expected) {
          throw new CheckpointError(`the normalizer's offsets cannot be derived for this text (replayed ${JSON.stringify(norm.text.slice(0, 40))}, expected ${JSON.stringify(expected.slice(0, 40))})`, this.path);
        }
      }
      if (norm.text.length === 0) return;
      // 3. Sub-sections around added tokens matched in the normalised text.
      let pos = 0;
      const subs = hf.splitter_normalized.split(norm.text).map((s) => {
        const a = slice(norm, pos, pos + s.length);
        pos += s.length;
        return a;
      });
      subs.forEach((sub, j) => {
        const added = hf.added_tokens_map.get(sub.text);
        if (!added) return;
        const trim = (k: number, side: 'start' | 'end') => {
          const s = subs[k]!;
          const kept = side === 'end' ? s.text.trimEnd().length : s.text.length - s.text.trimStart().length;
          subs[k] = side === 'end' ? slice(s, 0, kept) : slice(s, kept, s.text.length);
        };
        if (added.lstrip && j > 0) trim(j - 1, 'end');
        if (added.rstrip && j < subs.length - 1) trim(j + 1, 'start');
      });
      for (const sub of subs) {
        if (sub.text.length === 0) continue;
        const added = hf.added_tokens_map.get(sub.text);
        if (added) {
          // A normalised added token can carry the normaliser's marker (Llama 2's '▁</s>' for ' </s>'):
          // its span is where its own text is.
          const at = sub.text.lastIndexOf(added.content);
          push(sub.text, at >= 0 ? spanOf(sub, at, at + added.content.length) : spanOf(sub, 0, sub.text.length), true);
          continue;
        }
        // 4. Pre-tokenise, then the model on each piece; each piece's tokens are matched in order.
        const pieces = hf.pre_tokenizer !== null ? hf.pre_tokenizer(sub.text, { section_index: sectionIndex }) : [sub.text];
        const matcher = new Matcher(sub, this.path, !this.byteLevel);
        for (const piece of pieces) {
          const pieceTokens = hf.model([piece]);
          const surfaces = pieceTokens.map((t) => this.surface(t));
          pieceTokens.forEach((t, k) => {
            let next: Surface = null;
            if (surfaces[k] === null) for (let q = k + 1; q < surfaces.length && next === null; q++) next = surfaces[q]!;
            const span = matcher.take(surfaces[k]!, next, t);
            const lead = surfaces[k] !== null && surfaces[k]!.length > 0 && isWs(String.fromCharCode(surfaces[k]![0]!));
            push(t, span, k === 0 || lead);
          });
        }
      }
    });

    // Words: a word token-run's span, without the leading whitespace its first token carries (a
    // lone ▁ before '2016' is SentencePiece's way of writing ' 2016': it joins the word it precedes).
    const wordIds: number[] = [];
    const words: Word[] = [];
    tokens.forEach((_, t) => {
      const [s, e] = offsets[t]!;
      if (words.length === 0 || starts[t]) words.push({ text: '', start: s, end: e });
      const w = words.length - 1;
      const word = words[w]!;
      words[w] = { text: '', start: Math.min(word.start, s), end: Math.max(word.end, e) };
      wordIds.push(w);
    });
    const trimmed = words.map((w) => {
      const raw = text.slice(w.start, w.end);
      const lead = isWs(raw) ? 0 : raw.length - raw.trimStart().length;
      return { text: raw.slice(lead), start: w.start + lead, end: w.end };
    });
    return { ids, tokens, offsets, wordIds, words: trimmed };
  }

  /** A model token's bytes: byte-level symbols, `<0xNN>` pieces, ▁ as a space; null for an unknown token. */
  private surface(token: string): Surface {
    const added = this.hf.added_tokens_map.get(token);
    if (added) return utf8.encode(added.content);
    const unk = this.hf.model.unk_token;
    if (unk !== undefined && token === unk) return null;
    if (this.byteFallback) {
      const m = BYTE_PIECE.exec(token);
      if (m) return Uint8Array.of(parseInt(m[1]!, 16));
    }
    if (this.byteLevel) {
      const out = new Uint8Array(token.length);
      let ok = true;
      for (let i = 0; i < token.length; i++) {
        const b = SYMBOL_BYTE.get(token[i]!);
        if (b === undefined) {
          ok = false;
          break;
        }
        out[i] = b;
      }
      if (ok) return out;
    }
    return utf8.encode(token.split(this.replacement).join(' '));
  }
}

/** The original span of units [from, to) of an aligned string. */
function spanOf(a: Aligned, from: number, to: number): [number, number] {
  if (to <= from) {
    const at = from < a.starts.length ? a.starts[from]! : (a.ends[a.ends.length - 1] ?? 0);
    return [at, at];
  }
  let s = Infinity;
  let e = -Infinity;
  for (let k = from; k < to; k++) {
    s = Math.min(s, a.starts[k]!);
    e = Math.max(e, a.ends[k]!);
  }
  return [s, e];
}

/** Walks a normalised sub-section's UTF-8 bytes, matching model tokens in order. */
class Matcher {
  private readonly bytes: Uint8Array;
  /** Per byte: the UTF-16 unit of the normalised text it belongs to. */
  private readonly unit: number[];
  private pos = 0;

  constructor(private readonly a: Aligned, private readonly path: string, metaspace: boolean) {
    // ▁ in the normalised text is a space (Llama 2's normaliser writes it, Metaspace reads it); to a
    // byte-level tokenizer it is just another character.
    const parts: number[] = [];
    const unit: number[] = [];
    for (let i = 0; i < a.text.length; ) {
      const cp = a.text.codePointAt(i)!;
      const units = cp > 0xffff ? 2 : 1;
      const ch = metaspace && cp === 0x2581 ? ' ' : String.fromCodePoint(cp);
      for (const b of utf8.encode(ch)) {
        parts.push(b);
        unit.push(i);
      }
      i += units;
    }
    this.bytes = Uint8Array.from(parts);
    this.unit = unit;
  }

  private matchesAt(p: number, s: Uint8Array, from = 0): boolean {
    if (p + s.length - from > this.bytes.length) return false;
    for (let k = from; k < s.length; k++) if (this.bytes[p + k - from] !== s[k]) return false;
    return true;
  }

  private span(b0: number, b1: number): [number, number] {
    if (b1 <= b0) return spanOf(this.a, b0 < this.unit.length ? this.unit[b0]! : this.a.text.length, b0 < this.unit.length ? this.unit[b0]! : this.a.text.length);
    const u0 = this.unit[b0]!;
    const last = this.unit[b1 - 1]!;
    const u1 = last + (this.a.text.codePointAt(last)! > 0xffff ? 2 : 1);
    return spanOf(this.a, u0, u1);
  }

  /** The original span of the next token; `next` (the following known token) bounds an unknown one. */
  take(s: Surface, next: Surface, token: string): [number, number] {
    const n = this.bytes.length;
    if (s === null) {
      // An unknown token covers what lies before the next known token (or the rest of the piece).
      let q = this.pos + 1;
      while (q < n && (next === null || !this.matchesAt(q, next)) && (next !== null || !isWs(String.fromCharCode(this.bytes[q]!)))) q++;
      while (q < n && (this.bytes[q]! & 0xc0) === 0x80) q++;
      const span = this.span(this.pos, Math.min(q, n));
      this.pos = Math.min(q, n);
      return span;
    }
    for (let p = this.pos; p <= n; p++) {
      if (this.matchesAt(p, s)) {
        this.pos = p + s.length;
        return this.span(p, p + s.length);
      }
      // A space the pre-tokeniser put before the piece stands for nothing in the text.
      if (s[0] === 0x20 && this.matchesAt(p, s, 1)) {
        this.pos = p + s.length - 1;
        const [a, b] = this.span(p, p + s.length - 1);
        return [a, b];
      }
      // Whitespace the pre-tokeniser dropped is stepped over; anything else is a failure.
      const b = this.bytes[p];
      if (b === undefined || !(b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0c || b === 0x0b)) break;
    }
    throw new CheckpointError(`cannot place token ${JSON.stringify(token)} in the text at character ${this.span(this.pos, this.pos)[0]} (its offsets cannot be derived)`, this.path);
  }
}

/** The template's tokens before and after a single text ($A), from post_processor. */
function template(pp: unknown, path: string): { prefix: number[]; suffix: number[] } {
  const prefix: number[] = [];
  const suffix: number[] = [];
  const walk = (p: unknown): void => {
    if (p === null || p === undefined) return;
    if (!isObject(p)) throw new CheckpointError('post_processor must be an object', path);
    switch (p['type']) {
      case 'Sequence':
        if (!Array.isArray(p['processors'])) throw new CheckpointError('post_processor.processors must be a list', path);
        for (const q of p['processors']) walk(q);
        return;
      case 'ByteLevel':
        return;
      case 'RobertaProcessing':
      case 'BertProcessing': {
        const pair = (name: string) => {
          const v = p[name];
          if (!Array.isArray(v) || typeof v[1] !== 'number') throw new CheckpointError(`post_processor.${name} must be [token, id]`, path);
          return v[1] as number;
        };
        prefix.push(pair('cls'));
        suffix.unshift(pair('sep'));
        return;
      }
      case 'TemplateProcessing': {
        const single = p['single'];
        const specials = p['special_tokens'];
        if (!Array.isArray(single)) throw new CheckpointError('post_processor.single must be a list', path);
        let seen = false;
        for (const piece of single) {
          if (isObject(piece) && isObject(piece['Sequence'])) {
            if (seen) throw new CheckpointError('post_processor.single has more than one sequence', path);
            seen = true;
            continue;
          }
          const name = isObject(piece) && isObject(piece['SpecialToken']) ? piece['SpecialToken']['id'] : undefined;
          const entry = typeof name === 'string' && isObject(specials) ? specials[name] : undefined;
          const tokenIds = isObject(entry) ? entry['ids'] : undefined;
          if (!Array.isArray(tokenIds) || !tokenIds.every((x) => typeof x === 'number')) {
            throw new CheckpointError(`post_processor.special_tokens has no ids for ${JSON.stringify(name)}`, path);
          }
          (seen ? suffix : prefix).push(...(tokenIds as number[]));
        }
        if (!seen) throw new CheckpointError('post_processor.single has no sequence', path);
        return;
      }
      default:
        throw new CheckpointError(`post_processor type ${JSON.stringify(p['type'])} is not supported`, path);
    }
  };
  walk(pp);
  return { prefix, suffix };
}

function parseJsonFile(file: TokenizerFile): Json {
  let value: unknown;
  try {
    value = JSON.parse(file.text);
  } catch (err) {
    throw new CheckpointError(`not valid JSON (${(err as Error).message})`, file.path);
  }
  if (!isObject(value)) throw new CheckpointError('expected a JSON object', file.path);
  return value;
}

/** From file contents (the renderer has no file system): tokenizer.json and, if any, tokenizer_config.json. */
export function hfTokenizerFromFiles(files: { tokenizerJson: TokenizerFile; tokenizerConfig?: TokenizerFile; specialTokensMap?: TokenizerFile }): HfTokenizer {
  const json = parseJsonFile(files.tokenizerJson);
  // special_tokens_map.json names the roles too (older RoBERTa folders); tokenizer_config.json wins.
  const config = {
    ...(files.specialTokensMap ? parseJsonFile(files.specialTokensMap) : {}),
    ...(files.tokenizerConfig ? parseJsonFile(files.tokenizerConfig) : {}),
  };
  return new HfTokenizer(json, config, files.tokenizerJson.path);
}

/**
 * A model folder's tokenizer.json (+ tokenizer_config.json, special_tokens_map.json); null when it
 * has no tokenizer.json, or when its model type is one of `except` (for a caller with its own reader).
 */
export async function loadHfTokenizer(dir: string, options: { except?: readonly string[] } = {}): Promise<HfTokenizer | null> {
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  const read = async (name: string): Promise<TokenizerFile | undefined> => {
    const path = join(dir, name);
    try {
      return { path, text: new TextDecoder('utf-8', { fatal: true }).decode(await fs.readFile(path)) };
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw new CheckpointError(err instanceof TypeError ? 'not UTF-8 text' : `cannot be read (${(err as Error).message})`, path);
    }
  };
  const [tokenizerJson, tokenizerConfig, specialTokensMap] = await Promise.all(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'].map(read));
  if (!tokenizerJson) return null;
  if (options.except?.length) {
    const model = parseJsonFile(tokenizerJson)['model'];
    if (isObject(model) && typeof model['type'] === 'string' && options.except.includes(model['type'])) return null;
  }
  return hfTokenizerFromFiles({ tokenizerJson, tokenizerConfig, specialTokensMap });
}
