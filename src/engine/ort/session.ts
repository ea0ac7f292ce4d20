/**
 * ONNX Runtime sessions as parry runs them: native MLAS kernels on the CPU, graph optimisation
 * `all` (NCHWc convolutions), one intra-op thread per session with spinning off (each worker
 * thread owns its sessions; spinning threads slowed shared cores 1.5–2× in our measurements), the
 * memory arena and pattern left on. Inputs and outputs are float32 arrays with their shapes.
 */
import * as ort from 'onnxruntime-node';
import { ParryError } from '../../errors.js';

export interface SessionOptions {
  /** Intra-op threads (default 1). */
  threads?: number;
}

export interface Float32Value {
  data: Float32Array;
  dims: number[];
}

export class OrtSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** A session for the ONNX model `bytes`; `source` names it in errors. */
  static async create(
    bytes: Uint8Array,
    source: string,
    opts: SessionOptions = {},
  ): Promise<OrtSession> {
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      return new OrtSession(session);
    } catch (e) {
      throw new ParryError(
        'UNSUPPORTED',
        `ONNX Runtime cannot load ${source}: ${String((e as Error).message ?? e).split('\n')[0]}`,
        { cause: e },
      );
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the graph on `feeds` (by input name); returns every output by name. */
  async run(feeds: Record<string, Float32Value>): Promise<Record<string, Float32Value>> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, v] of Object.entries(feeds))
      inputs[name] = new ort.Tensor('float32', v.data, v.dims);
    const out = await this.session.run(inputs);
    const result: Record<string, Float32Value> = {};
    for (const [name, t] of Object.entries(out)) {
      result[name] = { data: t.data as Float32Array, dims: [...t.dims] };
      t.dispose();
    }
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
