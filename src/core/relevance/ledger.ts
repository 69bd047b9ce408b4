/**
 * The conservation ledger: relevance totals at every layer boundary a relevance pass crosses, in the
 * order it crosses them (pre-order, like the authors' module tree), one ledger per input.
 */
import { tf, type Tensor } from '../tf.js';
import { sampleSums } from '../fused.js';

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
  /**
   * Σ|R| over the relevance entering and leaving (every element, either sign): what the boundary's
   * totals are sums of. float32 resolves a total only to about 2⁻²⁴ of its terms' magnitude, so a
   * drift that is a small multiple of magnitude·2⁻²⁴ is rounding, not the rule (see conservationReport).
   */
  readonly magnitude?: number;
  /** How many terms (elements per sample) those totals sum. */
  readonly terms?: number;
  /**
   * True where the rule set does not claim conservation: a rule that is not conservative by design
   * (AttnLRP's softmax Taylor rule, whose bias term absorbs relevance) and every composite layer
   * around it. Absent where the rules claim conservation.
   */
  readonly expectedDrift?: true;
}

interface PendingEntry {
  layer: string;
  kind: string;
  depth: number;
  inSums: Tensor | null;
  outSums: Tensor[];
  expectedDrift: boolean;
  terms: number;
}

/**
 * Collects per-sample sums as tensors during a pass and downloads them once at the end, so the
 * ledger costs one sync, not one per layer.
 */
export class LedgerRecorder {
  private readonly entries: PendingEntry[] = [];
  /** The composite layers open now, outermost first. */
  private readonly stack: PendingEntry[] = [];

  /**
   * The sums of each tensor recorded so far: most tensors are recorded twice or more (leaving one
   * boundary and entering the next, or as a branch and as the next layer's input), summed once.
   */
  private readonly cache = new Map<Tensor, Tensor>();

  constructor(private readonly batch: number) {}

  /** [2, B]: per sample, the total ΣR and the magnitude Σ|R| of one or more tensors. */
  private sums(t: Tensor | readonly Tensor[]): Tensor {
    const parts = Array.isArray(t) ? (t as readonly Tensor[]) : [t as Tensor];
    const one = parts.length === 1 ? parts[0]! : null;
    const hit = one && this.cache.get(one);
    if (hit) return hit;
    const s = tf.keep(tf.tidy(() => (parts.length === 1 ? sampleSums(parts[0]!, this.batch) : tf.addN(parts.map((p) => sampleSums(p, this.batch))))));
    if (one) this.cache.set(one, s);
    else this.cache.set(s, s);
    return s;
  }

  /** Elements per sample in one or more tensors. */
  private terms(t: Tensor | readonly Tensor[]): number {
    const parts = Array.isArray(t) ? (t as readonly Tensor[]) : [t as Tensor];
    return parts.reduce((n, p) => n + p.size / this.batch, 0);
  }

  /**
   * Record a leaf layer. `rIn` may be several tensors (the branches arriving at a Clone).
   * `expectedDrift`: the rule used here does not claim conservation; the composites around it are
   * marked too, since their totals include its drift.
   */
  record(layer: string, kind: string, rIn: Tensor | readonly Tensor[], rOut: readonly Tensor[], options: { expectedDrift?: boolean } = {}): void {
    const expectedDrift = options.expectedDrift === true;
    if (expectedDrift) for (const e of this.stack) e.expectedDrift = true;
    const terms = this.terms(rIn) + this.terms(rOut);
    this.entries.push({ layer, kind, depth: this.stack.length, inSums: this.sums(rIn), outSums: rOut.map((t) => this.sums(t)), expectedDrift, terms });
  }

  /** Open a composite layer (block, attention, MLP); its children are recorded one level deeper. */
  open(layer: string, kind: string, rIn: Tensor): PendingEntry {
    const e: PendingEntry = { layer, kind, depth: this.stack.length, inSums: this.sums(rIn), outSums: [], expectedDrift: false, terms: this.terms(rIn) };
    this.entries.push(e);
    this.stack.push(e);
    return e;
  }

  close(entry: PendingEntry, rOut: readonly Tensor[]): void {
    entry.outSums = rOut.map((t) => this.sums(t));
    entry.terms += this.terms(rOut);
    const at = this.stack.lastIndexOf(entry);
    if (at >= 0) this.stack.splice(at, 1);
  }

