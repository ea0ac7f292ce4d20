/**
 * An ONNX model as plain data: nodes with decoded attributes, initializers as typed arrays,
 * inputs and outputs with their shapes, and `metadata_props` as a record. `readOnnx` decodes a
 * file's bytes (any malformed file is one 'BAD_FILE' error naming it), `writeOnnx` encodes.
 * Floating-point tensors become float32 (float16 and double are converted); integer ones int32,
 * which holds every shape, axis and index a classifier's graph carries.
 */
import type {
  OnnxAttribute,
  OnnxModel,
  OnnxNode,
  OnnxTensor,
  OnnxValueInfo,
} from '../../engine/onnx/ir.js';
import { ParryError } from '../../errors.js';
import { decodeFloat16 } from '../float16.js';
import { AttributeType, DataType, ModelProto } from './proto.js';

export type {
  OnnxAttribute,
  OnnxGraph,
  OnnxModel,
  OnnxNode,
  OnnxTensor,
  OnnxValueInfo,
} from '../../engine/onnx/ir.js';

/** The IR version and default-domain opset parry writes. */
export const IR_VERSION = 8;
export const OPSET = 13;

type Obj = Record<string, unknown>;
const asArray = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);

/** Decodes an ONNX file's bytes; `source` names the file in errors. */
export function readOnnx(bytes: Uint8Array, source: string): OnnxModel {
  let m: Obj;
  try {
    m = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number }) as Obj;
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `${source} is not an ONNX model: ${String((e as Error).message ?? e)}`,
      { cause: e },
    );
  }
  const g = m.graph as Obj | undefined;
  if (g == null || asArray(g.node).length === 0) {
    throw new ParryError('BAD_FILE', `${source} is not an ONNX model: it has no graph`);
  }
  const initializers = new Map<string, OnnxTensor>();
  for (const t of asArray<Obj>(g.initializer)) {
    const tensor = decodeTensor(t, source);
    initializers.set(tensor.name, tensor);
  }
  return {
    irVersion: Number(m.irVersion ?? 0),
    opsets: asArray<Obj>(m.opsetImport).map((o) => ({
      domain: String(o.domain ?? ''),
      version: Number(o.version ?? 0),
    })),
    producerName: String(m.producerName ?? ''),
    metadata: Object.fromEntries(
      asArray<Obj>(m.metadataProps).map((p) => [String(p.key ?? ''), String(p.value ?? '')]),
    ),
    graph: {
      name: String(g.name ?? ''),
      nodes: asArray<Obj>(g.node).map((n) => decodeNode(n, source)),
      initializers,
      // Initializers may also be listed as inputs (older exporters): those are not inputs.
      inputs: asArray<Obj>(g.input)
        .map(decodeValueInfo)
        .filter((v) => !initializers.has(v.name)),
      outputs: asArray<Obj>(g.output).map(decodeValueInfo),
    },
  };
}

function decodeValueInfo(v: Obj): OnnxValueInfo {
  const tensorType = ((v.type as Obj | undefined)?.tensorType ?? {}) as Obj;
  const dims = asArray<Obj>((tensorType.shape as Obj | undefined)?.dim);
  return {
    name: String(v.name ?? ''),
    shape: dims.map((d) =>
      d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null,
    ),
  };
}

function decodeNode(n: Obj, source: string): OnnxNode {
  const attributes: Record<string, OnnxAttribute> = {};
  for (const a of asArray<Obj>(n.attribute)) {
    attributes[String(a.name)] = decodeAttribute(a, source);
  }
  return {
    opType: String(n.opType ?? ''),
    name: String(n.name ?? ''),
    domain: String(n.domain ?? ''),
    inputs: asArray<string>(n.input),
    outputs: asArray<string>(n.output),
    attributes,
  };
}

const text = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

function decodeAttribute(a: Obj, source: string): OnnxAttribute {
  switch (Number(a.type ?? 0)) {
    case AttributeType.FLOAT:
      return Number(a.f ?? 0);
    case AttributeType.INT:
      return Number(a.i ?? 0);
    case AttributeType.STRING:
      return text(a.s);
    case AttributeType.TENSOR:
      return decodeTensor(a.t as Obj, source);
    case AttributeType.FLOATS:
      return asArray<number>(a.floats).map(Number);
    case AttributeType.INTS:
      return asArray<number>(a.ints).map(Number);
    case AttributeType.STRINGS:
      return asArray<Uint8Array>(a.strings).map(text);
    default:
      throw new ParryError(
        'UNSUPPORTED',
        `${source}: attribute '${String(a.name)}' has type ${String(a.type)}, which parry does not read`,
      );
  }
}

