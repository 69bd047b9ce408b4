/**
 * Refusing up front what cannot fit in memory. A transformer pass holds each layer's attention
 * scores, H·T² numbers a layer and input; the passes that explanations take (a recorded forward,
 * a backward) keep them for every layer. That alone is a lower bound on what a method needs, so a
 * request whose bound exceeds the machine's memory is refused before any work starts, instead of
 * failing after minutes or taking the machine down. No request that could fit is refused.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { UsageError } from './errors.js';
import type { ClassifierModel, ModelInput } from './models/types.js';
import { batchSize } from './models/types.js';

/** The memory this process can have: the machine's, or its cgroup's limit where lower (Slurm, Kubernetes, Docker). */
export function memoryLimit(): { bytes: number; what: string } {
  const total = os.totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(v) && v > 0 && v < total) return { bytes: v, what: `this process's cgroup limit (${file})` };
    } catch {
      // No such cgroup file (not Linux, or no limit set).
    }
  }
  return { bytes: total, what: "this machine's memory" };
}

/** Bytes in words, powers of 1024. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let k = 0;
  let v = n;
  while (v >= 1024 && k < units.length - 1) {
    v /= 1024;
    k++;
  }
  return k === 0 ? `${n} bytes` : `${v.toPrecision(3)} ${units[k]}`;
}

/**
 * The least memory `method` needs on `input`: the float32 attention scores of every layer of one
 * pass (of one layer for occlusion, whose lean passes free each layer as they go), for every input
 * of the batch, plus for occlusion the occluded copies it builds.
 */
export function memoryLowerBound(model: ClassifierModel, input: ModelInput, method: string): { bytes: number; why: string } {
  const T = model.tokensOf(input);
  const B = batchSize(input);
  const layers = method === 'occlusion' ? 1 : model.depth;
  const attention = 4 * B * layers * model.heads * T * T;
  const why = `${B > 1 ? `${B} inputs × ` : ''}${layers} layer${layers > 1 ? 's' : ''} × ${model.heads} heads × ${T}² tokens of float32 attention scores`;
  if (method === 'occlusion' && input.kind === 'image') {
    // One copy of the image per patch, all built before the first pass (vit.ts occlusions).
    const [, c, h, w] = input.pixels.shape;
    const copies = 4 * B * (T - model.prefixTokens) * c * h * w;
    return { bytes: attention + copies, why: `${why}, and ${B * (T - model.prefixTokens)} occluded copies of the ${c}×${h}×${w} image` };
  }
  return { bytes: attention, why };
}

/** UsageError naming the model, the bound and the limit when `method` on `input` cannot fit. */
export function assertFitsInMemory(model: ClassifierModel, input: ModelInput, method: string, limit = memoryLimit()): void {
  const need = memoryLowerBound(model, input, method);
  if (need.bytes <= limit.bytes) return;
  throw new UsageError(
    `${method} on this input needs at least ${formatBytes(need.bytes)} (${need.why}), more than ${limit.what}, ${formatBytes(limit.bytes)}: ` +
      'use a model with a smaller image size or a shorter input',
    model.source?.folder,
  );
}
