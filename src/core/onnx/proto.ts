/**
 * ONNX models built in code, encoded by hand: the protobuf messages of onnx.proto that a graph needs
 * (ModelProto → GraphProto → NodeProto, TensorProto initializers, ValueInfoProto inputs and
 * outputs), written field by field. No `onnx` package, no model file: relprop builds the graphs it
 * runs on ONNX Runtime from weights it already holds (ort-products.ts, onnx/predict.ts).
 */

/** A message under construction: its encoded chunks, concatenated only once, at the end. */
type Parts = Uint8Array[];

const utf8 = new TextEncoder();

function varint(value: number | bigint): Uint8Array {
  // int64 fields take negative numbers as their 64-bit two's complement (ten bytes).
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v > 127n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const size = (parts: Parts) => parts.reduce((s, p) => s + p.length, 0);
const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, v: number | bigint): Parts => [key(field, 0), varint(v)];
const len = (field: number, payload: Parts): Parts => [key(field, 2), varint(size(payload)), ...payload];
const str = (field: number, s: string): Parts => len(field, [utf8.encode(s)]);
function f32(field: number, v: number): Parts {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, v, true);
  return [key(field, 5), b];
}

export function concatParts(parts: Parts): Uint8Array {
  const out = new Uint8Array(size(parts));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** TensorProto.DataType values used here. */
export const DType = { float: 1, int32: 6, int64: 7, bool: 9, double: 11 } as const;
export type DTypeName = keyof typeof DType;

/** A dimension: a size, or a name for a size fixed only at run time (the batch). */
export type Dim = number | string;

/** Node attributes: numbers are INT unless listed as floats; number[] are INTS. */
export type Attr = number | number[] | string | { float: number };

function attribute(name: string, value: Attr): Parts {
  if (typeof value === 'string') return len(5, [...str(1, name), ...len(4, [utf8.encode(value)]), ...int(20, 3)]);
  if (Array.isArray(value)) return len(5, [...str(1, name), ...value.flatMap((v) => int(8, v)), ...int(20, 7)]);
  if (typeof value === 'object') return len(5, [...str(1, name), ...f32(2, value.float), ...int(20, 1)]);
  return len(5, [...str(1, name), ...int(3, value), ...int(20, 2)]);
}

function valueInfo(field: number, name: string, dtype: DTypeName, dims: readonly Dim[]): Parts {
  const shape = dims.flatMap((d) => len(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  return len(field, [...str(1, name), ...len(2, len(1, [...int(1, DType[dtype]), ...len(2, shape)]))]);
}

/**
 * A graph under construction. `node` returns its output name(s) so graphs read like the code they
 * mirror; `constant` adds an initializer. `model()` encodes the whole ModelProto.
 */
export class GraphBuilder {
  private readonly nodes: Parts = [];
  private readonly inits: Parts = [];
  private readonly inputs: Parts = [];
  private readonly outputs: Parts = [];
  private count = 0;

  constructor(private readonly name: string) {}

  /** A fresh value name with a readable stem. */
  fresh(stem: string): string {
    return `${stem}_${this.count++}`;
  }

  input(name: string, dtype: DTypeName, dims: readonly Dim[]): string {
    this.inputs.push(...valueInfo(11, name, dtype, dims));
    return name;
  }

  output(name: string, dtype: DTypeName, dims: readonly Dim[]): void {
    this.outputs.push(...valueInfo(12, name, dtype, dims));
  }

  /** An initializer (a weight or a constant), stored as raw little-endian bytes. */
  constant(stem: string, data: Float32Array | Float64Array | Int32Array | BigInt64Array, dims: readonly number[]): string {
    const name = this.fresh(stem);
    const dtype: DTypeName = data instanceof Float32Array ? 'float' : data instanceof Float64Array ? 'double' : data instanceof Int32Array ? 'int32' : 'int64';
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.inits.push(...len(5, [...dims.flatMap((d) => int(1, d)), ...int(2, DType[dtype]), ...str(8, name), ...len(9, [raw.slice()])]));
    return name;
  }

  scalar(value: number): string {
    return this.constant('c', Float32Array.of(value), []);
  }

  ints(values: readonly number[]): string {
    return this.constant('i', BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
  }

  /** A node; `outputs` is a count of fresh names or the names themselves (a graph output's). */
  node(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outputs: number | readonly string[] = 1, domain = ''): string[] {
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op.toLowerCase())) : [...outputs];
    this.nodes.push(
      ...len(1, [
        ...inputs.flatMap((i) => str(1, i)),
        ...names.flatMap((o) => str(2, o)),
        ...str(4, op),
        ...Object.entries(attrs).flatMap(([k, v]) => attribute(k, v)),
        ...(domain ? str(7, domain) : []),
      ]),
    );
    return names;
  }

  /** One-output node. */
  op(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}): string {
    return this.node(op, inputs, attrs)[0]!;
  }

  /** The encoded ModelProto: IR version 8, default-domain opset `opset`. */
  model(opset = 17): Uint8Array {
    const graph = [...this.nodes, ...str(2, this.name), ...this.inits, ...this.inputs, ...this.outputs];
    return concatParts([...int(1, 8), ...str(2, 'relprop'), ...len(8, [...str(1, ''), ...int(2, opset)]), ...len(7, graph)]);
  }
}
