/**
 * Reads named parameters out of a model folder's safetensors files, checking each against the shape
 * the config implies, so a mismatch is reported with the tensor's name, both shapes and the file.
 */
import { tf, type Tensor, type Tensor1D, type Tensor2D } from '../tf.js';
import { CheckpointError } from '../errors.js';
import { FLOAT_DTYPES, type SafetensorsFile } from '../io/safetensors.js';
import type { Linear, LayerNorm } from '../ops.js';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** One [out, in] block of a Linear's weight in the checkpoint, with its bias (null: none). */
export interface LinearBlock {
  readonly weight: string;
  readonly bias: string | null;
  readonly out: number;
  /** The weight's stored shape when it is not [out, in] (a patch-embedding conv: [out, c, kh, kw]). */
  readonly shape?: readonly number[];
}

export class WeightReader {
  private readonly owner = new Map<string, SafetensorsFile>();
  private readonly used = new Set<string>();
  private readonly scratch: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];

  constructor(
    private readonly files: readonly SafetensorsFile[],
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

  /**
   * A config value the weights also tell (`tensor`'s size along `axis`): they must agree, or the
   * model would run with the config's size on weights of another. Absent tensors are left to read(),
   * which names what is missing.
   */
  agree(key: string, value: number, tensor: string, axis: number, what: string): void {
    const shape = this.shapeOf(tensor);
    if (shape === undefined || shape[axis] === value) return;
    throw new CheckpointError(
      `${key} is ${value} but the weights have ${shape[axis] ?? 'no such axis'} ${what} ('${tensor}' ${fmt(shape)} in ${this.owner.get(tensor)!.file})`,
      this.configFile,
    );
  }

  /**
   * The number of layers the weights hold: one more than the largest index `pattern` (a regex with
   * one group, the layer index) finds in the tensor names; 0 when none match.
   */
  layerCount(pattern: RegExp): number {
    let max = -1;
    for (const name of this.owner.keys()) {
      const m = pattern.exec(name);
      if (m) max = Math.max(max, Number(m[1]));
    }
    return max + 1;
  }

  /** The config's layer count must be the weights': fewer would silently drop layers, more has no weights. */
  agreeDepth(key: string, value: number, pattern: RegExp, example: string): void {
    const n = this.layerCount(pattern);
    if (n === value) return;
    const which = n === 0 ? `no '${example}.*' tensors` : `'${example}.*' for N = 0 … ${n - 1}`;
    throw new CheckpointError(`${key} is ${value} but the weights have ${n} layer${n === 1 ? '' : 's'} (${which} in ${this.fileLabel()})`, this.configFile);
  }

  /** The config file, for messages. */
  configLabel(): string {
    return this.configFile;
  }

  /** The weights' file(s), for messages. */
  filesLabel(): string {
    return this.fileLabel();
  }

  /** The tensor's values (a fresh array), after checking its dtype, shape and that all are finite. */
  read(name: string, shape: readonly number[]): Float32Array {
    return this.readInto(name, shape);
  }

  /**
   * The tensor's values in a buffer the reader reuses (slot 0 or 1): valid until the next view of
   * the same slot, for values that are consumed at once (compared, transposed).
   */
  view(name: string, shape: readonly number[], slot: 0 | 1 = 0): Float32Array {
    const size = shape.reduce((a, d) => a * d, 1);
    if (this.scratch[slot].length < size) this.scratch[slot] = new Float32Array(size);
    return this.readInto(name, shape, this.scratch[slot]);
  }

  /** The tensor as a backend tensor of `tensorShape` (default: its own shape), read straight into it. */
  tensor(name: string, shape: readonly number[], tensorShape: readonly number[] = shape): Tensor {
    return filledTensor(tensorShape, (out) => {
      this.readInto(name, shape, out);
    });
  }

  /**
   * A Linear from PyTorch [out, in] weights: several blocks stacked along `out` when a checkpoint
   * stores q, k and v apart. Each block is read into a reused buffer and transposed straight into
   * wT's own memory, so loading holds no second copy of the weights.
   */
  linear(name: string, blocks: readonly LinearBlock[], inDim: number): Linear {
    const outDim = blocks.reduce((n, b) => n + b.out, 0);
    const wT = filledTensor([inDim, outDim], (out) => {
      let at = 0;
      for (const block of blocks) {
        const w = this.view(block.weight, block.shape ?? [block.out, inDim]);
        transposeInto(w, block.out, inDim, out, outDim, at);
        at += block.out;
      }
    }) as Tensor2D;
    let b: Tensor1D | null = null;
    if (blocks.some((x) => x.bias !== null)) {
      try {
        const all = new Float32Array(outDim);
        let offset = 0;
        for (const block of blocks) {
          if (block.bias !== null) all.set(this.read(block.bias, [block.out]), offset);
          offset += block.out;
        }
        b = tf.tensor1d(all);
      } catch (err) {
        wT.dispose();
        throw err;
      }
    }
    return { name, wT, b };
  }

  private readInto(name: string, shape: readonly number[], into?: Float32Array): Float32Array {
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
    if (!FLOAT_DTYPES.has(info.dtype)) {
      // An integer or bool tensor where a parameter belongs converts to numbers without complaint
      // and computes a different model (a writer that cast, or the wrong tensor under this name).
      throw new CheckpointError(
        `tensor '${name}' has dtype ${info.dtype}, but a model parameter must be floating point (${[...FLOAT_DTYPES].join(', ')})`,
        file.file,
      );
    }
    this.used.add(name);
    const values = file.getFloat32(name, into);
    checkFinite(values, name, info.shape, info.dtype, file.file);
    return values;
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

  /** Closes the files (their tensors are read on demand until then). */
  close(): void {
    this.scratch[0] = this.scratch[1] = new Float32Array(0);
    for (const f of this.files) f.close();
  }

  private fileLabel(): string {
    const files = new Set([...this.owner.values()].map((f) => f.file));
    return [...files].join(', ') || 'checkpoint';
  }
}

/**
 * A NaN or infinity in a weight makes every logit (and relevance) it reaches NaN or meaningless;
 * it is named at load, with where it sits, rather than surfacing as a NaN heatmap.
 */
export function checkFinite(values: Float32Array, name: string, shape: readonly number[], dtype: string, file: string): void {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    // x - x is 0 for every finite x, NaN for NaN and ±Inf: one comparison in the common case.
    if (values[i]! - values[i]! !== 0) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad === 0) return;
  const v = values[first]!;
  const what = Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
  const at = shape.length > 1 ? ` ${fmt(unravel(first, shape))}` : shape.length === 1 ? ` [${first}]` : '';
  const narrowed = dtype === 'F64' ? ' (after narrowing F64 to float32: values beyond ±3.4e38 overflow)' : '';
  throw new CheckpointError(
    `tensor '${name}' ${fmt(shape)} has ${bad} non-finite value${bad === 1 ? '' : 's'}${narrowed}; the first is ${what} at index${at}`,
    file,
  );
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return out;
}

