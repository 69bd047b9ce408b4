/**
 * What produced an output: relprop's version (and git commit when run from a checkout), the model
 * folder with hashes of its weights and config, the method, rule set, every option value, the target
 * (and contrast), the compute engine and the date. Every output relprop writes carries one (JSON
 * field, PNG text chunk, report section, compare summary), so a published number can be traced back.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from './tf.js';
import { productEngine } from './ort-products.js';

/** Where a model came from: its folder and the SHA-256 of its files. */
export interface ModelSource {
  /** Absolute path of the model folder. */
  readonly folder: string;
  /** SHA-256 of the safetensors files' bytes, concatenated in name order (`cat *.safetensors | sha256sum`). */
  readonly weightsSha256: string;
  /** SHA-256 of config.json's bytes. */
  readonly configSha256: string;
  /** The safetensors files, in the order hashed. */
  readonly files: readonly string[];
}

export interface Provenance {
  readonly relprop: { readonly version: string; readonly commit?: string };
  readonly model: {
    readonly name: string;
    readonly family: string;
    /** Absent for a model built in memory (random weights, a test). */
    readonly folder?: string;
    readonly weightsSha256?: string;
    readonly configSha256?: string;
  };
  readonly method?: string;
  /** The rule set actually used (relevance methods): its id, never "default". */
  readonly rules?: string;
  /** Every option value the method read, defaults included. */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly target?: number | readonly number[];
  readonly targetLabel?: string;
  readonly contrast?: number | readonly number[];
  readonly contrastLabel?: string;
  /** The compute engine: tfjs backend, and where the products run. */
  readonly engine: string;
  /** ISO 8601, UTC. */
  readonly date: string;
}

const packageRoot = (): string => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let cachedVersion: { version: string; commit?: string } | null = null;

/** relprop's version from package.json, and the git commit (+ "-dirty" is not detected) when run from a checkout. */
export function relpropVersion(): { version: string; commit?: string } {
  if (cachedVersion) return cachedVersion;
  const root = packageRoot();
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    // A bundled copy without package.json: the version stays 'unknown'.
  }
  const commit = gitCommit(root);
  cachedVersion = commit ? { version, commit } : { version };
  return cachedVersion;
}

/** The commit HEAD points at, read from .git without running git (a worktree's .git is a file). */
function gitCommit(root: string): string | undefined {
  try {
    let gitDir = path.join(root, '.git');
    if (!existsSync(gitDir)) return undefined;
    if (statSync(gitDir).isFile()) {
      const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(gitDir, 'utf8'));
      if (!m) return undefined;
      gitDir = path.resolve(root, m[1]!.trim());
    }
    const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref:\s*(.+)$/.exec(head)?.[1];
    if (!ref) return undefined;
    // Worktrees keep refs in the common folder.
    const common = existsSync(path.join(gitDir, 'commondir')) ? path.resolve(gitDir, readFileSync(path.join(gitDir, 'commondir'), 'utf8').trim()) : gitDir;
    for (const dir of [gitDir, common]) {
      const file = path.join(dir, ref);
      if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    }
    for (const dir of [gitDir, common]) {
      const packed = path.join(dir, 'packed-refs');
      if (!existsSync(packed)) continue;
      for (const line of readFileSync(packed, 'utf8').split('\n')) {
        const [sha, name] = line.split(' ');
        if (name === ref && sha && /^[0-9a-f]{40}$/.test(sha)) return sha;
      }
    }
  } catch {
    // No readable checkout: no commit.
  }
  return undefined;
}

/** SHA-256 of files' bytes, concatenated in the given order, streamed (checkpoints can exceed memory). */
export async function sha256Files(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  // One buffer reused for every chunk: a read stream's fresh chunks would pile up as garbage the
  // size of the weights while a model loads, raising its peak memory.
  const buffer = Buffer.alloc(4 << 20);
  for (const f of files) {
    const handle = await fsp.open(f, 'r');
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  }
  return hash.digest('hex');
}

/** The folder's identity: weights and config hashed. */
export async function modelSource(folder: string, configFile: string, weightFiles: readonly string[]): Promise<ModelSource> {
  const [weightsSha256, configSha256] = await Promise.all([sha256Files(weightFiles), sha256Files([configFile])]);
  return { folder: path.resolve(folder), weightsSha256, configSha256, files: weightFiles.map((f) => path.basename(f)) };
}

/** The compute engine in words: tfjs's backend and where the large products run. */
export function engineDescription(): string {
  let backend = 'none';
  try {
    backend = tf.getBackend() ?? 'none';
  } catch {
    // No backend initialised yet.
  }
  const products = productEngine();
  const tfjs = `tfjs-${backend} ${tf.version_core}`;
  return products.name === 'onnxruntime' ? `${tfjs} + onnxruntime-node ${products.version} (${products.threads} threads)` : tfjs;
}

/** The fields every provenance record shares, for a model (its folder and hashes where it has them). */
export interface ProvenanceModel {
  readonly name: string;
  readonly family: string;
  readonly source?: ModelSource;
}

export function provenance(
  model: ProvenanceModel,
  what: Omit<Provenance, 'relprop' | 'model' | 'engine' | 'date'> = {},
  date: Date = new Date(),
): Provenance {
  const s = model.source;
  return {
    relprop: relpropVersion(),
    model: {
      name: model.name,
      family: model.family,
      ...(s ? { folder: s.folder, weightsSha256: s.weightsSha256, configSha256: s.configSha256 } : {}),
    },
    ...what,
    engine: engineDescription(),
    date: date.toISOString(),
  };
}

/** One line per field, for text outputs (a PNG's text chunk, a terminal footer). */
export function provenanceLines(p: Provenance): string[] {
  const lines = [`relprop ${p.relprop.version}${p.relprop.commit ? ` (${p.relprop.commit.slice(0, 12)})` : ''}`];
  lines.push(`model ${p.model.folder ?? p.model.name} (${p.model.family})${p.model.weightsSha256 ? ` weights sha256 ${p.model.weightsSha256}` : ''}`);
  if (p.method) lines.push(`method ${p.method}${p.rules ? `, rules ${p.rules}` : ''}`);
  if (p.options && Object.keys(p.options).length) lines.push(`options ${JSON.stringify(p.options)}`);
  if (p.target !== undefined) lines.push(`target ${JSON.stringify(p.target)}${p.targetLabel !== undefined ? ` (${p.targetLabel})` : ''}`);
  if (p.contrast !== undefined) lines.push(`contrast ${JSON.stringify(p.contrast)}${p.contrastLabel !== undefined ? ` (${p.contrastLabel})` : ''}`);
  lines.push(`engine ${p.engine}`, `date ${p.date}`);
  return lines;
}
