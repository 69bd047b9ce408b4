/**
 * Turning text into model inputs: a sentence through the model's own tokenizer (keeping the map
 * back to words and characters), or raw token ids (positions holding the pad id are padding).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tf } from './tf.js';
import { InputError } from './errors.js';
import type { TokenInput } from './models/types.js';
import type { BertModel } from './models/bert.js';
import { loadTokenizer, wordRelevance, type Encoding, type Tokenizer } from './text/tokenizer.js';
import type { HighlightWord } from './report/token-highlight.js';

export interface LoadedText {
  readonly input: TokenInput;
  /** The tokenisation, when the input was text (null for raw ids). */
  readonly encoding: Encoding | null;
  readonly text: string | null;
  /** Token strings (from the tokenizer's vocabulary when known). */
  readonly tokens: string[];
}

/** The folder's tokenizer, if it has one (tokenizer.json or vocab.txt). */
export async function loadModelTokenizer(dir: string): Promise<Tokenizer | null> {
  const has = async (f: string) => fs.access(path.join(dir, f)).then(() => true, () => false);
  if (!(await has('tokenizer.json')) && !(await has('vocab.txt'))) return null;
  return loadTokenizer(dir);
}

function toInput(ids: number[], mask: number[]): TokenInput {
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
    attentionMask: tf.tensor2d(mask, [1, mask.length], 'int32'),
    typeIds: tf.zeros([1, ids.length], 'int32'),
  };
}

/** Longest sequence the model takes (RoBERTa's positions start after the padding index). */
export function maxTokens(model: BertModel): number {
  const c = model.config;
  return c.maxPositions - (c.flavour === 'roberta' ? c.padTokenId + 1 : 0);
}

export function encodeText(model: BertModel, text: string, onWarning?: (message: string) => void): LoadedText {
  const tokenizer = model.tokenizer;
  if (!tokenizer) {
    throw new InputError(`model '${model.name}' has no tokenizer (tokenizer.json or vocab.txt); pass token ids with --ids instead`);
  }
  const encoding = tokenizer.encode(text, { maxLength: maxTokens(model), onWarning });
  for (const id of encoding.ids) {
    if (id >= model.config.vocabSize) throw new InputError(`token id ${id} is outside the model's vocabulary of ${model.config.vocabSize}: tokenizer and model do not match`);
  }
  return { input: toInput(encoding.ids, encoding.attentionMask), encoding, text, tokens: encoding.tokens };
}

/** Raw ids, as the golden files give them: every position holding pad_token_id is padding. */
export function idsToText(model: BertModel, ids: readonly number[]): LoadedText {
  if (ids.length === 0) throw new InputError('no token ids given');
  if (ids.length > maxTokens(model)) throw new InputError(`${ids.length} token ids exceed model '${model.name}''s maximum of ${maxTokens(model)}`);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= model.config.vocabSize) {
      throw new InputError(`token id ${id} is not in the model's vocabulary (0..${model.config.vocabSize - 1})`);
    }
  }
  const mask = ids.map((id) => (id === model.config.padTokenId ? 0 : 1));
  const tokens = ids.map((id) => model.tokenizer?.idToToken(id) ?? String(id));
  return { input: toInput([...ids], mask), encoding: null, text: null, tokens };
}

/** Words of the original text with their relevance (the sum over their word pieces) and the pieces. */
export function highlightWords(encoding: Encoding, tokenRelevance: ArrayLike<number>): HighlightWord[] {
  const perWord = wordRelevance(encoding, tokenRelevance);
  return encoding.words.map((w, i) => ({
    text: w.text,
    start: w.start,
    end: w.end,
    relevance: perWord[i]!,
    pieces: encoding.tokens.flatMap((token, t) => (encoding.wordIds[t] === i ? [{ token, relevance: tokenRelevance[t]! }] : [])),
  }));
}