/** [rows, cols] row-major → its transpose, in plain JS so loading allocates no temporary tensors. */
export function transposeMatrix(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  transposeInto(data, rows, cols, out, rows, 0);
  return out;
}

/** [rows, cols] `data` transposed into columns [at, at + rows) of `out`, a [cols, outCols] matrix. */
export function transposeInto(data: Float32Array, rows: number, cols: number, out: Float32Array, outCols: number, at: number): void {
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) out[c * outCols + at + r] = data[row + c]!;
  }
}

interface WasmBackendInternals {
  write(values: null, shape: readonly number[], dtype: 'float32'): object;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPU8: Uint8Array };
}

/**
 * A new float32 tensor whose values `fill` writes into the array it is given. On the wasm backend
 * that array is the tensor's own memory in the wasm heap, so a checkpoint is read from the file
 * straight into the weights, with no copy in JS that would wait for the garbage collector; on other
 * backends it is a fresh array handed to tf.tensor. Disposes the tensor when `fill` throws.
 */
export function filledTensor(shape: readonly number[], fill: (out: Float32Array) => void): Tensor {
  const size = shape.reduce((a, d) => a * d, 1);
  const backend = tf.backend() as unknown as Partial<WasmBackendInternals>;
  if (tf.getBackend() === 'wasm' && size > 0 && typeof backend.write === 'function' && backend.dataIdMap && backend.wasm) {
    const wasm = backend as WasmBackendInternals;
    const dataId = wasm.write(null, shape, 'float32');
    const t = tf.engine().makeTensorFromDataId(dataId as never, [...shape], 'float32', wasm as never);
    try {
      const offset = wasm.dataIdMap.get(dataId)?.memoryOffset;
      if (offset === undefined) throw new Error('wasm backend: no memory for a new tensor');
      // The view is taken after the allocation (which may grow, and so replace, the heap's buffer),
      // and `fill` allocates nothing in the heap.
      fill(new Float32Array(wasm.wasm.HEAPU8.buffer, offset, size));
    } catch (err) {
      t.dispose();
      throw err;
    }
    return t;
  }
  const values = new Float32Array(size);
  fill(values);
  return tf.tensor(values, [...shape], 'float32');
}

/**
 * A Linear from PyTorch-layout parts. `weights` are [out, in] blocks stacked along `out` (several when
 * a checkpoint stores q, k and v separately and we fuse them).
 */
export function makeLinear(name: string, weights: Float32Array[], biases: Array<Float32Array | null>, inDim: number): Linear {
  const outDim = weights.reduce((n, w) => n + w.length / inDim, 0);
  // No stacked copy of a single block: loading holds one temporary per weight, not two.
  let stacked = weights[0]!;
  if (weights.length > 1) {
    stacked = new Float32Array(outDim * inDim);
    let offset = 0;
    for (const w of weights) {
      stacked.set(w, offset);
      offset += w.length;
    }
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
