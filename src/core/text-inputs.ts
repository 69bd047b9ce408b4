/**
 * Turning text into model inputs: a sentence through the model's own tokenizer (keeping the map
 * back to words and characters), or raw token ids (positions holding the pad id are padding).
 * Encoder classifiers (BERT family) and decoders (GPT-2) take the same path; a decoder's text is
 * what comes before the token it predicts, so a too-long text keeps its end, not its start.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tf, type Tensor2D } from './tf.js';
import { InputError, UsageError } from './errors.js';
import type { TokenInput } from './models/types.js';
import type { BertModel } from './models/bert.js';
import type { GPT2Model } from './models/gpt2.js';
import type { LlamaModel } from './models/llama.js';
import { loadTokenizer, wordRelevance, type Encoding, type Tokenizer } from './text/tokenizer.js';
import { loadHfTokenizer } from './text/hf-tokenizer.js';
import type { HighlightWord } from './report/token-highlight.js';

export interface LoadedText {
  readonly input: TokenInput;
  /** The tokenisation, when the input was text (null for raw ids). */
  readonly encoding: Encoding | null;
  readonly text: string | null;
  /** Token strings (from the tokenizer's vocabulary when known). */
  readonly tokens: string[];
}

/**
 * The folder's tokenizer, if it has one (tokenizer.json or vocab.txt). A tokenizer.json whose model
 * is not WordPiece (RoBERTa's byte-level BPE, Unigram) is read by hf-tokenizer; `special` checks
 * the roles an encoder classifier needs now rather than at first use.
 */
export async function loadModelTokenizer(dir: string): Promise<Tokenizer | null> {
  const has = async (f: string) => fs.access(path.join(dir, f)).then(() => true, () => false);
  if (!(await has('tokenizer.json')) && !(await has('vocab.txt'))) return null;
  if (await has('tokenizer.json')) {
    const hf = await loadHfTokenizer(dir, { except: ['WordPiece'] });
    if (hf) {
      void hf.special;
      return hf;
    }
  }
  return loadTokenizer(dir);
}

/** The text models: BERT-style classifiers and decoders (GPT-2, the Llama family). */
export type TextModel = BertModel | GPT2Model | LlamaModel;
export type DecoderModel = GPT2Model | LlamaModel;

/** Decoders read text left to right: no segments, no padding id, a too-long text keeps its end. */
export function isDecoder(model: { readonly family: string }): boolean {
  return model.family === 'gpt2' || model.family === 'llama';
}

/** Whether the model's classes are next tokens (a decoder's LM head), not labels (a classification head). */
export function predictsNextToken(model: { readonly family: string; readonly shape?: unknown }): boolean {
  if (model.family === 'gpt2') return true;
  return model.family === 'llama' && (model.shape as { head?: string } | undefined)?.head === 'lm';
}

/** GPT-2 takes no segment ids: HF adds wte rows for token_type_ids when they are passed at all. */
function toInput(model: TextModel, ids: number[], mask: number[]): TokenInput {
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
    attentionMask: tf.tensor2d(mask, [1, mask.length], 'int32'),
    ...(isDecoder(model) ? {} : { typeIds: tf.zeros([1, ids.length], 'int32') as Tensor2D }),
  };
}

/** Longest sequence the model takes (RoBERTa's positions start after the padding index). */
export function maxTokens(model: TextModel): number {
  if (model.family !== 'bert') return model.config.maxPositions;
  const c = model.config;
  return c.maxPositions - (c.flavour === 'roberta' ? c.padTokenId + 1 : 0);
}

export function encodeText(model: TextModel, text: string, onWarning?: (message: string) => void): LoadedText {
  let encoding: Encoding;
  if (model.family !== 'bert') {
    if (!model.tokenizer) throw new InputError(`model '${model.name}' has no tokenizer (${model.family === 'gpt2' ? 'vocab.json + merges.txt, or tokenizer.json' : 'tokenizer.json'}); pass token ids with --ids instead`);
    encoding = model.tokenizer.encode(text, { maxLength: maxTokens(model), truncation: 'left', onWarning });
  } else {
    if (!model.tokenizer) throw new InputError(`model '${model.name}' has no tokenizer (tokenizer.json or vocab.txt); pass token ids with --ids instead`);
    encoding = model.tokenizer.encode(text, { maxLength: maxTokens(model), onWarning });
  }
  for (const id of encoding.ids) {
    if (id >= model.config.vocabSize) throw new InputError(`token id ${id} is outside the model's vocabulary of ${model.config.vocabSize}: tokenizer and model do not match`);
  }
  return { input: toInput(model, encoding.ids, encoding.attentionMask), encoding, text, tokens: encoding.tokens };
}

/** Raw ids, as the golden files give them: every position holding pad_token_id is padding (GPT-2 has none). */
export function idsToText(model: TextModel, ids: readonly number[]): LoadedText {
  if (ids.length === 0) throw new InputError('no token ids given');
  if (ids.length > maxTokens(model)) throw new InputError(`${ids.length} token ids exceed model '${model.name}''s maximum of ${maxTokens(model)}`);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= model.config.vocabSize) {
      throw new InputError(`token id ${id} is not in the model's vocabulary (0..${model.config.vocabSize - 1})`);
    }
  }
  const pad = model.family === 'bert' ? model.config.padTokenId : null;
  const mask = ids.map((id) => (id === pad ? 0 : 1));
  const tokens = ids.map((id) => (model.tokenizer && id < model.tokenizer.vocabSize ? model.tokenizer.idToToken(id) : String(id)));
  return { input: toInput(model, [...ids], mask), encoding: null, text: null, tokens };
}

/**
 * The vocabulary id of a text that is exactly one token for a decoder (e.g. ' Paris', with its
 * space: GPT-2's tokens carry the space before a word). `what` names the option in errors.
 */
export function singleTokenId(model: DecoderModel, text: string, what: string): number {
  if (!model.tokenizer) throw new UsageError(`${what} needs the model's tokenizer (vocab.json + merges.txt in '${model.name}'); give the id instead`);
  // The token itself, without the BOS a Llama-style template adds.
  const e = model.family === 'gpt2' ? model.tokenizer.encode(text) : (model as LlamaModel).tokenizer!.encode(text, { addSpecialTokens: false });
  if (e.ids.length !== 1) {
    const pieces = e.ids.map((id) => JSON.stringify(model.labels[id] ?? model.tokenizer!.idToToken(id))).join(' + ');
    throw new UsageError(`${what} ${JSON.stringify(text)} is ${e.ids.length} tokens (${pieces}), not one`);
  }
  if (e.ids[0]! >= model.numClasses) throw new UsageError(`${what} ${JSON.stringify(text)} is token ${e.ids[0]}, outside the model's vocabulary of ${model.numClasses}`);
  return e.ids[0]!;
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