  /**
   * Drop a composite layer that was opened but whose output the pass never reached (a pass that
   * stops inside it): its entry goes, its children stay.
   */
  abandon(entry: PendingEntry): void {
    const at = this.stack.lastIndexOf(entry);
    if (at >= 0) this.stack.splice(at, 1);
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
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
    tf.dispose([...this.cache.values()]);
    this.cache.clear();
    const B = this.batch;
    return Array.from({ length: B }, (_, b) => {
      let at = 0;
      // Each recorded tensor is [2, B]: totals, then magnitudes.
      const total = (i: number) => values[(2 * i) * B + b]!;
      const magnitude = (i: number) => values[(2 * i + 1) * B + b]!;
      return this.entries.map((e) => {
        const rIn = total(at);
        let moved = magnitude(at);
        at++;
        const branches = e.outSums.map(() => {
          moved += magnitude(at);
          return total(at++);
        });
        const entry: LedgerEntry = {
          layer: e.layer,
          kind: e.kind,
          depth: e.depth,
          relevanceIn: rIn,
          relevanceOut: branches.reduce((s, x) => s + x, 0),
          magnitude: moved,
          terms: e.terms,
          ...(branches.length > 1 ? { branches } : {}),
          ...(e.expectedDrift ? { expectedDrift: true as const } : {}),
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
  /** The rule set does not claim conservation here (see LedgerEntry.expectedDrift). */
  readonly expected?: true;
  /**
   * float32's resolution here, relative like `drift`: 2⁻²⁴·√n·magnitude/|relevanceIn| for the n
   * terms the two totals sum — the usual probabilistic bound on the rounding error of such sums
   * (Higham & Mary 2019, λ = 1). Where terms cancel (magnitude ≫ |ΣR|: near-zero denominators,
   * opposing summands) a conservative rule drifts by up to about this much without losing anything.
   */
  readonly resolution: number;
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
    const resolution = e.magnitude === undefined ? 0 : (Math.sqrt(e.terms ?? 1) * e.magnitude * 2 ** -24) / scale;
    return { layer: e.layer, kind: e.kind, drift, resolution, ...(e.expectedDrift ? { expected: true as const } : {}) };
  });
}

/**
 * The layers whose drift exceeds both `tolerance` and float32's resolution there, where the rule set
 * claims conservation (an empty list means conserved wherever claimed; drift the rules expect, such
 * as AttnLRP's softmax, is not a violation and is listed by conservationReport with `expected`).
 */
export function conservationViolations(ledger: readonly LedgerEntry[], tolerance: number): Drift[] {
  return conservationReport(ledger).filter((d) => !d.expected && !(d.drift <= Math.max(tolerance, d.resolution)));
}

/** One row of a verdict: the entry with its drift, as reports and the app show them. */
export interface VerdictRow extends Drift {
  readonly depth: number;
  readonly relevanceIn: number;
  readonly relevanceOut: number;
  readonly branches?: readonly number[];
}

/** The ledger judged at `tolerance`: what the app's status line, the Layers chart and reports say. */
export interface ConservationVerdict {
  readonly tolerance: number;
  /** Every boundary the rule set claims is within max(tolerance, float32 resolution there). */
  readonly conserved: boolean;
  /** Boundaries the rule set does not claim to conserve. */
  readonly exempt: number;
  /** The largest drift among the claimed boundaries (NaN, a total that blew up, counts as the largest). */
  readonly largestDrift: number;
  readonly largestDriftLayer: string;
  readonly rows: readonly VerdictRow[];
}

export function conservationVerdict(ledger: readonly LedgerEntry[], tolerance: number): ConservationVerdict {
  const drifts = conservationReport(ledger);
  const claimed = drifts.map((_, i) => i).filter((i) => !drifts[i]!.expected);
  let worst = claimed[0] ?? 0;
  for (const i of claimed) if (!(drifts[i]!.drift <= drifts[worst]!.drift)) worst = i;
  return {
    tolerance,
    conserved: conservationViolations(ledger, tolerance).length === 0,
    exempt: drifts.length - claimed.length,
    largestDrift: drifts[worst]?.drift ?? 0,
    largestDriftLayer: drifts[worst]?.layer ?? '',
    rows: ledger.map((e, i) => ({
      ...drifts[i]!,
      depth: e.depth,
      relevanceIn: e.relevanceIn,
      relevanceOut: e.relevanceOut,
      ...(e.branches ? { branches: e.branches } : {}),
    })),
  };
}
