/**
 * Attention flow (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020), as the
 * authors' `attention_graph_util.py` computes it: per layer the head-mean attention plus the
 * identity, rows renormalised (A' = 0.5·A + 0.5·I for softmax rows); a layered graph whose nodes
 * are the tokens at each layer boundary and whose edge from token j below layer l to token i above
 * it has capacity A'_l[i, j]; the relevance of input token j is the maximum flow from j at the
 * bottom to the CLS node at the top (a decoder's: the last token's; their `compute_node_flow`, networkx max-flow), and the flows
 * are divided by their sum over the input tokens (`flow_values[u] /= flow_values[u].sum()`).
 *
 * Target-independent, like rollout. The map treats the CLS position as rollout does (ViT: prefix
 * tokens dropped; text: the CLS entry set to 0, it would otherwise dominate through its own self-loop).
 */
import type { ExplanationMethod } from './types.js';
import { addIdentity, meanOverHeads, rowNormalise } from './matrix.js';
import { FlowNetwork } from './maxflow.js';
import { result } from './common.js';

export const attentionFlow: ExplanationMethod = {
  id: 'attention-flow',
  title: 'Attention flow',
  reference: 'Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020 (attention_graph_util.compute_node_flow)',
  targetDependent: false,
  signed: false,
  options: ['startLayer'],
  async attribute(ctx, targets, options) {
    const { model } = ctx;
    const T = ctx.tokens;
    const start = options.startLayer ?? 0;
    ctx.checkLayer(start, 'start layer');
    const rows = ctx.explainedRows();
    const perLayer = Array.from({ length: model.depth - start }, (_, k) => ctx.attention(start + k));
    return targets.map((target, b) => {
      const layers = perLayer.map((probs) => rowNormalise(addIdentity(meanOverHeads(probs[b]!, model.heads, T), T), T));
      const flows = attentionFlowToOutput(layers, T, rows[b]!);
      let sum = 0;
      for (const f of flows) sum += f;
      const normalised = flows.map((f) => (sum > 0 ? f / sum : 0));
      const { data, shape, space } = model.tokenRowToMap(normalised, 'zero');
      return result(ctx, b, { method: 'attention-flow', target, map: data, shape, space, options: { startLayer: start } });
    });
  },
};

/**
 * Max flow from each input token (below the first layer) to token `output` above the last layer,
 * through the layered graph of `layers` (each T×T, row i = the attention of token i over the tokens
 * below, residual already included).
 *
 * The graph keeps only what a flow can use: of the top boundary just the output node (the other
 * top nodes have no way on, so no flow enters them), so a ViT-B/16 graph has 11·197² + 197 ≈ 427k
 * edges rather than 12·197²; the input nodes other than the source are in the graph but unreachable
 * (nothing flows into them). One network serves all T sources.
 */
export function attentionFlowToOutput(layers: readonly Float64Array[], T: number, output: number): Float64Array {
  const L = layers.length;
  if (L === 0) throw new RangeError('attention flow needs at least one layer');
  const sink = L * T;
  const net = new FlowNetwork(L * T + 1);
  for (let l = 0; l < L; l++) {
    const a = layers[l]!;
    for (let j = 0; j < T; j++) {
      const from = l * T + j;
      if (l === L - 1) net.addEdge(from, sink, a[output * T + j]!);
      else for (let i = 0; i < T; i++) net.addEdge(from, (l + 1) * T + i, a[i * T + j]!);
    }
  }
  return Float64Array.from({ length: T }, (_, j) => net.maxFlow(j, sink));
}
