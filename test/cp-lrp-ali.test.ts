/**
 * CP-LRP against Ali et al.'s own code (issue 15, item 15): `BertAttention.forward_and_explain` of
 * github.com/AmeenAli/XAI_Transformers on its `detach_KQ_LNorm_Norm` model, run by
 * test/fixtures/cp-lrp-bert/make_ali_reference.py on a tiny random model that it also writes as a
 * BERT folder computing the same function (the docstring there says how). Their code takes the
 * plain gradient through the pooler's tanh; the identity rule there gives other maps.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/core/tf.js';
import { ensureBackend } from '../src/core/backend.js';
import { loadModel } from '../src/core/models/load.js';
import type { ClassifierModel, TokenInput } from '../src/core/models/types.js';
import { explain } from '../src/core/explain.js';
import { ExplainContext } from '../src/core/context.js';
import { CP_LRP_RULES, cpLrpRules } from '../src/core/relevance/rulesets.js';
import { relprop } from './helpers/cli.js';

interface AliCase {
  readonly input_ids: number[];
  readonly target: number;
  readonly logits: number[];
  readonly target_logit: number;
  readonly R: number[];
  readonly R_sum: number;
}

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'cp-lrp-bert');
const reference = JSON.parse(readFileSync(path.join(dir, 'ali.json'), 'utf8')) as { cases: AliCase[] };
let model: ClassifierModel;

beforeAll(async () => {
  await ensureBackend();
  model = await loadModel(path.join(dir, 'model'));
});
afterAll(() => model?.dispose());

function tokens(ids: number[]): TokenInput {
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
    attentionMask: tf.ones([1, ids.length], 'int32') as tf.Tensor2D,
    typeIds: tf.zeros([1, ids.length], 'int32') as tf.Tensor2D,
  };
}

function dispose(t: TokenInput): void {
  tf.dispose([t.ids, t.attentionMask, ...(t.typeIds ? [t.typeIds] : [])]);
}

/** max |a − b| / max |b|. */
function relativeToMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

describe("CP-LRP on a BERT pooler equals Ali et al.'s forward_and_explain", () => {
  it('the folder computes their logits', async () => {
    for (const c of reference.cases) {
      const input = tokens(c.input_ids);
      const logits = model.predict(input);
      expect(relativeToMax(logits.dataSync(), c.logits)).toBeLessThan(1e-5);
      logits.dispose();
      dispose(input);
    }
  });

  it('cp-lrp (the default: gradient through the pooler activation) gives their maps to float32 rounding', async () => {
    for (const c of reference.cases) {
      const input = tokens(c.input_ids);
      const [e] = await explain(model, input, { method: 'cp-lrp', target: c.target });
      dispose(input);
      const where = `ids ${c.input_ids.join(',')}, target ${c.target}`;
      expect(relativeToMax(e!.map, c.R), where).toBeLessThan(1e-5);
      // Their relevance starts from the logit; with biases it does not sum to it, and ours must not either.
      const sum = e!.map.reduce((s, v) => s + v, 0);
      expect(Math.abs(sum - c.R_sum), where).toBeLessThan(1e-5 * Math.max(...c.R.map(Math.abs)) * c.R.length);
      expect(e!.options).toEqual({ rules: 'cp-lrp' });
    }
  });

  it("lrp --rules cp-lrp is the same pass; pooler 'identity' is the other, named variant", async () => {
    const c = reference.cases[0]!;
    const input = tokens(c.input_ids);
    const ctx = new ExplainContext(model, input);
    try {
      const viaLrp = await explain(model, input, { method: 'lrp', rules: 'cp-lrp', target: c.target });
      expect(relativeToMax(viaLrp[0]!.map, c.R)).toBeLessThan(1e-5);
      const [identity] = await explain(model, input, { method: 'cp-lrp', target: c.target, pooler: 'identity' });
      expect(identity!.options).toEqual({ rules: 'cp-lrp', pooler: 'identity' });
      expect(relativeToMax(identity!.map, c.R)).toBeGreaterThan(0.05);
      expect(cpLrpRules({ pooler: 'identity' }).id).toBe('cp-lrp(pooler=identity)');
      expect(cpLrpRules({ pooler: 'gradient' })).toEqual(expect.objectContaining({ id: CP_LRP_RULES.id }));
    } finally {
      ctx.dispose();
      dispose(input);
    }
  });

  it('the CLI: relprop explain --method cp-lrp gives their map; --pooler identity and smoothgrad\'s --nt-type/--abs are recorded', async () => {
    const c = reference.cases[0]!;
    const base = ['explain', '--model', path.join(dir, 'model'), '--ids', c.input_ids.join(','), '--target', String(c.target), '--json'];
    const run = async (...extra: string[]) => {
      const r = await relprop(...base, ...extra);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { options: Record<string, unknown>; map: { data: number[] } };
    };
    const gradient = await run('--method', 'cp-lrp');
    expect(relativeToMax(gradient.map.data, c.R)).toBeLessThan(1e-5);
    const identity = await run('--method', 'cp-lrp', '--pooler', 'identity');
    expect(identity.options).toEqual({ rules: 'cp-lrp', pooler: 'identity' });
    expect(relativeToMax(identity.map.data, c.R)).toBeGreaterThan(0.05);
    const sg = await run('--method', 'smoothgrad', '--samples', '3', '--nt-type', 'vargrad', '--abs', 'false');
    expect(sg.options).toEqual({ samples: 3, noise: 0.01, seed: 0, ntType: 'vargrad', abs: false });
    const wrong = await relprop(...base, '--method', 'lrp', '--pooler', 'identity');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--pooler does not apply to method 'lrp'/);
  });
});
