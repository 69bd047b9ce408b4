/**
 * Host weights read back from a model class's tfjs weights, linear weights turned to PyTorch's
 * [out, in]: the bridge that lets the one definition be tested against the model classes.
 */
import type { HostTensor } from '../engine/ops.js';

interface TensorLike {
  dataSync(): ArrayLike<number>;
  readonly shape: number[];
}

export class HostParams extends Map<string, HostTensor> {
  tensor(name: string, t: TensorLike): void {
    this.set(name, { data: Float32Array.from(t.dataSync()), shape: t.shape });
  }
  linear(name: string, l: { wT: TensorLike; b: TensorLike | null }): void {
    const [i, o] = l.wT.shape as [number, number];
    const src = l.wT.dataSync();
    const data = new Float32Array(i * o);
    for (let r = 0; r < i; r++) for (let c = 0; c < o; c++) data[c * i + r] = src[r * o + c]!;
    this.set(`${name}.weight`, { data, shape: [o, i] });
    if (l.b) this.tensor(`${name}.bias`, l.b);
  }
  layerNorm(name: string, l: { gamma: TensorLike; beta: TensorLike }): void {
    this.tensor(`${name}.weight`, l.gamma);
    this.tensor(`${name}.bias`, l.beta);
  }
}
