import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { relevancePass } from '../src/core/relevance/passes.js';
import path from 'node:path';
import { tf } from '../src/core/tf.js';
import { loadModel } from '../src/core/models/load.js';
import type { ViTModel } from '../src/core/models/vit.js';
import { PAPER_RULES, BASELINE_RULES, type RuleSet } from '../src/core/relevance/rulesets.js';
import { tensorsOf } from '../src/core/context.js';
import { GOLDEN_DIR, loadGolden, tensor, expectClose } from './helpers/golden.js';

const CASE = 'vit-tiny-a';
const golden = loadGolden(CASE);
// The golden README: relevance-derived fields within about 3× precision.json's float32-vs-float64
// deviation; the issue fixes 5e-3 of each field's max |value| for ViT.
const TOL = 5e-3;
let model: ViTModel;

beforeAll(async () => {
  model = (await loadModel(path.join(GOLDEN_DIR, CASE))) as ViTModel;
});
afterAll(() => model?.dispose());

function run(i: number, target: number, rules: RuleSet) {
  const t = tensor(golden.inputs[i].pixel_values);
  const pixels = tf.tensor4d(t.data, t.shape as [number, number, number, number]);
  const fwd = model.forward({ kind: 'image', pixels });
  const rel = relevancePass(model, fwd, [target], rules, { toInput: true, capture: true });
  const out = {
    attnCam: rel.attnCam.map((a) => a.dataSync() as Float32Array),
    captured: Object.fromEntries(Object.entries(rel.captured).map(([k, v]) => [k, v.dataSync() as Float32Array])),
    pixels: (rel.input as tf.Tensor3D).dataSync() as Float32Array,
    ledger: rel.ledger[0]!,
  };
  tf.dispose([pixels, ...tensorsOf(fwd), ...rel.attnCam, rel.tokens, (rel.input as tf.Tensor3D), ...Object.values(rel.captured)]);
  return out;
}

for (let i = 0; i < golden.inputs.length; i++) {
  for (let k = 0; k < 2; k++) {
    const g = golden.results[i].targets[k];
    const label = `${golden.inputs[i].id} target ${g.target} (${g.kind})`;
    describe(`relevance pass vs the authors' code: ${label}`, () => {
      for (const [rules, set] of [[PAPER_RULES, 'ours'], [BASELINE_RULES, 'orig']] as const) {
        it(`${set} rules: attention relevance (attn_cam) of every layer`, () => {
          const r = run(i, g.target, rules);
          g[set].attn_cam.forEach((cam: unknown, l: number) => expectClose(r.attnCam[l]!, tensor(cam).data, TOL, `${set}.attn_cam[${l}]`));
        });

        it(`${set} rules: the ledger reproduces the authors' relprop trace, module by module`, () => {
          const r = run(i, g.target, rules);
          const trace = g[set].trace as { module: string; type: string; depth: number; in_sum: number; out_sums: number[] }[];
          expect(r.ledger.map((e) => e.layer)).toEqual(trace.map((e) => e.module));
          expect(r.ledger.map((e) => e.kind)).toEqual(trace.map((e) => e.type));
          expect(r.ledger.map((e) => e.depth)).toEqual(trace.map((e) => e.depth));
          const scale = Math.max(...trace.flatMap((e) => [Math.abs(e.in_sum), ...e.out_sums.map(Math.abs)]));
          trace.forEach((e, j) => {
            const ours = r.ledger[j]!;
            expect(Math.abs(ours.relevanceIn - e.in_sum) / scale, `${e.module} in`).toBeLessThan(TOL);
            const branches = ours.branches ?? [ours.relevanceOut];
            expect(branches.length, `${e.module} branches`).toBe(e.out_sums.length);
            e.out_sums.forEach((s, b) => expect(Math.abs(branches[b]! - s) / scale, `${e.module} out[${b}]`).toBeLessThan(TOL));
          });
        });
      }

      it('ours rules: relevance tensors at every module boundary (ours.relevance)', () => {
        const r = run(i, g.target, PAPER_RULES);
        const rel = g.ours.relevance;
        for (const key of ['head(pre_head_features)', 'pool(tokens_after_final_norm)', 'norm(output_of_last_block)', 'embedding.add.tokens', 'embedding.add.pos_embed', 'patch_embed(pixels,per_channel)']) {
          expectClose(r.captured[key]!, tensor(rel[key]).data, TOL, key);
        }
        rel.blocks.forEach((blk: Record<string, unknown>, l: number) => {
          for (const [name, value] of Object.entries(blk)) expectClose(r.captured[`blocks.${l}.${name}`]!, tensor(value).data, TOL, `blocks.${l}.${name}`);
        });
      });

      it('conservation: the paper rules keep the total at 1 down to block 0; the sums match ours/orig.conservation', () => {
        for (const [rules, set] of [[PAPER_RULES, 'ours'], [BASELINE_RULES, 'orig']] as const) {
          const r = run(i, g.target, rules);
          const c = g[set].conservation;
          const at = (layer: string) => r.ledger.find((e) => e.layer === layer)!;
          // "Within 5e-3 of the field's max |value|": the field is this conservation record. Under the
          // baseline rules its sums reach hundreds and float32 alone moves them by ~0.2 (golden vs golden64).
          const { target_logit: _logit, ...sums } = c;
          const scale = Math.max(...JSON.stringify(sums).match(/-?\d+\.?\d*(e-?\d+)?/g)!.map((x) => Math.abs(Number(x))));
          const close = (a: number, b: number, what: string) => expect(Math.abs(a - b), `${set} ${what}: ${a} vs ${b}`).toBeLessThan(TOL * scale);
          close(at('head').relevanceOut, c.after_head, 'after_head');
          c.block_relevance_out_in.forEach(([out, inn]: [number, number], l: number) => {
            close(at(`blocks.${l}`).relevanceIn, out, `block ${l} out`);
            close(at(`blocks.${l}`).relevanceOut, inn, `block ${l} in`);
          });
          close(at('add').branches![0]!, c['embedding_split(tokens,pos_embed)'][0], 'embedding tokens');
          close(at('add').branches![1]!, c['embedding_split(tokens,pos_embed)'][1], 'embedding pos');
          close(r.pixels.reduce((s, x) => s + x, 0), c.pixels_after_patch_embed_conv, 'pixels');
          if (set === 'ours') {
            for (const e of r.ledger.filter((x) => x.layer.startsWith('blocks') || ['head', 'pool', 'norm'].includes(x.layer))) {
              // Each matmul hands all of R to both operands before the halving; that is by design.
              const expected = e.kind === 'einsum' ? 2 : 1;
              expect(Math.abs(e.relevanceOut - expected * e.relevanceIn), e.layer).toBeLessThan(1e-5 * expected);
            }
          }
        }
      });
    });
  }
}
