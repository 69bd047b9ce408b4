/**
 * Peak resident memory while loading a real-size checkpoint: a timm-layout ViT-B/16 folder with
 * random F32 weights (346 MB on disk) is written once, then loaded in a child process of its own, whose
 * maxRSS (getrusage's high-water mark) before and after loadModel is reported against the bytes of
 * the weights. The loader reads tensor by tensor with positioned reads, so the increase should stay
 * within the weights + 10 %: a reader that holds the whole file, or a copy of every tensor, shows
 * here as roughly twice the weights.
 *
 *   node dist/bench/load-memory.js [--dir DIR] [--keep]     (writes DIR if it has no weights yet)
 *   node dist/bench/load-memory.js --probe DIR              (the child: prints one JSON line)
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { normals, rng, VIT_B16 } from '../core/models/random.js';

export interface LoadMemory {
  /** The safetensors data bytes (the F32 weights). */
  weightsBytes: number;
  /** maxRSS after the backend is ready, before loading. */
  baselineRss: number;
  /** maxRSS after loadModel returned (the peak during the load). */
  peakRss: number;
  /** (peak − baseline) ÷ weights. */
  ratio: number;
  seconds: number;
}

const kb = 1024;

/** timm's parameter list for VIT_B16 (names and shapes), in the order timm's state_dict has them. */
function vitB16Tensors(): Array<[string, number[]]> {
  const c = VIT_B16;
  const D = c.dim;
  const T = 1 + (c.imageSize[0] / c.patchSize) ** 2;
  const out: Array<[string, number[]]> = [
    ['cls_token', [1, 1, D]],
    ['pos_embed', [1, T, D]],
    ['patch_embed.proj.weight', [D, c.channels, c.patchSize, c.patchSize]],
    ['patch_embed.proj.bias', [D]],
  ];
  for (let l = 0; l < c.depth; l++) {
    const b = `blocks.${l}`;
    out.push(
      [`${b}.norm1.weight`, [D]],
      [`${b}.norm1.bias`, [D]],
      [`${b}.attn.qkv.weight`, [3 * D, D]],
      [`${b}.attn.qkv.bias`, [3 * D]],
      [`${b}.attn.proj.weight`, [D, D]],
      [`${b}.attn.proj.bias`, [D]],
      [`${b}.norm2.weight`, [D]],
      [`${b}.norm2.bias`, [D]],
      [`${b}.mlp.fc1.weight`, [c.mlpDim, D]],
      [`${b}.mlp.fc1.bias`, [c.mlpDim]],
      [`${b}.mlp.fc2.weight`, [D, c.mlpDim]],
      [`${b}.mlp.fc2.bias`, [D]],
    );
  }
  out.push(['norm.weight', [D]], ['norm.bias', [D]], ['head.weight', [c.numClasses, D]], ['head.bias', [c.numClasses]]);
  return out;
}

/**
 * Writes `dir/model.safetensors` (random N(0, 0.02) F32, LayerNorm gains near 1) and a timm-style
 * config.json, one tensor at a time, so writing holds no more than the largest tensor.
 */
export async function writeViTB16Folder(dir: string, seed = 0): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const c = VIT_B16;
  await fs.writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({ model_type: 'vit', img_size: 224, patch_size: 16, in_chans: 3, embed_dim: c.dim, depth: c.depth, num_heads: c.heads, mlp_ratio: 4, num_classes: c.numClasses }),
  );
  const tensors = vitB16Tensors();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: 'relprop bench: random ViT-B/16' } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = 4 * shape.reduce((a, d) => a * d, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while (json.length % 8 !== 0) json += ' ';
  const file = path.join(dir, 'model.safetensors');
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    await handle.write(prefix);
    await handle.write(Buffer.from(json, 'utf8'));
    const next = rng(seed);
    for (const [name, shape] of tensors) {
      const n = shape.reduce((a, d) => a * d, 1);
      const values = normals(n, 0.02, next);
      if (/norm\d?\.weight$/.test(name)) for (let i = 0; i < n; i++) values[i]! += 1;
      await handle.write(new Uint8Array(values.buffer));
    }
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  return offset;
}

async function probe(dir: string): Promise<void> {
  const { ensureBackend } = await import('../core/backend.js');
  const { loadModel } = await import('../core/models/load.js');
  await ensureBackend();
  // The data buffer's size from the 8-byte prefix alone: reading the header here would count in the baseline.
  const file = path.join(dir, 'model.safetensors');
  const handle = await fs.open(file, 'r');
  let weightsBytes: number;
  try {
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    weightsBytes = (await handle.stat()).size - 8 - Number(prefix.readBigUInt64LE(0));
  } finally {
    await handle.close();
  }
  const baselineRss = process.resourceUsage().maxRSS * kb;
  const t0 = performance.now();
  const model = await loadModel(dir);
  const seconds = (performance.now() - t0) / 1000;
  const peakRss = process.resourceUsage().maxRSS * kb;
  model.dispose();
  const result: LoadMemory = { weightsBytes, baselineRss, peakRss, ratio: (peakRss - baselineRss) / weightsBytes, seconds };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Writes the folder under `dir` (or a temporary one) if needed and measures a load in a fresh process. */
export async function measureLoadMemory(dir?: string): Promise<LoadMemory> {
  const folder = dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-load-memory-')));
  try {
    const exists = await fs.stat(path.join(folder, 'model.safetensors')).then(() => true, () => false);
    if (!exists) await writeViTB16Folder(folder);
    const self = fileURLToPath(import.meta.url);
    // The wasm backend: what `relprop` uses here (RELPROP_BACKEND may name another).
    const r = spawnSync(process.execPath, [self, '--probe', folder], { encoding: 'utf8', env: { ...process.env, RELPROP_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`load-memory probe failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as LoadMemory;
  } finally {
    if (dir === undefined) await fs.rm(folder, { recursive: true, force: true });
  }
}

const MB = 1024 * 1024;
export function describeLoadMemory(m: LoadMemory): string {
  return (
    `Load memory (ViT-B/16, F32, in a fresh process): weights ${(m.weightsBytes / MB).toFixed(1)} MiB, ` +
    `maxRSS ${(m.baselineRss / MB).toFixed(1)} MiB before loading, ${(m.peakRss / MB).toFixed(1)} MiB peak: ` +
    `+${((m.peakRss - m.baselineRss) / MB).toFixed(1)} MiB = ${m.ratio.toFixed(3)} × the weights ` +
    `(target ≤ 1.10: ${m.ratio <= 1.1 ? 'met' : 'NOT MET'}); load ${m.seconds.toFixed(1)} s.`
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const at = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const main = at('--probe') !== undefined ? probe(at('--probe')!) : measureLoadMemory(at('--dir')).then((m) => console.log(describeLoadMemory(m)));
  main.catch((err) => {
    console.error(`load-memory: ${(err as Error).message}`);
    process.exit(1);
  });
}
