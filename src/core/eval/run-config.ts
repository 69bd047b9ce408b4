/**
 * The configuration of a `relprop compare` run folder: everything that decides its numbers (model
 * bytes, data, methods and their options, measures, removal, relprop's code). It is written to
 * `run.json` when the folder is first used; a resumed run, a shard joined by `merge` and a worker's
 * output must carry the same one, or their journals would mix numbers of different experiments
 * under one name.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { MethodOptions } from '../methods/types.js';
import type { ImageRemoval, TextRemoval } from './perturb-model.js';
import { relpropVersion, type ProvenanceModel } from '../provenance.js';
import { InputError } from '../errors.js';

export interface RunConfig {
  readonly relprop: { readonly version: string; readonly commit?: string };
  readonly model: {
    readonly name: string;
    readonly family: string;
    readonly folder?: string;
    readonly weightsSha256?: string;
    readonly configSha256?: string;
  };
  readonly data: {
    /** As given, with file and folder paths made absolute. */
    readonly spec: string;
    readonly description: string;
    readonly kind: 'image' | 'text';
    /** Inputs in the whole data set (all shards). */
    readonly count: number;
    /** SHA-256 of the input ids, one a line, in input order: which inputs, in which order. */
    readonly idsSha256: string;
    /** Generated tasks: the generator's seed and the index of the first sample. */
    readonly seeds?: { readonly generator: number; readonly first: number };
    readonly masks?: string;
  };
  readonly methods: readonly string[];
  readonly metrics: readonly string[];
  /** What replaces removed pixels or tokens in the perturbation tests; null without them. */
  readonly removal: ImageRemoval | TextRemoval | null;
  /** The class each map explains. */
  readonly target: 'predicted';
  /** Options as given to every method (each reads its own); what each method resolved is in summary.json's `options`. */
  readonly methodOptions: MethodOptions;
  /** Inputs (the first ones, by index) whose maps are kept for the report. */
  readonly examples: number;
}

export interface RunFile {
  readonly config: RunConfig;
  readonly shard: { readonly k: number; readonly n: number } | null;
}

export const RUN_FILE = 'run.json';

/** Writes `text` to `file` by way of a temporary file in the same folder, so a kill never leaves half a file. */
export async function writeAtomic(file: string, text: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

export function idsSha256(ids: readonly string[]): string {
  const h = createHash('sha256');
  for (const id of ids) h.update(`${id}\n`);
  return h.digest('hex');
}

/** Undefined fields dropped, so a value written and read back compares equal. */
function clean<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

export function runConfig(
  model: ProvenanceModel,
  what: Omit<RunConfig, 'relprop' | 'model' | 'target'>,
): RunConfig {
  const s = model.source;
  return clean({
    relprop: relpropVersion(),
    model: { name: model.name, family: model.family, ...(s ? { folder: s.folder, weightsSha256: s.weightsSha256, configSha256: s.configSha256 } : {}) },
    ...what,
    target: 'predicted',
  });
}

function flatten(x: unknown, prefix: string, out: Map<string, string>): void {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, JSON.stringify(x));
}

/**
 * The fields in which two configurations differ, as "field: a ≠ b". The model folder alone may
 * differ (the same bytes, moved or mounted elsewhere): the hashes decide whether it is the same model.
 */
export function configDifferences(a: RunConfig, b: RunConfig): string[] {
  const fa = new Map<string, string>();
  const fb = new Map<string, string>();
  flatten(a, '', fa);
  flatten(b, '', fb);
  const sameBytes = a.model.weightsSha256 !== undefined && a.model.weightsSha256 === b.model.weightsSha256 && a.model.configSha256 === b.model.configSha256;
  const out: string[] = [];
  for (const k of new Set([...fa.keys(), ...fb.keys()])) {
    if (sameBytes && (k === 'model.folder' || k === 'model.name')) continue;
    // Derived from spec and count (and spelled with the path as typed).
    if (k === 'data.description') continue;
    const x = fa.get(k);
    const y = fb.get(k);
    if (x !== y) out.push(`${k}: ${x ?? '(absent)'} ≠ ${y ?? '(absent)'}`);
  }
  return out;
}

export async function readRunFile(dir: string): Promise<RunFile | null> {
  const file = path.join(dir, RUN_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError(`cannot read (${(err as Error).message})`, file);
  }
  try {
    const r = JSON.parse(text) as RunFile;
    if (!r || typeof r !== 'object' || !r.config || typeof r.config !== 'object') throw new Error('no "config" object');
    return r;
  } catch (err) {
    throw new InputError(`is not a relprop run configuration (${(err as Error).message}); remove it or use --restart`, file);
  }
}

export async function writeRunFile(dir: string, r: RunFile): Promise<void> {
  await writeAtomic(path.join(dir, RUN_FILE), JSON.stringify(r, null, 2) + '\n');
}
