/**
 * Synthetic "selective-dependence" text classification (after Pandey et al., "On the Interpretability of
 * Attention Networks"): the label is a function of one or two known words only, so an explanation can be scored
 * against exact ground-truth spans.
 *
 * ## Task definition (the contract explanations are scored against)
 *
 * A sample is one lower-case sentence. Tokens are separated by single spaces, except that an opening quote is
 * written against the next token, and a closing quote and the final period against the previous one
 * (`the sign said "awful" and the soup was wonderful.`). Quotes and the period are tokens of their own in
 * `words` (roles `quote` and `filler`).
 *
 * - **Length** — N lexical (alphabetic) words, N uniform in [minWords, maxWords] (default 8–20); the quote marks
 *   and the period are not counted.
 * - **Sentiment words** — 20 positive ({@link POSITIVE_WORDS}: wonderful, excellent, ...) and 20 negative
 *   ({@link NEGATIVE_WORDS}: terrible, awful, ...). No other word in the vocabulary carries sentiment or negation;
 *   fillers are 300 neutral nouns, verbs, adjectives, function words and place names ({@link FILLER_WORDS}).
 * - **Excluded contexts** — a sentiment word does not count if (a) the token directly before it is the negator
 *   `not`, or (b) it lies between an opening and a closing double quote (a quoted aside, always introduced by a
 *   verb such as `said`/`wrote`: `the sign said "the awful road"`). Nothing else excludes a word.
 * - **The rule** — the counted sentiment words are those in neither excluded context. There is exactly one
 *   (`single`) or exactly two (`pair`) of them: the KEY words.
 *   - `single` (classes `negative` = 0, `positive` = 1): the label is the key word's polarity.
 *   - `pair` (classes `different` = 0, `same` = 1): the label is 1 iff the two key words have the same polarity.
 * - **Decoys** — sentiment words in an excluded context (role `decoy`). With probability 0.7 a sample has
 *   decoys, then 1 or 2 (equally likely); each is negated (`not awful`, optionally `was not awful`) or quoted
 *   (equally likely), and its polarity and word are uniform, independent of the label and of the key words.
 * - **Other structure, all label-independent** — `not` also negates fillers (`not near the river`, p = 0.3), a
 *   quoted aside may hold no sentiment word (p = 0.25), and key and negated words are preceded by a copula
 *   (`was`, `seemed`...) half the time; copulas, quote verbs and `not` all occur before neutral words too.
 * - **Generation** — the label is drawn uniformly first (so classes are balanced); then the key word(s)
 *   (`pair`: first polarity uniform, second equal or opposite as the label says), the decoys, the optional
 *   structure, and neutral filler phrases up to N words are built as units and the units are shuffled, so the
 *   key word sits at a uniformly random unit position. No unit ends with `not`, so the shuffle can never put
 *   `not` directly before a key.
 *
 * Roles: `key` (the deciding words; `keySpans` holds their [start, end) char spans in sentence order),
 * `decoy`, `negator` (every `not`), `quote` (every `"`), `filler` (everything else, including the period).
 * Sample `i` is a pure function of (task seed, options, i): its `seed` is sampleSeed(taskSeed ^ hashString(name),
 * i) and `new Rng(seed)` drives everything.
 */
import { Rng, hashString, sampleSeed } from './rng.js';
import {
  ADJECTIVES, ADVERBS, CONNECTIVES, COPULAS, DETERMINERS, FILLER_WORDS, NEGATIVE_WORDS, NEGATOR, NOUNS, PERIOD,
  PLACES, POSITIVE_WORDS, PREPOSITIONS, PRONOUNS, QUOTE, QUOTE_VERBS, VERBS,
} from './text-vocab.js';

export type WordRole = 'key' | 'decoy' | 'negator' | 'filler' | 'quote';

export interface TextTaskOptions {
  /** 'single': label = polarity of the key word; 'pair': label = whether the two key words agree (default 'single'). */
  variant?: 'single' | 'pair';
  /** Fewest lexical words per sentence (default 8, at least 6). */
  minWords?: number;
  /** Most lexical words per sentence (default 20). */
  maxWords?: number;
}

export interface TextWord {
  text: string;
  /** Char offsets into the sample's text: text.slice(start, end) === this.text. */
  start: number;
  end: number;
  role: WordRole;
}

export interface TextSample {
  index: number;
  seed: number;
  text: string;
  label: number;
  labelName: string;
  words: TextWord[];
  /** Char spans of the deciding word(s), in sentence order. */
  keySpans: Array<[number, number]>;
}

