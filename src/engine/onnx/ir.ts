/**
 * An ONNX model as plain data, shared by the file reader and writer (src/models/onnx) and the
 * gradient-graph generator beside this file: nodes with decoded attributes, initializers as typed
 * arrays, inputs and outputs with their shapes, and `metadata_props` as a record.
 */

export interface OnnxTensor {
  name: string;
  dims: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export type OnnxAttribute = number | number[] | string | string[] | OnnxTensor;

export interface OnnxNode {
  opType: string;
  name: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  /** Per dimension: its size, or null when symbolic (the batch) or unknown. */
  shape: (number | null)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  graph: OnnxGraph;
  metadata: Record<string, string>;
}
