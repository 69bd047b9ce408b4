// What a conservation verdict means for the rule set that made it. A ledger
// that drifts is a bug only where the rules claim to conserve: the paper's LRP
// baseline does not (its α1β0 Linear normalises positive and negative parts
// separately, and its Add is the plain z-rule), and the ε / LRP-0 Linear rules
// of AttnLRP and CP-LRP give a bias its share of the relevance, which then
// leaves the pass there (Achtibat et al. 2024, §3; Ali et al. 2022, §4). Those
// read "not conservative by design", with the reason, not as a failed check.

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
  const worst = ledger.rows.find((r) => r.layer === ledger.largestDriftLayer);
  if (rules === 'baseline') {
    out.byDesign =
      "the paper's LRP baseline normalises positive and negative contributions of each Linear layer separately and splits residual Adds by the plain z-rule, so totals change at every block (Chefer et al. 2021, layers_lrp.py)";
  } else if ((rules.startsWith('attnlrp') || rules.startsWith('cp-lrp')) && worst && BIASED_KINDS.has(worst.kind)) {
    out.byDesign = `the ${rules.startsWith('attnlrp') ? 'AttnLRP' : 'CP-LRP'} rules (ε / LRP-0) give each bias its share of the relevance, which stays there: the largest drift is at ${worst.kind} ${worst.layer}, a layer with a bias`;
  }
  return out;
}