export interface TextTask {
  readonly name: string;
  readonly classes: readonly string[];
  /** Every token a sample can contain: the words, `not`, and the punctuation. */
  readonly vocabulary: readonly string[];
  sample(index: number): TextSample;
}

/** How a token is written next to its neighbours: 'right' glues it to the next token, 'left' to the previous. */
interface Token {
  text: string;
  role: WordRole;
  glue?: 'left' | 'right';
}

const w = (text: string, role: WordRole = 'filler'): Token => ({ text, role });
const sentiment = (rng: Rng, positive: boolean): string => rng.pick(positive ? POSITIVE_WORDS : NEGATIVE_WORDS);

/** The vocabulary in a fixed order (it fixes the token ids of textTaskVocab). */
const VOCABULARY: readonly string[] = [QUOTE, PERIOD, NEGATOR, ...POSITIVE_WORDS, ...NEGATIVE_WORDS, ...FILLER_WORDS];

/** A neutral phrase of at most maxLen (>= 1) words. */
function fillerPhrase(rng: Rng, maxLen: number): Token[] {
  const templates: Array<Array<readonly string[]>> = [
    [DETERMINERS, NOUNS],
    [DETERMINERS, ADJECTIVES, NOUNS],
    [PRONOUNS, VERBS],
    [VERBS, DETERMINERS, NOUNS],
    [PREPOSITIONS, DETERMINERS, NOUNS],
    [PREPOSITIONS, PLACES],
    // Copula + neutral adjective mirrors the key's "was wonderful", so the copula predicts nothing.
    [DETERMINERS, NOUNS, COPULAS, ADJECTIVES],
    [CONNECTIVES],
    [ADVERBS],
    [NOUNS],
  ];
  const fitting = templates.filter((t) => t.length <= maxLen);
  return rng.pick(fitting).map((list) => w(rng.pick(list)));
}

/**
 * A run of tokens shuffled as a whole. A nested array is a quote's content, kept by reference so it can still
 * grow after the unit is built. A unit never ends with `not`, so no unit can negate the next one's first word.
 */
type Unit = Array<Token | Token[]>;

interface Embellishment {
  p: number;
  cost: number;
  apply: () => void;
}

const openQuote = (): Token => ({ text: QUOTE, role: 'quote', glue: 'right' });
const closeQuote = (): Token => ({ text: QUOTE, role: 'quote', glue: 'left' });
const lexicalCount = (unit: Unit): number => unit.flat().filter((t) => t.role !== 'quote').length;

function resolveOptions(options: TextTaskOptions | undefined): Required<TextTaskOptions> {
  const variant = options?.variant ?? 'single';
  const minWords = options?.minWords ?? 8;
  const maxWords = options?.maxWords ?? Math.max(20, minWords);
  if (variant !== 'single' && variant !== 'pair') throw new RangeError(`variant must be 'single' or 'pair', got '${String(variant)}'`);
  // 6 = the largest mandatory core: two keys plus two 2-word decoys.
  if (!Number.isInteger(minWords) || minWords < 6) throw new RangeError(`minWords must be an integer >= 6, got ${minWords}`);
  if (!Number.isInteger(maxWords) || maxWords < minWords) throw new RangeError(`maxWords must be an integer >= minWords (${minWords}), got ${maxWords}`);
  return { variant, minWords, maxWords };
}

function render(tokens: Token[]): { text: string; words: TextWord[] } {
  let text = '';
  const words: TextWord[] = [];
  tokens.forEach((t, i) => {
    if (i > 0 && t.glue !== 'left' && tokens[i - 1].glue !== 'right') text += ' ';
    const start = text.length;
    text += t.text;
    words.push({ text: t.text, start, end: text.length, role: t.role });
  });
  return { text, words };
}

