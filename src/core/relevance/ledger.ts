/**
 * The conservation ledger: relevance totals at every layer boundary a relevance pass crosses, in the
 * order it crosses them (pre-order, like the authors' module tree), one ledger per input.
 */
import { tf, type Tensor } from '../tf.js';

export interface LedgerEntry {
  /** The layer, named as in the authors' code (e.g. 'blocks.2.add1'), so the golden trace lines up. */
  readonly layer: string;
  /** Layer type: 'Linear', 'Add', 'Clone', 'einsum', 'Block', … (the authors' class names). */
  readonly kind: string;
  /** Nesting depth in the module tree (a block's Add is one below the block). */
  readonly depth: number;
  /** Relevance total entering the layer from above. */
  readonly relevanceIn: number;
  /** Relevance total leaving it towards the input, over all branches. */
  readonly relevanceOut: number;
  /** Per-branch totals, where the layer has several inputs (Add, the attention matmuls). */
  readonly branches?: readonly number[];
}

interface PendingEntry {
  layer: string;
  kind: string;
  depth: number;
  inSums: Tensor | null;
  outSums: Tensor[];
}

/**
 * Collects per-sample sums as tensors during a pass and downloads them once at the end, so the
 * ledger costs one sync, not one per layer.
 */
export class LedgerRecorder {
  private readonly entries: PendingEntry[] = [];
  private depth = 0;

  constructor(private readonly batch: number) {}

  private sums(t: Tensor | readonly Tensor[]): Tensor {
    const parts = Array.isArray(t) ? (t as readonly Tensor[]) : [t as Tensor];
    return tf.keep(tf.tidy(() => tf.addN(parts.map((p) => tf.sum(tf.reshape(p, [this.batch, -1]), 1)))));
  }

  /** Record a leaf layer. `rIn` may be several tensors (the branches arriving at a Clone). */
  record(layer: string, kind: string, rIn: Tensor | readonly Tensor[], rOut: readonly Tensor[]): void {
    this.entries.push({ layer, kind, depth: this.depth, inSums: this.sums(rIn), outSums: rOut.map((t) => this.sums(t)) });
  }

  /** Open a composite layer (block, attention, MLP); its children are recorded one level deeper. */
  open(layer: string, kind: string, rIn: Tensor): PendingEntry {
    const e: PendingEntry = { layer, kind, depth: this.depth, inSums: this.sums(rIn), outSums: [] };
    this.entries.push(e);
    this.depth++;
    return e;
  }

  close(entry: PendingEntry, rOut: readonly Tensor[]): void {
    entry.outSums = rOut.map((t) => this.sums(t));
    this.depth--;
  }

  /** One ledger per sample. Disposes the collected sums. */
  finish(): LedgerEntry[][] {
    const all = this.entries.flatMap((e) => [e.inSums!, ...e.outSums]);
    let values: Float32Array = new Float32Array();
    if (all.length) {
      const stacked = tf.stack(all);
      values = stacked.dataSync() as Float32Array;
      stacked.dispose();
    }
    tf.dispose(all);
    const B = this.batch;
    return Array.from({ length: B }, (_, b) => {
      let at = 0;
      return this.entries.map((e) => {
        const rIn = values[at * B + b]!;
        at++;
        const branches = e.outSums.map(() => values[at++ * B + b]!);
        const entry: LedgerEntry = {
          layer: e.layer,
          kind: e.kind,
          depth: e.depth,
          relevanceIn: rIn,
          relevanceOut: branches.reduce((s, x) => s + x, 0),
          ...(branches.length > 1 ? { branches } : {}),
        };
        return entry;
      });
    });
  }
}

/** The attention products, as the authors' ViT ('einsum') and BERT ('MatMul') code name them. */
const MATMUL_KINDS = new Set(['einsum', 'MatMul']);

export interface Drift {
  readonly layer: string;
  readonly kind: string;
  /** |out − in| / |in|; for the attention matmuls, the worst operand (each should carry all of R). */
  readonly drift: number;
}

/**
 * Relative drift of every ledger entry. The attention matmuls' gradient × input hands all of R to
 * each operand before the rule set's share is applied, so each branch is compared with the input.
 */
export function conservationReport(ledger: readonly LedgerEntry[]): Drift[] {
  return ledger.map((e) => {
    const scale = Math.max(Math.abs(e.relevanceIn), 1e-12);
    const drift =
      MATMUL_KINDS.has(e.kind) && e.branches
        ? Math.max(...e.branches.map((b) => Math.abs(b - e.relevanceIn) / scale))
        : Math.abs(e.relevanceOut - e.relevanceIn) / scale;
    return { layer: e.layer, kind: e.kind, drift };
  });
}

/** The layers whose drift exceeds `tolerance` (an empty list means conserved everywhere). */
export function conservationViolations(ledger: readonly LedgerEntry[], tolerance: number): Drift[] {
  return conservationReport(ledger).filter((d) => !(d.drift <= tolerance));
}
