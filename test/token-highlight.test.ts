/**
 * The token-highlight export: the page's structure is checked with a small tag scanner rather than a
 * DOM, because the module promises plain strings that any browser parses the same way.
 */
import { describe, it, expect } from 'vitest';
import {
  tokenHighlightHtml, tokenHighlightJson, escapeHtml, type TokenHighlightInput, type HighlightWord,
} from '../src/core/report/token-highlight.js';
import { InputError } from '../src/core/errors.js';

/** Words split on whitespace, with their offsets into `text`. */
function wordsOf(text: string, relevance: (i: number) => number): HighlightWord[] {
  const out: HighlightWord[] = [];
  for (const m of text.matchAll(/\S+/g)) {
    out.push({ text: m[0], start: m.index!, end: m.index! + m[0].length, relevance: relevance(out.length) });
  }
  return out;
}

const SENTENCE = 'the food was "awful" they said , but honestly it was wonderful and not terrible .';
const REL = [0.01, 0.05, 0.02, -0.6, -0.1, 0.03, 0, 0.2, 0.35, 0.01, 0.05, 0.9, 0.04, 0.4, -0.25, -0.001];

function example(overrides: Partial<TokenHighlightInput> = {}): TokenHighlightInput {
  return {
    text: SENTENCE,
    words: wordsOf(SENTENCE, (i) => REL[i]!),
    method: 'transformer-attribution',
    methodTitle: 'Transformer attribution (Chefer et al. 2021)',
    target: { id: 1, label: 'positive' },
    prediction: { id: 1, label: 'positive', probability: 0.934 },
    model: 'bert-base-uncased-sst2',
    specialTokens: [{ token: '[CLS]', relevance: 0.12 }, { token: '[SEP]', relevance: -0.02 }],
    ledgerSummary: 'conserved to 1e-3 (largest drift 2e-7)',
    ...overrides,
  };
}

