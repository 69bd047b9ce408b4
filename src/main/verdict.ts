// What a conservation verdict means for the rule set that made it. A ledger
// that drifts is a bug only where the rules claim to conserve: the paper's LRP
// baseline does not (its α1β0 Linear normalises positive and negative parts
// separately, and its Add is the plain z-rule), and the ε / LRP-0 Linear rules
// of AttnLRP and CP-LRP give a bias its share of the relevance, which then
// leaves the pass there (Achtibat et al. 2024, §3; Ali et al. 2022, §4). Those
// read "not conservative by design", with the reason, not as a failed check.

import { conservationVerdict, type LedgerEntry } from '../core/relevance/ledger.js';
import type { LedgerSummary } from '../shared/api.js';

/** Boundaries where a bias (Linear, patch embedding, LayerNorm's β) absorbs its share under ε / LRP-0 rules. */
const BIASED_KINDS = new Set(['Linear', 'Conv2d', 'PatchEmbed', 'LayerNorm', 'Conv1D']);

/** Methods whose map is the relevance that reached the input, so its sum can be set against the start. */
export const INPUT_RELEVANCE_METHODS = new Set(['lrp', 'attnlrp', 'cp-lrp']);

export function explainVerdict(ledger: LedgerSummary, rules: string | undefined, mapSum: number | null): LedgerSummary {
  const out: LedgerSummary = { ...ledger };
  if (mapSum !== null && ledger.first.relevance !== 0 && Number.isFinite(mapSum)) {
    out.embeddingShare = (ledger.first.relevance - mapSum) / ledger.first.relevance;
  }
  if (ledger.conserved || !rules) return out;
  if (rules === 'baseline') {
    out.byDesign =
      "the paper's LRP baseline normalises positive and negative contributions of each Linear layer separately and splits residual Adds by the plain z-rule, so totals change at every block (Chefer et al. 2021, layers_lrp.py)";
  } else if (rules.startsWith('attnlrp') || rules.startsWith('cp-lrp')) {
    // A composite (a block, BertIntermediate) drifts only through its children, and its relative
    // drift can exceed theirs: judge the leaves. The claim holds when every leaf that breaks
    // conservation is a layer with a bias.
    const broken = driftingLeaves(ledger);
    if (broken.length > 0 && broken.every((r) => BIASED_KINDS.has(r.kind))) {
      const worst = broken.reduce((a, b) => (b.drift > a.drift ? b : a));
      out.byDesign = `the ${rules.startsWith('attnlrp') ? 'AttnLRP' : 'CP-LRP'} rules (ε / LRP-0) give each bias its share of the relevance, which stays there: the largest drift is at ${worst.kind} ${worst.layer}, a layer with a bias`;
    }
  }
  return out;
}

/** Rows without children (the ledger is in pre-order) that the rules claim and that drift past the tolerance. */
function driftingLeaves(ledger: LedgerSummary): LedgerSummary['rows'] {
  const rows = ledger.rows;
  return rows.filter((r, i) => {
    const leaf = i + 1 >= rows.length || rows[i + 1]!.depth <= r.depth;
    return leaf && !r.expected && !(r.drift <= Math.max(ledger.tolerance, r.resolution));
  });
}

/** A ledger as the page gets it: judged at `tolerance`, every number finite. */
export function ledgerSummary(ledger: readonly LedgerEntry[] | null, tolerance: number): LedgerSummary | null {
  if (!ledger || ledger.length === 0) return null;
  const v = conservationVerdict(ledger, tolerance);
  // JSON has no NaN or Infinity: a total that blew up is reported as the largest finite number.
  const finite = (x: number): number => (Number.isFinite(x) ? x : Number.MAX_VALUE);
  return {
    tolerance: v.tolerance,
    conserved: v.conserved,
    exempt: v.exempt,
    largestDrift: finite(v.largestDrift),
    largestDriftLayer: v.largestDriftLayer,
    first: { layer: ledger[0]!.layer, relevance: finite(ledger[0]!.relevanceIn) },
    last: { layer: ledger[ledger.length - 1]!.layer, relevance: finite(ledger[ledger.length - 1]!.relevanceOut) },
    rows: v.rows.map((r) => ({
      layer: r.layer,
      kind: r.kind,
      depth: r.depth,
      relevanceIn: finite(r.relevanceIn),
      relevanceOut: finite(r.relevanceOut),
      ...(r.branches ? { branches: r.branches.map(finite) } : {}),
      drift: finite(r.drift),
      resolution: finite(r.resolution),
      ...(r.expected ? { expected: true as const } : {}),
    })),
  };
}
