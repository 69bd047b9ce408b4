/**
 * Reads named parameters out of a model folder's safetensors files, checking each against the shape
 * the config implies, so a mismatch is reported with the tensor's name, both shapes and the file.
 */
import { tf, type Tensor1D, type Tensor2D } from '../tf.js';
import { CheckpointError } from '../errors.js';
import type { SafetensorsFile } from '../io/safetensors.js';
import type { Linear, LayerNorm } from '../ops.js';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export class WeightReader {
  private readonly owner = new Map<string, SafetensorsFile>();
  private readonly used = new Set<string>();

  constructor(
    files: readonly SafetensorsFile[],
    /** Where the expected shapes come from, for messages (e.g. ".../config.json"). */
    private readonly configFile: string,
  ) {
    for (const file of files) {
      for (const name of file.tensors.keys()) {
        const other = this.owner.get(name);
        if (other) throw new CheckpointError(`tensor '${name}' appears in both ${other.file} and ${file.file}`, file.file);
        this.owner.set(name, file);
      }
    }
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  shapeOf(name: string): number[] | undefined {
    return this.owner.get(name)?.tensors.get(name)?.shape;
  }

  /** The tensor's values, after checking its shape is `shape`. */
  read(name: string, shape: readonly number[]): Float32Array {
    const file = this.owner.get(name);
    if (!file) {
      throw new CheckpointError(
        `tensor '${name}' is missing from the checkpoint (${fmt(shape)} expected from ${this.configFile})`,
        this.fileLabel(),
      );
    }
    const info = file.tensors.get(name)!;
    const same = info.shape.length === shape.length && info.shape.every((n, i) => n === shape[i]);
    if (!same) {
      throw new CheckpointError(
        `tensor '${name}' has shape ${fmt(info.shape)} but ${this.configFile} implies ${fmt(shape)}`,
        file.file,
      );
    }
    this.used.add(name);
    return file.getFloat32(name);
  }

  /**
   * Mark a tensor the model deliberately does without (a buffer such as GPT-2's stored causal mask)
   * as used, so it is not reported; true when the checkpoint has it.
   */
  skip(name: string): boolean {
    if (!this.owner.has(name)) return false;
    this.used.add(name);
    return true;
  }

  /** Names present in the files that no layer asked for (reported as a warning, not an error). */
  unused(): string[] {
    return this.names().filter((n) => !this.used.has(n));
  }

  private fileLabel(): string {
    const files = new Set([...this.owner.values()].map((f) => f.file));
    return [...files].join(', ') || 'checkpoint';
  }
}

/** [rows, cols] row-major → its transpose, in plain JS so loading allocates no temporary tensors. */
export function transposeMatrix(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  }
  return out;
}

/**
 * A Linear from PyTorch-layout parts. `weights` are [out, in] blocks stacked along `out` (several when
 * a checkpoint stores q, k and v separately and we fuse them).
 */
export function makeLinear(name: string, weights: Float32Array[], biases: Array<Float32Array | null>, inDim: number): Linear {
  const outDim = weights.reduce((n, w) => n + w.length / inDim, 0);
  const stacked = new Float32Array(outDim * inDim);
  let offset = 0;
  for (const w of weights) {
    stacked.set(w, offset);
    offset += w.length;
  }
  const wT = tf.tensor2d(transposeMatrix(stacked, outDim, inDim), [inDim, outDim]) as Tensor2D;
  let b: Tensor1D | null = null;
  if (biases.some((x) => x !== null)) {
    const all = new Float32Array(outDim);
    let at = 0;
    biases.forEach((bias, i) => {
      const n = weights[i]!.length / inDim;
      if (bias) all.set(bias, at);
      at += n;
    });
    b = tf.tensor1d(all);
  }
  return { name, wT, b };
}

export function makeLayerNorm(name: string, gamma: Float32Array, beta: Float32Array, eps: number): LayerNorm {
  return { name, gamma: tf.tensor1d(gamma), beta: tf.tensor1d(beta), eps };
}
