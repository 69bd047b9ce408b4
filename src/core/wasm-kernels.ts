/**
 * Replacements for four kernels of @tensorflow/tfjs-backend-wasm (4.22): Slice, SplitV and Unpack,
 * and Transpose for tall matrices.
 *
 * The stock kernels read their input with `backend.readSync`, which copies the *whole* input out of
 * the wasm heap on every call, whatever the size of the slice: splitting ViT-B/16's q|k|v
 * ([197, 2304]) into its 36 per-head pieces copied 36 × 1.8 MB and took 39 ms — a fifth of the
 * forward pass — and taking one head's [T, T] out of a [1, 12, T, T] tensor copied all twelve. These
 * versions copy only the selected elements, heap to heap (`copyWithin` on the heap's bytes, one
 * call per contiguous run), so a slice costs O(its output). The results are the same bytes.
 *
 * Installed by backend.ts when the wasm backend is activated; a no-op for every other backend.
 */
import { tf } from './tf.js';
import { installFusedKernels } from './fused.js';

interface HeapData {
  memoryOffset: number;
}

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): HeapData };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const BYTES: Partial<Record<tf.DataType, number>> = { float32: 4, int32: 4, bool: 1 };

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Copy x[begin : begin + size] into a new tensor, without reading x out of the heap. */
function sliceHeap(backend: WasmBackend, x: tf.TensorInfo, begin: readonly number[], size: readonly number[]): tf.TensorInfo {
  const bytes = BYTES[x.dtype]!;
  const out = backend.makeOutput([...size], x.dtype);
  const n = sizeOf(size);
  if (n === 0) return out;
  // After makeOutput: an allocation may have grown (and so replaced) the heap's buffer.
  const heap = backend.wasm.HEAPU8;
  const src = backend.dataIdMap.get(x.dataId).memoryOffset;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
  const shape = x.shape;
  const rank = shape.length;
  // Trailing axes taken whole form one contiguous run with the first axis (from the end) that is cut.
  let axis = rank - 1;
  let run = 1;
  while (axis >= 0 && size[axis] === shape[axis]) run *= shape[axis--]!;
  if (axis < 0) {
    heap.copyWithin(dst, src, src + n * bytes);
    return out;
  }
  run *= size[axis]!;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  // Odometer over the axes before `axis`; each step copies one run.
  const idx = begin.slice(0, axis);
  let base = 0;
  for (let i = 0; i <= axis; i++) base += begin[i]! * strides[i]!;
  const runs = n / run;
  const runBytes = run * bytes;
  let offset = 0;
  for (let r = 0; r < runs; r++) {
    let from = base;
    for (let i = 0; i < axis; i++) from += (idx[i]! - begin[i]!) * strides[i]!;
    heap.copyWithin(dst + offset, src + from * bytes, src + from * bytes + runBytes);
    offset += runBytes;
    for (let i = axis - 1; i >= 0; i--) {
      if (++idx[i]! < begin[i]! + size[i]!) break;
      idx[i] = begin[i]!;
    }
  }
  return out;
}

/** xᵀ for a float32 [m, n], tile by tile, heap to heap: the same values as the stock kernel. */
function transposeTall(backend: WasmBackend, x: tf.TensorInfo, m: number, n: number): tf.TensorInfo {
  const out = backend.makeOutput([n, m], 'float32');
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const src = backend.dataIdMap.get(x.dataId).memoryOffset >>> 2;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset >>> 2;
  const TILE = 8;
  for (let i0 = 0; i0 < m; i0 += TILE) {
    const i1 = Math.min(m, i0 + TILE);
    for (let j0 = 0; j0 < n; j0 += TILE) {
      const j1 = Math.min(n, j0 + TILE);
      for (let i = i0; i < i1; i++) {
        const row = src + i * n;
        for (let j = j0; j < j1; j++) heap[dst + j * m + i] = heap[row + j]!;
      }
    }
  }
  return out;
}

function canSlice(x: tf.TensorInfo): boolean {
  return BYTES[x.dtype] !== undefined;
}

let installed = false;

/** Swap the three kernels in, once, if the wasm backend is registered. Returns whether it did. */
export function installWasmKernels(): boolean {
  if (installed) return true;
  const stock = {
    slice: tf.getKernel('Slice', 'wasm'),
    splitV: tf.getKernel('SplitV', 'wasm'),
    unpack: tf.getKernel('Unpack', 'wasm'),
    transpose: tf.getKernel('Transpose', 'wasm'),
  };
  if (!stock.slice || !stock.splitV || !stock.unpack || !stock.transpose) return false;
  const replace = (config: tf.KernelConfig) => {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  };
  replace({
    kernelName: 'Slice',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as tf.TensorInfo;
      if (!canSlice(x)) return stock.slice!.kernelFunc(args);
      const attrs = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
      const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs.begin, attrs.size);
      return sliceHeap(args.backend as unknown as WasmBackend, x, begin, size);
    },
  });
  replace({
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as tf.TensorInfo;
      if (!canSlice(x)) return stock.splitV!.kernelFunc(args);
      const attrs = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number | number[] };
      const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs.numOrSizeSplits, axis);
      const begin = new Array<number>(x.shape.length).fill(0);
      return sizes.map((s) => {
        const size = [...x.shape];
        size[axis] = s;
        const piece = sliceHeap(args.backend as unknown as WasmBackend, x, begin, size);
        begin[axis]! += s;
        return piece;
      });
    },
  });
  replace({
    kernelName: 'Unpack',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const value = args.inputs['value'] as tf.TensorInfo;
      if (!canSlice(value)) return stock.unpack!.kernelFunc(args);
      const rank = value.shape.length;
      let axis = (args.attrs as unknown as { axis: number }).axis;
      if (axis < 0) axis += rank;
      const outShape = value.shape.filter((_, i) => i !== axis);
      const begin = new Array<number>(rank).fill(0);
      const size = [...value.shape];
      size[axis] = 1;
      return Array.from({ length: value.shape[axis]! }, (_, i) => {
        begin[axis] = i;
        const piece = sliceHeap(args.backend as unknown as WasmBackend, value, begin, size);
        // The same bytes under the squeezed shape (what the stock kernel returns too).
        return { dataId: piece.dataId, dtype: piece.dtype, shape: outShape };
      });
    },
  });
  replace({
    kernelName: 'Transpose',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs['x'] as tf.TensorInfo;
      const perm = (args.attrs as unknown as { perm: number[] }).perm;
      const [m, n] = x.shape as [number, number];
      // The stock kernel is fast for wide matrices but slow for tall ones (a [3072, 197] backward
      // product's transpose took 4 ms, 7 ns an element): those go through 8×8 tiles here.
      if (x.dtype !== 'float32' || x.shape.length !== 2 || perm[0] !== 1 || m < 2 * n || m * n < 65536) return stock.transpose!.kernelFunc(args);
      return transposeTall(args.backend as unknown as WasmBackend, x, m, n);
    },
  });
  installFusedKernels();
  installed = true;
  return true;
}
