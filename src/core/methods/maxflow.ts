/**
 * Maximum flow on a directed graph with real (float64) capacities, by Dinic's algorithm: a BFS
 * levels the residual graph, then depth-first searches along level-increasing arcs push a blocking
 * flow, until the sink is unreachable. Attention flow (Abnar & Zuidema 2020) asks for one flow per
 * input token on the same graph, so a network is built once (compressed adjacency in typed arrays)
 * and `maxFlow` restores the capacities before every query.
 *
 * Dinic rather than Edmonds–Karp (which the authors' networkx call uses; the flow value is the same):
 * on an attention graph every layer is a dense bipartite block, and Edmonds–Karp's one path per BFS
 * rescans the ~10⁵–10⁶ arcs for every augmenting path, where Dinic's phases push many paths per scan.
 */

export class FlowNetwork {
  private readonly tails: number[] = [];
  private readonly heads: number[] = [];
  private readonly caps: number[] = [];
  private compiled: Compiled | null = null;

  constructor(readonly nodes: number) {
    if (!Number.isInteger(nodes) || nodes < 1) throw new RangeError(`a flow network needs at least one node, got ${nodes}`);
  }

  /** An arc u → v. Capacities must be finite and ≥ 0; arcs of capacity 0 are kept out of the graph. */
  addEdge(from: number, to: number, capacity: number): void {
    this.checkNode(from);
    this.checkNode(to);
    if (!(capacity >= 0) || !Number.isFinite(capacity)) throw new RangeError(`capacity of ${from} → ${to} must be finite and ≥ 0, got ${capacity}`);
    if (capacity === 0 || from === to) return;
    this.tails.push(from);
    this.heads.push(to);
    this.caps.push(capacity);
    this.compiled = null;
  }

  get edges(): number {
    return this.caps.length;
  }

  /**
   * The value of a maximum flow from `source` to `sink`. Residual capacities at or below
   * `eps` × (the largest capacity) count as saturated: with float capacities, exact zero is not
   * reached after cancelling flows, and without a threshold the search would chase rounding dust.
   */
  maxFlow(source: number, sink: number, eps = 1e-12): number {
    this.checkNode(source);
    this.checkNode(sink);
    if (source === sink) throw new RangeError('source and sink must differ');
    const g = (this.compiled ??= compile(this.nodes, this.tails, this.heads, this.caps));
    g.residual.set(g.capacity);
    const tol = eps * g.maxCapacity;
    let total = 0;
    while (levelGraph(g, source, sink, tol)) {
      g.current.set(g.start.subarray(0, this.nodes));
      for (;;) {
        const pushed = blockingPush(g, source, sink, Infinity, tol);
        if (pushed <= 0) break;
        total += pushed;
      }
    }
    return total;
  }

  private checkNode(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= this.nodes) throw new RangeError(`node ${n} is out of range 0..${this.nodes - 1}`);
  }
}

/** Arcs grouped by tail (CSR): arc k runs tail → head[k]; its reverse arc is reverse[k]. */
interface Compiled {
  readonly start: Int32Array;
  readonly head: Int32Array;
  readonly reverse: Int32Array;
  readonly capacity: Float64Array;
  readonly residual: Float64Array;
  readonly level: Int32Array;
  readonly current: Int32Array;
  readonly queue: Int32Array;
  readonly maxCapacity: number;
}

function compile(nodes: number, tails: readonly number[], heads: readonly number[], caps: readonly number[]): Compiled {
  const m = caps.length;
  const degree = new Int32Array(nodes + 1);
  for (let e = 0; e < m; e++) {
    degree[tails[e]!]!++;
    degree[heads[e]!]!++;
  }
  const start = new Int32Array(nodes + 1);
  for (let u = 0; u < nodes; u++) start[u + 1] = start[u]! + degree[u]!;
  const fill = start.slice(0, nodes);
  const head = new Int32Array(2 * m);
  const reverse = new Int32Array(2 * m);
  const capacity = new Float64Array(2 * m);
  let maxCapacity = 0;
  for (let e = 0; e < m; e++) {
    const u = tails[e]!;
    const v = heads[e]!;
    const a = fill[u]!++;
    const b = fill[v]!++;
    head[a] = v;
    head[b] = u;
    reverse[a] = b;
    reverse[b] = a;
    capacity[a] = caps[e]!;
    // The reverse arc starts empty: it gains capacity only as flow is pushed forward.
    capacity[b] = 0;
    maxCapacity = Math.max(maxCapacity, caps[e]!);
  }
  return {
    start,
    head,
    reverse,
    capacity,
    residual: new Float64Array(2 * m),
    level: new Int32Array(nodes),
    current: new Int32Array(nodes),
    queue: new Int32Array(nodes),
    maxCapacity,
  };
}

/** BFS levels over arcs with residual > tol; false when the sink cannot be reached. */
function levelGraph(g: Compiled, source: number, sink: number, tol: number): boolean {
  const { start, head, residual, level, queue } = g;
  level.fill(-1);
  level[source] = 0;
  queue[0] = source;
  let read = 0;
  let write = 1;
  while (read < write) {
    const u = queue[read++]!;
    const next = level[u]! + 1;
    // Nodes at or beyond the sink's level cannot lie on a shortest path to it.
    if (level[sink]! >= 0 && next > level[sink]!) break;
    for (let k = start[u]!; k < start[u + 1]!; k++) {
      const v = head[k]!;
      if (level[v]! < 0 && residual[k]! > tol) {
        level[v] = next;
        queue[write++] = v;
      }
    }
  }
  return level[sink]! >= 0;
}

/**
 * Push up to `limit` from u towards the sink along level-increasing arcs, as much as fits (several
 * paths per call). `current` remembers, per node, the first arc not yet known to be useless this
 * phase, so each arc is given up at most once per phase.
 */
function blockingPush(g: Compiled, u: number, sink: number, limit: number, tol: number): number {
  if (u === sink) return limit;
  const { start, head, reverse, residual, level, current } = g;
  const end = start[u + 1]!;
  let sent = 0;
  for (; current[u]! < end; current[u]!++) {
    const k = current[u]!;
    const v = head[k]!;
    const r = residual[k]!;
    if (r <= tol || level[v] !== level[u]! + 1) continue;
    const d = blockingPush(g, v, sink, Math.min(limit - sent, r), tol);
    if (d > 0) {
      residual[k] = r - d;
      residual[reverse[k]!]! += d;
      sent += d;
      // Stop before advancing past an arc that may still carry more.
      if (limit - sent <= tol) return sent;
    }
  }
  // Nothing more gets through u this phase: take it out of the level graph.
  level[u] = -1;
  return sent;
}
