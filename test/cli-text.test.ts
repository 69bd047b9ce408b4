import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, tensor, expectClose } from './helpers/golden.js';
import { relprop, unescapeHtml } from './helpers/cli.js';
import { BERT_DIR, bertGolden as golden } from './helpers/bert.js';

let tmp: string;
let textModel: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-cli-text-'));
  // The golden BERT weights behind a real tokenizer, so `--text` runs end to end.
  textModel = path.join(tmp, 'bert-with-vocab');
  await fs.mkdir(textModel);
  for (const f of ['config.json', 'weights.safetensors']) await fs.copyFile(path.join(BERT_DIR, f), path.join(textModel, f));
  await fs.copyFile(path.join(FIXTURES, 'text-vocab', 'vocab.txt'), path.join(textModel, 'vocab.txt'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('relprop explain on text', () => {
  it('--ids with padding (golden seq2) --json: the map equals the authors\' generate_LRP', async () => {
    const ids = Array.from(tensor(golden.inputs[2].input_ids).data).join(',');
    const g = golden.results[2].targets[0];
    const r = await relprop('explain', '--model', BERT_DIR, '--ids', ids, '--method', 'transformer-attribution', '--target', String(g.target), '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.map.shape).toEqual([12]);
    expect(out.map.space).toBe('token');
    expectClose(out.map.data, tensor(g.methods['ours.generate_LRP.start_layer_0'].output).data, 4e-2, 'transformer-attribution');
    expect(out.ledger.at(-1).layer).toBe('bert.encoder.layer.0.attention.clone');
  });

  it('--text tokenises with the folder\'s vocab.txt and --out FILE.html writes the highlight; word relevance sums its pieces', async () => {
    const html = path.join(tmp, 'out', 'tokens.html');
    const r = await relprop('explain', '--model', textModel, '--text', 'The food was unbelievable, but the service was boring!', '--method', 'lrp', '--out', html);
    expect(r.code).toBe(0);
    const page = await fs.readFile(html, 'utf8');
    expect(page).not.toMatch(/<script|https?:\/\//i);
    expect((page.match(/<span class="w"/g) ?? []).length).toBe(11); // the, food, was, unbelievable, ",", but, the, service, was, boring, !
    const j = await relprop('explain', '--model', textModel, '--text', 'The food was unbelievable, but the service was boring!', '--method', 'lrp', '--json');
    const out = JSON.parse(j.stdout);
    expect(out.tokens).toEqual(['[CLS]', 'the', 'food', 'was', 'un', '##believ', '##able', ',', 'but', 'the', 'service', 'was', 'boring', '!', '[SEP]']);
    const word = out.words.find((w: { text: string }) => w.text === 'unbelievable');
    expect(word).toMatchObject({ start: 13, end: 25 });
    expect(word.relevance).toBeCloseTo(out.map.data[4] + out.map.data[5] + out.map.data[6], 6);
    // Both outputs record what produced them (issue 15, item 16): the folder's real weights hash, the
    // method, the rule set it defaulted to, the target, the engine and the date.
    const sha = createHash('sha256').update(await fs.readFile(path.join(textModel, 'weights.safetensors'))).digest('hex');
    const inPage = JSON.parse(unescapeHtml(/<pre hidden id="relprop-provenance">(.*?)<\/pre>/s.exec(page)![1]!));
    for (const p of [out.provenance, inPage]) {
      expect(p.model.weightsSha256).toBe(sha);
      expect(p.model.folder).toBe(path.resolve(textModel));
      expect(p.method).toBe('lrp');
      expect(p.rules).toBe('paper');
      expect(p.target).toBe(out.target);
      expect(p.engine).toMatch(/\w/);
      expect(Number.isNaN(Date.parse(p.date))).toBe(false);
    }
    expect(page).toMatch(/weights sha256 [0-9a-f]{64}/);
  });

  it('empty text, a non-UTF-8 file, and ids outside the vocabulary are clear errors; long text is truncated with a warning', async () => {
    let r = await relprop('explain', '--model', textModel, '--text', '   ');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/empty/);
    const bad = path.join(tmp, 'latin1.txt');
    await fs.writeFile(bad, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    r = await relprop('explain', '--model', textModel, '--text-file', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/latin1\.txt.*UTF-8/);
    r = await relprop('explain', '--model', BERT_DIR, '--ids', '1,99,2');
    expect(r.stderr).toMatch(/token id 99 is not in the model's vocabulary \(0\.\.49\)/);
    r = await relprop('explain', '--model', textModel, '--text', Array(40).fill('good food').join(' '), '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: the text has 82 tokens.*more than maxLength 32: kept the first 30/);
    expect(JSON.parse(r.stdout).map.shape).toEqual([32]);
    r = await relprop('explain', '--model', BERT_DIR, '--text', 'hello');
    expect(r.stderr).toMatch(/has no tokenizer/);
    r = await relprop('explain', '--model', BERT_DIR, '--image', 'x.png');
    expect(r.stderr).toMatch(/takes text/);
  });
});