function decodeTensor(t: Obj, source: string): OnnxTensor {
  const name = String(t.name ?? '');
  const dims = asArray<number>(t.dims).map(Number);
  const size = dims.reduce((a, b) => a * b, 1);
  const type = Number(t.dataType ?? 0);
  const raw = t.rawData as Uint8Array | undefined;
  const bad = (why: string) => new ParryError('BAD_FILE', `${source}: tensor '${name}' ${why}`);
  if (Number(t.dataLocation ?? 0) === 1) {
    throw new ParryError('UNSUPPORTED', `${source}: tensor '${name}' is stored outside the file`);
  }
  const view = (bytesPer: number) => {
    if (raw == null || raw.byteLength === 0) return null;
    if (raw.byteLength !== size * bytesPer)
      throw bad(`has ${raw.byteLength} bytes for ${size} values`);
    return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  };
  let data: Float32Array | Int32Array;
  let dtype: OnnxTensor['dtype'];
  if (type === DataType.FLOAT) {
    const b = view(4);
    data = b ? new Float32Array(b) : Float32Array.from(asArray<number>(t.floatData));
    dtype = 'float32';
  } else if (type === DataType.DOUBLE) {
    const b = view(8);
    data = Float32Array.from(b ? new Float64Array(b) : asArray<number>(t.doubleData));
    dtype = 'float32';
  } else if (type === DataType.FLOAT16) {
    const b = view(2);
    const bits = b ? new Uint16Array(b) : Uint16Array.from(asArray<number>(t.int32Data));
    data = decodeFloat16(bits);
    dtype = 'float32';
  } else if (type === DataType.INT64) {
    const b = view(8);
    const values = b ? Array.from(new BigInt64Array(b), Number) : asArray<number>(t.int64Data);
    // Beyond int32 only as Slice's "to the end" (±INT64_MAX): clamped, which means the same.
    data = Int32Array.from(values, (v) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v)));
    dtype = 'int32';
  } else if (
    type === DataType.INT32 ||
    type === DataType.INT8 ||
    type === DataType.UINT8 ||
    type === DataType.BOOL
  ) {
    const bytesPer = type === DataType.INT32 ? 4 : 1;
    const b = view(bytesPer);
    if (b) {
      data =
        type === DataType.INT32
          ? new Int32Array(b)
          : Int32Array.from(type === DataType.INT8 ? new Int8Array(b) : new Uint8Array(b));
    } else {
      data = Int32Array.from(asArray<number>(t.int32Data));
    }
    dtype = 'int32';
  } else {
    throw new ParryError('UNSUPPORTED', `${source}: tensor '${name}' has data type ${type}`);
  }
  if (data.length !== size) throw bad(`has ${data.length} values for shape [${dims.join(', ')}]`);
  return { name, dims, dtype, data };
}

/** Encodes `model` as ONNX bytes (float tensors as raw little-endian data). */
export function writeOnnx(model: OnnxModel): Uint8Array {
  const g = model.graph;
  const valueInfo = (v: OnnxValueInfo) => ({
    name: v.name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        // An empty shape stays unstated (a rank-0 value is no classifier's input or output).
        ...(v.shape.length === 0
          ? {}
          : {
              shape: {
                dim: v.shape.map((d) => (d == null ? { dimParam: 'batch' } : { dimValue: d })),
              },
            }),
      },
    },
  });
  const message = ModelProto.fromObject({
    irVersion: model.irVersion,
    opsetImport: model.opsets,
    producerName: model.producerName,
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        input: n.inputs,
        output: n.outputs,
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        attribute: Object.entries(n.attributes).map(([name, v]) => encodeAttribute(name, v)),
      })),
      initializer: [...g.initializers.values()].map(encodeTensor),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  });
  return ModelProto.encode(message).finish();
}

function encodeTensor(t: OnnxTensor): Obj {
  if (t.dtype === 'float32') {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return { name: t.name, dims: t.dims, dataType: DataType.FLOAT, rawData: bytes };
  }
  return { name: t.name, dims: t.dims, dataType: DataType.INT64, int64Data: Array.from(t.data) };
}

/** Attributes the ONNX operators declare as floats (every other number parry writes is an int). */
const FLOAT_ATTRIBUTES = new Set(['alpha', 'beta', 'epsilon', 'momentum', 'gamma', 'value']);

function encodeAttribute(name: string, v: OnnxAttribute): Obj {
  if (typeof v === 'number') {
    return FLOAT_ATTRIBUTES.has(name)
      ? { name, type: AttributeType.FLOAT, f: v }
      : { name, type: AttributeType.INT, i: v };
  }
  if (typeof v === 'string')
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'number')) return { name, type: AttributeType.INTS, ints: v };
    return {
      name,
      type: AttributeType.STRINGS,
      strings: v.map((s) => new TextEncoder().encode(String(s))),
    };
  }
  return { name, type: AttributeType.TENSOR, t: encodeTensor(v) };
}