function unescapeHtml(s: string): string {
  return s.replace(/&(#\d+|#x[0-9a-f]+|amp|lt|gt|quot|apos);/gi, (_, ref: string) => {
    if (ref[0] === '#') return String.fromCodePoint(ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[ref.toLowerCase()]!;
  });
}

type Token =
  | { kind: 'open'; name: string; attrs: Record<string, string> }
  | { kind: 'close'; name: string }
  | { kind: 'text'; text: string };

/** Enough of an HTML tokenizer for markup we generate: quoted attributes, no comments or CDATA. */
function scan(html: string): Token[] {
  const tokens: Token[] = [];
  const re = /<\/([a-zA-Z][\w-]*)\s*>|<([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*\/?>|<!doctype[^>]*>|([^<]+)/gi;
  for (const m of html.matchAll(re)) {
    if (m[1]) tokens.push({ kind: 'close', name: m[1].toLowerCase() });
    else if (m[2]) {
      const attrs: Record<string, string> = {};
      for (const a of (m[3] ?? '').matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
        attrs[a[1]!.toLowerCase()] = unescapeHtml(a[2] ?? a[3] ?? a[4] ?? '');
      }
      tokens.push({ kind: 'open', name: m[2].toLowerCase(), attrs });
    } else if (m[4] !== undefined) tokens.push({ kind: 'text', text: m[4] });
  }
  // Anything the regex skipped would be a stray '<' we failed to escape.
  const rebuilt = [...html.matchAll(re)].map((m) => m[0]).join('');
  expect(rebuilt).toBe(html);
  return tokens;
}

interface SentenceView {
  /** Text content of the <p class="sentence">, unescaped. */
  text: string;
  spans: Array<{ attrs: Record<string, string>; text: string }>;
  /** Text outside the spans, in order. */
  gaps: string[];
}

function sentenceOf(html: string): SentenceView {
  const tokens = scan(html);
  const startIdx = tokens.findIndex((t) => t.kind === 'open' && t.name === 'p' && t.attrs.class === 'sentence');
  expect(startIdx).toBeGreaterThanOrEqual(0);
  const view: SentenceView = { text: '', spans: [], gaps: [] };
  let current: { attrs: Record<string, string>; text: string } | undefined;
  let gap = '';
  for (let k = startIdx + 1; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === 'close' && t.name === 'p') break;
    if (t.kind === 'open') {
      expect(t.name, 'only word spans inside the sentence').toBe('span');
      expect(current, 'spans do not nest').toBeUndefined();
      view.gaps.push(gap);
      gap = '';
      current = { attrs: t.attrs, text: '' };
    } else if (t.kind === 'close') {
      expect(t.name).toBe('span');
      view.spans.push(current!);
      current = undefined;
    } else {
      const text = unescapeHtml(t.text);
      view.text += text;
      if (current) current.text += text;
      else gap += text;
    }
  }
  view.gaps.push(gap);
  return view;
}

function backgroundOf(style: string): string {
  const m = /background:\s*(rgb\([^)]*\))/.exec(style);
  expect(m, style).not.toBeNull();
  return m![1]!.replace(/\s+/g, '');
}

describe('tokenHighlightHtml: structure', () => {
  const input = example();
  const html = tokenHighlightHtml(input);

  it('is a self-contained page with a CSP that forbids scripts and remote content', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`);
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/@import|@font-face|url\(/i);
    expect(html).not.toMatch(/\son\w+\s*=/i);
  });

  it('has one span per word, in order, with its relevance, and keeps the text between words verbatim', () => {
    const s = sentenceOf(html);
    expect(s.text).toBe(SENTENCE);
    expect(s.spans).toHaveLength(input.words.length);
    s.spans.forEach((span, i) => {
      const w = input.words[i]!;
      expect(span.attrs.class).toBe('w');
      expect(span.attrs['data-i']).toBe(String(i));
      expect(Number(span.attrs['data-relevance'])).toBe(w.relevance);
      expect(span.text).toBe(SENTENCE.slice(w.start, w.end));
      expect(span.attrs.title.startsWith(`${w.text}: `)).toBe(true);
    });
    expect(s.gaps).toEqual([''].concat(Array(input.words.length - 1).fill(' '), ['']));
  });

  it('round-trips text with leading/trailing text, tabs, newlines, CRs and words that touch', () => {
    const text = '  «Hi»,\tworld!\r\nnew line & <b>bold</b>  ';
    const words: HighlightWord[] = [
      { text: '«', start: 2, end: 3, relevance: 0.1 },
      { text: 'Hi', start: 3, end: 5, relevance: 0.5 },
      { text: '»', start: 5, end: 6, relevance: -0.2 },
      { text: 'world', start: 8, end: 13, relevance: 1 },
      { text: 'new', start: 16, end: 19, relevance: 0 },
      { text: '<b>bold</b>', start: 27, end: 38, relevance: -0.3 },
    ];
    const s = sentenceOf(tokenHighlightHtml(example({ text, words })));
    expect(s.text).toBe(text);
    expect(s.spans.map((x) => x.text)).toEqual(words.map((w) => text.slice(w.start, w.end)));
  });

  it('shows the header, the special tokens, the legend with the real scale, the top words and the ledger', () => {
    expect(html).toContain('bert-base-uncased-sst2');
    expect(html).toContain('transformer-attribution');
    expect(html).toContain('Transformer attribution (Chefer et al. 2021)');
    expect(html).toContain('93.4%');
    expect(html).toContain('[CLS]');
    expect(html).toContain('[SEP]');
    expect(html).toContain('conserved to 1e-3 (largest drift 2e-7)');
    expect(html).toMatch(/class="bar"/);
    // maxAbs = 0.9, shown at both ends of the bar.
    expect(html).toMatch(/<div class="ticks"><span>\u22120\.900<\/span><span>0<\/span><span>\+0\.900<\/span><\/div>/);
    const table = /<table class="top">[\s\S]*?<\/table>/.exec(html)![0];
    const rows = [...table.matchAll(/<tr><td class="rank">[\s\S]*?<\/tr>/g)].map((m) =>
      [...m[0].matchAll(/<span class="t"[^>]*>([^<]*)<\/span>/g)].map((x) => unescapeHtml(x[1]!)));
    expect(rows.map((r) => r[0])).toEqual(['wonderful', 'not', 'honestly', 'but', 'food']);
    expect(rows.slice(0, 4).map((r) => r[1])).toEqual(['"awful"', 'terrible', 'they', '.']);
    expect(rows[4]).toHaveLength(1);
    // Fixed decimals from the scale, so the column lines up and −0.001 doesn't read as −1.00e-3.
    const nums = [...table.matchAll(/<td class="num">([^<]*)<\/td>/g)].map((m) => m[1]);
    expect(nums.slice(0, 4)).toEqual(['+0.900', '\u22120.600', '+0.400', '\u22120.250']);
    expect(nums).toContain('\u22120.001');
  });

  it('does not round a near-certain probability up to 100%', () => {
    expect(tokenHighlightHtml(example({ prediction: { id: 1, label: 'positive', probability: 0.99996 } }))).toContain('99.996%');
    expect(tokenHighlightHtml(example({ prediction: { id: 1, label: 'positive', probability: 1 } }))).toContain('100.0%');
  });

  it('says when the explained class is not the predicted one', () => {
    const other = tokenHighlightHtml(example({ target: { id: 0, label: 'negative' } }));
    expect(other).toContain('not the predicted class');
    expect(html).not.toContain('not the predicted class');
  });
});

describe('tokenHighlightHtml: colours', () => {
  it('uses bwr: +max is red, −max blue, 0 white, in between linear', () => {
    const text = 'a b c d e';
    const words = wordsOf(text, (i) => [2, -2, 0, 1, -0.5][i]!);
    const s = sentenceOf(tokenHighlightHtml(example({ text, words })));
    expect(s.spans.map((x) => backgroundOf(x.attrs.style))).toEqual([
      'rgb(255,0,0)', 'rgb(0,0,255)', 'rgb(255,255,255)', 'rgb(255,128,128)', 'rgb(191,191,255)',
    ]);
  });

  it('is symmetric: the scale is max |relevance| even when one sign is smaller', () => {
    const text = 'x y';
    const words = wordsOf(text, (i) => [-4, 1][i]!);
    const s = sentenceOf(tokenHighlightHtml(example({ text, words })));
    expect(s.spans.map((x) => backgroundOf(x.attrs.style))).toEqual(['rgb(0,0,255)', 'rgb(255,191,191)']);
  });

  it('switches to white text on strong blue, where dark text would be hard to read', () => {
    const text = 'a b c';
    const words = wordsOf(text, (i) => [-1, -0.1, 1][i]!);
    const s = sentenceOf(tokenHighlightHtml(example({ text, words })));
    expect(s.spans[0]!.attrs.style).toMatch(/color:\s*#fff/);
    expect(s.spans[1]!.attrs.style).not.toMatch(/color/);
    // On pure red dark text has the higher contrast (≈4.7:1 against white's ≈4.0:1).
    expect(s.spans[2]!.attrs.style).not.toMatch(/color/);
  });

  it('makes every word white when all relevance is zero, with no NaN anywhere', () => {
    const words = wordsOf(SENTENCE, () => 0);
    const input = example({ words, specialTokens: [{ token: '[CLS]', relevance: 0 }] });
    const html = tokenHighlightHtml(input);
    const s = sentenceOf(html);
    expect(s.spans).toHaveLength(words.length);
    for (const span of s.spans) expect(backgroundOf(span.attrs.style)).toBe('rgb(255,255,255)');
    expect(html).not.toMatch(/NaN|Infinity/);
    const json = tokenHighlightJson(input);
    expect(json.scale.maxAbs).toBe(0);
    expect(json.words.every((w) => w.normalised === 0)).toBe(true);
    expect(JSON.stringify(json)).not.toMatch(/NaN|null/);
  });

  it('handles a sentence with no words', () => {
    const html = tokenHighlightHtml(example({ text: '...', words: [] }));
    expect(sentenceOf(html).text).toBe('...');
    expect(html).not.toMatch(/NaN/);
  });
});

describe('tokenHighlightJson', () => {
  it('carries the words with relevance normalised by max |relevance|', () => {
    const input = example();
    const json = tokenHighlightJson(input);
    expect(json.scale.maxAbs).toBe(0.9);
    expect(json.text).toBe(SENTENCE);
    expect(json.method).toBe('transformer-attribution');
    expect(json.target).toEqual({ id: 1, label: 'positive' });
    expect(json.prediction).toEqual({ id: 1, label: 'positive', probability: 0.934 });
    expect(json.model).toBe('bert-base-uncased-sst2');
    expect(json.words).toHaveLength(input.words.length);
    json.words.forEach((w, i) => {
      const src = input.words[i]!;
      expect({ text: w.text, start: w.start, end: w.end, relevance: w.relevance }).toEqual({
        text: src.text, start: src.start, end: src.end, relevance: src.relevance,
      });
      expect(w.normalised).toBeCloseTo(src.relevance / 0.9, 12);
    });
    expect(json.words[11]!.normalised).toBe(1);
    expect(json.special).toEqual([{ token: '[CLS]', relevance: 0.12 }, { token: '[SEP]', relevance: -0.02 }]);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it('keeps word pieces, which the page also shows on hover', () => {
    const text = 'wonderful';
    const words: HighlightWord[] = [{
      text, start: 0, end: 9, relevance: 0.8, pieces: [{ token: 'wonder', relevance: 0.5 }, { token: '##ful', relevance: 0.3 }],
    }];
    expect(tokenHighlightJson(example({ text, words })).words[0]!.pieces).toEqual(words[0]!.pieces);
    const title = sentenceOf(tokenHighlightHtml(example({ text, words }))).spans[0]!.attrs.title;
    expect(title).toBe('wonderful: +0.8 (pieces: wonder +0.5, ##ful +0.3)');
  });

  it('leaves out optional parts that were not given', () => {
    const json = tokenHighlightJson(example({ specialTokens: undefined, ledgerSummary: undefined, methodTitle: undefined }));
    expect('special' in json).toBe(false);
    expect('ledgerSummary' in json).toBe(false);
    expect('methodTitle' in json).toBe(false);
  });
});

describe('escaping', () => {
  it('escapeHtml covers content and both attribute quote styles', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
  });

  it('escapes everything user-provided: no <script anywhere, and the text still round-trips', () => {
    const text = `He said "hi" & <script>alert(1)</script> it's 'ok'`;
    const words = wordsOf(text, (i) => (i % 2 ? -1 : 1) * (i + 1));
    const evil = `<script>alert("x")</script>"'&`;
    const input = example({
      text,
      words: words.map((w, i) => (i === 0 ? { ...w, pieces: [{ token: evil, relevance: 1 }] } : w)),
      method: evil,
      methodTitle: evil,
      model: evil,
      target: { id: 1, label: evil },
      prediction: { id: 1, label: evil, probability: 0.5 },
      specialTokens: [{ token: evil, relevance: 0.1 }],
      ledgerSummary: evil,
    });
    const html = tokenHighlightHtml(input);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<\/script/i);
    const s = sentenceOf(html);
    expect(s.text).toBe(text);
    expect(s.spans.map((x) => x.text)).toEqual(words.map((w) => w.text));
    expect(s.spans[0]!.attrs.title).toContain(evil);
    // The scanner would have thrown on a stray tag; check the evil strings came back as text.
    const texts = scan(html).filter((t): t is Extract<Token, { kind: 'text' }> => t.kind === 'text').map((t) => unescapeHtml(t.text)).join('');
    expect(texts.split(evil).length - 1).toBeGreaterThanOrEqual(5);
  });
});

describe('validation', () => {
  const base = (words: HighlightWord[]) => example({ text: 'ab cd', words });
  it.each([
    ['overlapping', [{ text: 'ab', start: 0, end: 2, relevance: 1 }, { text: 'b', start: 1, end: 2, relevance: 1 }]],
    ['unsorted', [{ text: 'cd', start: 3, end: 5, relevance: 1 }, { text: 'ab', start: 0, end: 2, relevance: 1 }]],
    ['past the end', [{ text: 'cd!', start: 3, end: 6, relevance: 1 }]],
    ['non-integer offsets', [{ text: 'ab', start: 0.5, end: 2, relevance: 1 }]],
    ['NaN relevance', [{ text: 'ab', start: 0, end: 2, relevance: NaN }]],
    ['infinite relevance', [{ text: 'ab', start: 0, end: 2, relevance: Infinity }]],
  ] as Array<[string, HighlightWord[]]>)('rejects %s words', (_, words) => {
    expect(() => tokenHighlightHtml(base(words))).toThrow(InputError);
    expect(() => tokenHighlightJson(base(words))).toThrow(InputError);
  });
});
