/**
 * The relevance pass through one pre-LN transformer block — x + Attn(LN₁(x)), then + MLP(LN₂(·)) —
 * shared by ViT (timm's Block) and GPT-2 (HF's GPT2Block), in the order of the authors' relprop:
 * add2 → MLP (fc2, GELU, fc1) → norm2 → clone2 → add1 → attention (proj, core) → norm1 → clone1.
 * The families differ only in their module names, which the ledger must carry to line up with each
 * reference trace; those come in a table.
 */
import type { Tensor, Tensor2D, Tensor4D } from '../tf.js';
import type { LayerNorm } from '../ops.js';
import type { Attention, Mlp, PreLnBlockRecord } from '../models/layers.js';
import type { RuleSet } from './rulesets.js';
import type { LedgerRecorder } from './ledger.js';
import { attentionCoreRelevance, type AttentionNames } from './attention.js';

/** A pre-LN block's weights, as both families keep them. */
export interface PreLnBlock {
  readonly name: string;
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
}

/** The family's names and classes for the block's pieces (ledger layer names and kinds). */
export interface PreLnBlockNames {
  readonly block: string;
  readonly mlp: string;
  readonly attention: string;
  /** The Linear class: 'Linear' (timm) or 'Conv1D' (HF GPT-2). */
  readonly linear: string;
  readonly mlpDropout: string;
  readonly fc1: string;
  readonly fc2: string;
  readonly norm1: string;
  readonly norm2: string;
  readonly residDropout: string;
  readonly proj: string;
  /** The attention core's names, without the scope (the block's attention module name). */
  readonly core: Omit<AttentionNames, 'scope'>;
}

export interface PreLnBlockContext {
  readonly batch: number;
  readonly tokens: number;
  readonly rules: RuleSet;
  readonly ledger: LedgerRecorder;
  /** Keeps a copy of an intermediate relevance under the reference trace's key (RelevanceOptions.capture). */
  readonly keep: (key: string, t: Tensor) => void;
  readonly mask?: Tensor2D;
  readonly causal?: boolean;
}

/**
 * R at the block's input from R at its output, and R^(A) of its attention. With `stopAtAttention`
 * the pass ends once R^(A) is known: R is then null and the block's composites are abandoned.
 */
export function preLnBlockRelevance(
  blk: PreLnBlock,
  r: PreLnBlockRecord,
  R: Tensor2D,
  names: PreLnBlockNames,
  c: PreLnBlockContext,
  stopAtAttention = false,
): { R: Tensor2D | null; cam: Tensor4D } {
  const { rules, ledger, keep, batch: B } = c;
  const n = blk.name;
  const block = ledger.open(n, names.block, R);

  const [rRes2, rMlpOut] = rules.add(r.mid, r.mlp.output, R, B);
  ledger.record(`${n}.add2`, 'Add', R, [rRes2, rMlpOut]);
  keep(`${n}.add2.residual`, rRes2);
  keep(`${n}.add2.mlp_branch`, rMlpOut);
  const mlp = ledger.open(`${n}.mlp`, names.mlp, rMlpOut);
  ledger.record(`${n}.mlp.${names.mlpDropout}`, 'Dropout', rMlpOut, [rMlpOut]);
  const rAct = rules.linear(blk.mlp.fc2, r.mlp.activated, rMlpOut, r.mlp.output);
  ledger.record(`${n}.mlp.${names.fc2}`, names.linear, rMlpOut, [rAct]);
  const rHidden = rules.gelu(rAct, { input: r.mlp.hidden, output: r.mlp.activated });
  ledger.record(`${n}.mlp.act`, 'GELU', rAct, [rHidden]);
  const rMlpIn = rules.linear(blk.mlp.fc1, r.mlp.input, rHidden, r.mlp.hidden);
  ledger.record(`${n}.mlp.${names.fc1}`, names.linear, rHidden, [rMlpIn]);
  ledger.close(mlp, [rMlpIn]);
  keep(`${n}.mlp(=${names.norm2} out)`, rMlpIn);
  const rNorm2 = rules.layerNorm(rMlpIn, { input: r.mid, output: r.norm2Out, norm: blk.norm2 });
  ledger.record(`${n}.${names.norm2}`, 'LayerNorm', rMlpIn, [rNorm2]);
  const rMid = rules.clone(r.mid, [rRes2, rNorm2]);
  ledger.record(`${n}.clone2`, 'Clone', [rRes2, rNorm2], [rMid]);
  keep(`${n}.clone2(mid)`, rMid);

  const [rRes1, rAttnOut] = rules.add(r.input, r.attn.output, rMid, B);
  ledger.record(`${n}.add1`, 'Add', rMid, [rRes1, rAttnOut]);
  keep(`${n}.add1.residual`, rRes1);
  keep(`${n}.add1.attn_branch`, rAttnOut);
  const scope = blk.attn.name;
  const attn = ledger.open(scope, names.attention, rAttnOut);
  ledger.record(`${scope}.${names.residDropout}`, 'Dropout', rAttnOut, [rAttnOut]);
  const rContext = rules.linear(blk.attn.proj, r.attn.context, rAttnOut, r.attn.output);
  ledger.record(`${scope}.${names.proj}`, names.linear, rAttnOut, [rContext]);
  const core = attentionCoreRelevance(blk.attn, r.attn, rContext, B, c.tokens, rules, ledger, { scope, ...names.core }, c.mask, c.causal ?? false, stopAtAttention);
  if (!core.input) {
    // Stopped at this layer's R^(A): the composites around it were not crossed.
    ledger.abandon(attn);
    ledger.abandon(block);
    return { R: null, cam: core.attnCam };
  }
  ledger.close(attn, [core.input]);
  keep(`${n}.attn(=${names.norm1} out)`, core.input);
  const rNorm1 = rules.layerNorm(core.input, { input: r.input, output: r.norm1Out, norm: blk.norm1 });
  ledger.record(`${n}.${names.norm1}`, 'LayerNorm', core.input, [rNorm1]);
  const rIn = rules.clone(r.input, [rRes1, rNorm1]);
  ledger.record(`${n}.clone1`, 'Clone', [rRes1, rNorm1], [rIn]);
  ledger.close(block, [rIn]);
  keep(`${n}.block_input`, rIn);
  return { R: rIn, cam: core.attnCam };
}
