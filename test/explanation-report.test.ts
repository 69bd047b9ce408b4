/** The one-input report (app export, `relprop explain --report`) and the ledger chart both embed. */
import { describe, it, expect } from 'vitest';
import { ledgerChartSvg, type LedgerPoint } from '../src/core/report/ledger-chart.js';
import { explanationReportHtml, type ExplanationReportInput } from '../src/core/report/explanation-report.js';

const row = (layer: string, depth: number, rIn: number, rOut: number, extra: Partial<LedgerPoint> = {}): LedgerPoint => ({
  layer,
  kind: 'Module',
  depth,
  relevanceIn: rIn,
  relevanceOut: rOut,
  drift: Math.abs(rOut - rIn) / Math.abs(rIn),
  ...extra,
});

// A two-block model's ledger in pre-order: top-level boundaries at depth 0, block internals deeper.
const LEDGER: LedgerPoint[] = [
  row('head', 0, 1, 1),
  row('blocks.1', 0, 1, 1),
  row('blocks.1.mlp', 1, 0.4, 0.4),
  row('blocks.1.attn', 1, 0.6, 0.6),
  row('blocks.0', 0, 1, 0.9),
  row('blocks.0.mlp', 1, 0.5, 0.4),
];

function points(svg: string): Array<{ status: string; cy: number }> {
  return [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)" r="[\d.]+" fill="#[0-9a-f]+" data-status="(\w+)">/g)].map((m) => ({ cy: Number(m[1]), status: m[2]! }));
}

describe('ledger chart', () => {
  it('plots one point per top-level boundary, and marks a boundary whose inside drifts', () => {
    const svg = ledgerChartSvg(LEDGER, { tolerance: 1e-3 });
    expect(svg).toContain('data-points="3"');
    const p = points(svg);
    expect(p.map((x) => x.status)).toEqual(['ok', 'ok', 'drift']);
    // head and blocks.1 both take in 1: the same height; nested rows (0.4, 0.6) are not plotted.
    expect(p[0]!.cy).toBe(p[1]!.cy);
    // The final polyline point is what leaves the last boundary (0.9), below the others.
    const poly = /<polyline[^>]* points="([^"]+)"/.exec(svg)![1]!.split(' ').map((xy) => Number(xy.split(',')[1]));
    expect(poly).toHaveLength(4);
    expect(poly[3]!).toBeGreaterThan(poly[0]!);
  });

  it('draws boundaries the rule set does not claim as expected, not as violations', () => {
    // As the recorder writes it: a block holding an exempt rule is itself exempt.
    const ledger = [row('head', 0, 1, 1), row('blocks.0', 0, 1, 0.5, { expected: true }), row('blocks.0.attn.softmax', 1, 0.5, 0.1, { expected: true })];
    expect(points(ledgerChartSvg(ledger)).map((x) => x.status)).toEqual(['ok', 'expected']);
    // Drift below float32's resolution there is rounding, not a violation.
    const rounding = [row('head', 0, 1, 1), row('blocks.0', 0, 1, 1), row('blocks.0.mlp', 1, 1e-4, 1.2e-4, { resolution: 0.5 })];
    expect(points(ledgerChartSvg(rounding)).map((x) => x.status)).toEqual(['ok', 'ok']);
  });

  it('goes down to the depth of the blocks, as in BERT where they sit two levels down', () => {
    const bert = [
      row('classifier', 0, 1, 1),
      row('bert', 0, 1, 1),
      row('bert.pooler', 1, 1, 1),
      row('bert.encoder', 1, 1, 1),
      row('bert.encoder.layer.1', 2, 1, 1),
      row('bert.encoder.layer.1.attention', 3, 0.7, 0.7),
      row('bert.encoder.layer.0', 2, 1, 1),
      row('bert.encoder.layer.0.output', 3, 0.3, 0.2),
    ];
    const svg = ledgerChartSvg(bert);
    expect(svg).toContain('data-points="6"');
    expect(points(svg).map((x) => x.status)).toEqual(['ok', 'drift', 'ok', 'drift', 'ok', 'drift']);
    expect(svg).toContain('>b1<');
    expect(svg).toContain('>pooler<');
  });

  it('is inert markup: no script, no style attributes, labels escaped', () => {
    const svg = ledgerChartSvg([row('<img src=x onerror=alert(1)>', 0, 1, 1)]);
    expect(svg).not.toMatch(/<script|style=|<img/);
    expect(svg).toContain('&lt;img');
  });
});

const PNG = 'data:image/png;base64,iVBORw0KGgo=';

function imageReport(): ExplanationReportInput {
  return {
    model: 'image-softmax',
    input: { kind: 'image', name: 'cat.png', png: PNG },
    prediction: [
      { classId: 1, label: 'square', probability: 0.9 },
      { classId: 0, label: 'circle', probability: 0.1 },
    ],
    target: { classId: 0, label: 'circle' },
    results: [
      { method: 'lrp', title: 'LRP', ms: 12.5, signed: true, overlayPng: PNG, ledger: { tolerance: 1e-3, conserved: false, largestDrift: 0.1, largestDriftLayer: 'blocks.0', rows: LEDGER }, layers: [{ layer: 0, total: 0.5, overlayPng: PNG }] },
      { method: 'rollout', title: 'Attention rollout', ms: 1500, signed: false, overlayPng: 'https://example.com/x.png', ledger: null },
    ],
  };
}

describe('explanation report', () => {
  it('holds every method with its status and time, and only data: pictures', () => {
    const html = explanationReportHtml(imageReport());
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect([...html.matchAll(/<article class="card" data-method="([^"]+)"/g)].map((m) => m[1])).toEqual(['lrp', 'rollout']);
    expect(html).toContain('✗ drift 1.0e-1 at blocks.0');
    expect(html).toContain('no ledger');
    expect(html).toContain('12.5 ms');
    expect(html).toContain('1.50 s');
    // The remote overlay is dropped, not linked.
    expect(html).not.toContain('example.com');
    expect([...html.matchAll(/<img src="([^"]+)"/g)].every((m) => m[1]!.startsWith('data:image/png;base64,'))).toBe(true);
    // Input, lrp's overlay and its one layer map: three pictures.
    expect([...html.matchAll(/<img /g)]).toHaveLength(3);
    expect(html).toContain('(not the predicted class)');
    expect(html).not.toMatch(/<script/i);
  });

  it('shades the sentence of a text input word by word, keeping the text exact', () => {
    const text = 'not <b>bad</b>';
    const html = explanationReportHtml({
      model: 'text-softmax',
      input: { kind: 'text', name: 'text', text },
      prediction: [{ classId: 1, label: 'positive', probability: 0.8 }],
      target: { classId: 1, label: 'positive' },
      results: [
        {
          method: 'transformer-attribution',
          title: 'TA',
          ms: 3,
          signed: false,
          words: [
            { text: 'not', start: 0, end: 3, relevance: -0.5 },
            { text: '<b>bad</b>', start: 4, end: 14, relevance: 1 },
          ],
          ledger: null,
        },
      ],
    });
    expect(html).not.toContain('<b>');
    const sentence = /<article[^>]*>.*?<p class="sentence" dir="auto">(.*?)<\/p>/s.exec(html)![1]!;
    const plain = sentence.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
    expect(plain).toBe(text);
    // Full red for the strongest word, blue for the negative one.
    expect(sentence).toMatch(/background: rgb\(255,0,0\)[^>]*>&lt;b&gt;bad/);
    expect(sentence).toMatch(/background: rgb\(128,128,255\)[^>]*>not</);
    expect(html).toContain('(the predicted class)');
  });
});
