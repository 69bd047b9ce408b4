/**
 * The app's conservation verdict (issue 17 item 7): AttnLRP and CP-LRP drift only where a bias takes
 * its share under the ε / LRP-0 rules, so on the shipped models the verdict reads "not conservative
 * by design", naming the leaf layer with the largest drift. A composite (a block, BertIntermediate)
 * drifts only through its children, so a leaf of another kind that drifts (a real bug) must still
 * read as a failed check. Zero-bias models conserving at every boundary is in attnlrp-cplrp.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import { explain } from '../src/core/explain.js';
import { encodeText } from '../src/core/text-inputs.js';
import type { ClassifierModel, ModelInput } from '../src/core/models/types.js';
import type { LedgerEntry } from '../src/core/relevance/ledger.js';
import { explainVerdict, ledgerSummary } from '../src/main/verdict.js';
import { CONSERVATION_TOLERANCE } from '../src/shared/api.js';
import { ROOT } from './helpers/cli.js';

const CASES: Array<{ name: string; folder: string; input: (m: ClassifierModel) => ModelInput }> = [
  { name: 'text-softmax (BERT)', folder: 'text-softmax', input: (m) => encodeText(m as Parameters<typeof encodeText>[0], 'the cat sat on the mat').input },
  { name: 'image-softmax (ViT)', folder: 'image-softmax', input: () => ({ kind: 'image', pixels: tf.randomNormal([1, 3, 64, 64], 0, 1, 'float32', 5) as tf.Tensor4D }) },
];

const isLeaf = (ledger: readonly LedgerEntry[], i: number) => i + 1 >= ledger.length || ledger[i + 1]!.depth <= ledger[i]!.depth;

describe('conservation verdicts of AttnLRP and CP-LRP on the shipped models', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      let model: ClassifierModel;
      let input: ModelInput;
      beforeAll(async () => {
        model = await loadModel(path.join(ROOT, 'models', c.folder));
        input = c.input(model);
      });
      afterAll(() => model.dispose());

      for (const method of ['attnlrp', 'cp-lrp'] as const) {
        it(`${method}: "not conservative by design", at the leaf with a bias that drifts most`, async () => {
          const [e] = await explain(model, input, { method });
          const summary = ledgerSummary(e!.ledger, CONSERVATION_TOLERANCE)!;
          expect(summary.conserved).toBe(false);
          const verdict = explainVerdict(summary, e!.options.rules, null);
          expect(verdict.byDesign).toBeDefined();
          // The named layer is the leaf with the largest drift, and a layer with a bias.
          const leaves = summary.rows.filter((r, i) => isLeaf(e!.ledger!, i) && !r.expected);
          const worst = leaves.reduce((a, b) => (b.drift > a.drift ? b : a));
          expect(['Linear', 'LayerNorm', 'Conv2d', 'PatchEmbed']).toContain(worst.kind);
          expect(verdict.byDesign).toContain(`the largest drift is at ${worst.kind} ${worst.layer}, a layer with a bias`);
          expect(verdict.byDesign).toMatch(method === 'attnlrp' ? /^the AttnLRP rules/ : /^the CP-LRP rules/);

          // The same ledger with a residual Add that loses a tenth of its relevance: not by design.
          const add = e!.ledger!.findIndex((r, i) => r.kind === 'Add' && isLeaf(e!.ledger!, i));
          expect(add).toBeGreaterThanOrEqual(0);
          const broken = e!.ledger!.map((r, i) => (i === add ? { ...r, relevanceOut: r.relevanceIn * 0.9 } : r));
          const brokenVerdict = explainVerdict(ledgerSummary(broken, CONSERVATION_TOLERANCE)!, e!.options.rules, null);
          expect(brokenVerdict.conserved).toBe(false);
          expect(brokenVerdict.byDesign).toBeUndefined();
        });
      }
    });
  }
});
