/**
 * Peak tensor memory for the bench: the high-water mark of the bytes held by live tensor buffers,
 * the quantity tf.memory().numBytes reports, except that a buffer shared by several tensors (a
 * reshape, a clone) counts once, as it is stored once. It includes the model's weights.
 *
 * TensorFlow.js keeps no peak itself (tf.profile would, but it records every kernel call, which
 * itself exhausts memory over a long run on ViT-B), so the engine's two bookkeeping points are
 * wrapped: a buffer is born in trackTensor and dies in removeDataId. Backend-independent; on wasm,
 * the heap (which only grows) is reported beside it as the process's own high-water mark.
 */
import { tf } from '../core/tf.js';

interface EngineInternals {
  state: { tensorInfo: WeakMap<object, { bytes: number; backend: unknown }> };
  trackTensor(a: { dataId: object }, backend: unknown): void;
  removeDataId(dataId: object, backend: unknown): void;
}

let installed = false;
let live = 0;
let peak = 0;

export function installPeakTracker(): void {
  if (installed) return;
  installed = true;
  const engine = tf.engine() as unknown as EngineInternals;
  const track = engine.trackTensor.bind(engine);
  const remove = engine.removeDataId.bind(engine);
  // Install before any tensor exists (the map is a WeakMap: what is already there cannot be listed).
  live = tf.memory().numBytes;
  peak = live;
  engine.trackTensor = (a, backend) => {
    const had = engine.state.tensorInfo.has(a.dataId);
    track(a, backend);
    if (!had) {
      live += engine.state.tensorInfo.get(a.dataId)?.bytes ?? 0;
      if (live > peak) peak = live;
    }
  };
  engine.removeDataId = (dataId, backend) => {
    const info = engine.state.tensorInfo.get(dataId);
    remove(dataId, backend);
    if (info && !engine.state.tensorInfo.has(dataId)) live -= info.bytes;
  };
}

/** Bytes held by live tensor buffers now. */
export function liveBytes(): number {
  return live;
}

/** Start a new peak from what is held now; returns that baseline. */
export function resetPeak(): number {
  peak = live;
  return live;
}

export function peakBytes(): number {
  return peak;
}

/** The wasm heap's size (it only grows: the process's high-water mark), or null off wasm. */
export function wasmHeapBytes(): number | null {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return backend.wasm ? backend.wasm.HEAPU8.length : null;
}