/** The text task with the given seed; see the file comment for the exact definition. */
export function textTask(seed: number, options?: TextTaskOptions): TextTask {
  const opts = resolveOptions(options);
  const { variant, minWords, maxWords } = opts;
  const classes: readonly string[] = variant === 'single' ? ['negative', 'positive'] : ['different', 'same'];
  const name = `text-${variant}`;
  const stream = (seed ^ hashString(name)) >>> 0;

  function sample(index: number): TextSample {
    const s = sampleSeed(stream, index);
    const rng = new Rng(s);
    const label = rng.int(2);
    const n = rng.range(minWords, maxWords);

    const keyPolarities: boolean[] = [];
    if (variant === 'single') keyPolarities.push(label === 1);
    else {
      const first = rng.chance(0.5);
      keyPolarities.push(first, label === 1 ? first : !first);
    }

    const units: Unit[] = [];
    // Optional words, each applied only if it still fits in n; every random choice is drawn up front.
    const embellishments: Embellishment[] = [];
    const copula = (unit: Unit): Embellishment => {
      const c = w(rng.pick(COPULAS));
      return { p: 0.5, cost: 1, apply: () => unit.unshift(c) };
    };

    for (const positive of keyPolarities) {
      const unit: Unit = [w(sentiment(rng, positive), 'key')];
      units.push(unit);
      embellishments.push(copula(unit));
    }

    const decoys = rng.chance(0.7) ? rng.range(1, 2) : 0;
    for (let d = 0; d < decoys; d++) {
      const word = w(sentiment(rng, rng.chance(0.5)), 'decoy');
      if (rng.chance(0.5)) {
        const unit: Unit = [w(NEGATOR, 'negator'), word];
        units.push(unit);
        embellishments.push(copula(unit));
      } else {
        const content: Token[] = [word];
        units.push([w(rng.pick(QUOTE_VERBS)), openQuote(), content, closeQuote()]);
        // "awful" → "awful weather" → "the awful weather".
        const extra = rng.range(0, 2);
        const noun = w(rng.pick(NOUNS));
        const det = w(rng.pick(DETERMINERS));
        embellishments.push({
          p: 1,
          cost: extra,
          apply: () => {
            if (extra >= 1) content.push(noun);
            if (extra >= 2) content.unshift(det);
          },
        });
      }
    }

    // Label-independent structure that keeps `not` and quotes from being pure decoy detectors.
    const negated = ((): Token[] => {
      const kind = rng.int(3);
      if (kind === 0) return [w(rng.pick(ADJECTIVES))];
      if (kind === 1) return [w(rng.pick(DETERMINERS)), w(rng.pick(NOUNS))];
      return [w(rng.pick(PREPOSITIONS)), w(rng.pick(DETERMINERS)), w(rng.pick(NOUNS))];
    })();
    embellishments.push({ p: 0.3, cost: 1 + negated.length, apply: () => units.push([w(NEGATOR, 'negator'), ...negated]) });
    const quoted = rng.chance(0.5) ? [w(rng.pick(NOUNS))] : [w(rng.pick(DETERMINERS)), w(rng.pick(NOUNS))];
    const quoteVerb = w(rng.pick(QUOTE_VERBS));
    embellishments.push({
      p: 0.25,
      cost: 1 + quoted.length,
      apply: () => units.push([quoteVerb, openQuote(), quoted, closeQuote()]),
    });

    let budget = n - units.reduce((sum, u) => sum + lexicalCount(u), 0);
    for (const e of rng.shuffle(embellishments)) {
      // The coin is drawn even when the cost cannot fit, so the draws that follow do not depend on the budget.
      const wanted = rng.chance(e.p);
      if (wanted && e.cost <= budget) {
        e.apply();
        budget -= e.cost;
      }
    }
    while (budget > 0) {
      const phrase = fillerPhrase(rng, budget);
      units.push(phrase);
      budget -= phrase.length;
    }

    rng.shuffle(units);
    const tokens: Token[] = units.flat(2);
    tokens.push({ text: PERIOD, role: 'filler', glue: 'left' });
    const { text, words } = render(tokens);
    const keySpans = words.filter((x) => x.role === 'key').map((x): [number, number] => [x.start, x.end]);
    return { index, seed: s, text, label, labelName: classes[label], words, keySpans };
  }

  return { name, classes, vocabulary: VOCABULARY, sample };
}

/**
 * A WordPiece vocab.txt body (one token per line, line number = id) covering both variants: [PAD] = 0, [UNK],
 * [CLS], [SEP], [MASK], the punctuation, then every vocabulary word whole, so WordPiece never needs to split
 * a task word and nothing is [UNK]. The letters a–z and ##a–##z follow, which is enough to spell any other
 * lower-case ASCII word without [UNK] (e.g. hand-typed inputs in the app).
 */
export function textTaskVocab(): string[] {
  const letters = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i));
  const whole = new Set(VOCABULARY);
  return [
    '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]',
    ...VOCABULARY,
    // Single-letter words ('a', 'i') are already present; a vocab must not repeat a token.
    ...letters.filter((l) => !whole.has(l)),
    ...letters.map((l) => `##${l}`),
  ];
}
