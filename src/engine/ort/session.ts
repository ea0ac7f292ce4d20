/**
 * ONNX Runtime sessions as parry runs them: native MLAS kernels on the CPU, graph optimisation
 * `all` (NCHWc convolutions), one intra-op thread per session with spinning off (each worker
 * thread owns its sessions; spinning threads slowed shared cores 1.5–2× in our measurements), the
 * memory arena and pattern left on. Inputs and outputs are float32 arrays with their shapes.
 *
 * Runs are synchronous. onnxruntime-node's public `InferenceSession.run` only defers the native
 * binding's synchronous call to the next macrotask; calling the binding directly (pinned version,
 * `dist/binding.js`) lets a classifier's `logits` — synchronous like every tfjs op — run on ORT, so
 * every attack, defence and certifier composes with the native engine unchanged.
 */
import * as ort from 'onnxruntime-node';
import { binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import { ParryError } from '../../errors.js';

export interface SessionOptions {
  /** Intra-op threads (default 1). */
  threads?: number;
}

export interface Float32Value {
  data: Float32Array;
  dims: number[];
}

type NativeSession = InstanceType<typeof binding.InferenceSession>;

/** Sessions alive in this thread (leak tests read it). */
let live = 0;

export class OrtSession {
  private released = false;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly fetches: Record<string, null>;

  private constructor(private readonly session: NativeSession) {
    this.inputNames = session.inputMetadata.map((m) => m.name);
    this.outputNames = session.outputMetadata.map((m) => m.name);
    this.fetches = Object.fromEntries(this.outputNames.map((n) => [n, null]));
    live++;
  }

  /** Sessions created and not yet released in this thread. */
  static get live(): number {
    return live;
  }

  /** A session for the ONNX model `bytes`; `source` names it in errors. */
  static create(bytes: Uint8Array, source: string, opts: SessionOptions = {}): OrtSession {
    try {
      initOrt();
      const session = new binding.InferenceSession();
      session.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
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

  /** Runs the graph on `feeds` (by input name); returns every output by name. */
  run(feeds: Record<string, Float32Value>): Record<string, Float32Value> {
    if (this.released) throw new ParryError('INTERNAL', 'OrtSession: run after release');
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, v] of Object.entries(feeds))
      inputs[name] = new ort.Tensor('float32', v.data, v.dims);
    const out = this.session.run(inputs, this.fetches, {});
    const result: Record<string, Float32Value> = {};
    for (const [name, t] of Object.entries(out)) {
      result[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    }
    return result;
  }

  /** Frees the native session; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    live--;
    this.session.dispose();
  }
}
