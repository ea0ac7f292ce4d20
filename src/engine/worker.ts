/**
 * Entry point of a `WorkerPool` thread, booted from its compiled form `dist/src/engine/worker.js`
 * (TypeScript transforms of tsx/vitest do not carry into worker_threads). It initialises the
 * pool's backend once, then runs one job at a time, keeping `cache` across jobs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ParryError } from '../errors.js';
import { initBackend } from './backend.js';
import {
  collectTransferables,
  executeTask,
  type SerializedError,
  serializeError,
  type TaskSpec,
} from './tasks.js';

/** `workerData` of a pool worker. */
export interface WorkerInit {
  backend: string;
}

/** Pool -> worker. */
export interface JobMessage {
  type: 'job';
  id: number;
  task: TaskSpec;
  input: unknown;
  seed?: number;
}

/** Worker -> pool. */
export type WorkerMessage =
  | { type: 'ready'; backend: string }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'progress'; id: number; fraction: number }
  | { type: 'result'; id: number; output: unknown }
  | { type: 'error'; id: number; error: SerializedError };

/** A job's progress reaches the pool at most this often. */
const PROGRESS_INTERVAL_MS = 250;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) {
    throw new ParryError('INTERNAL', 'worker: worker.js must be started by WorkerPool');
  }
  const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []): void => {
    try {
      port.postMessage(message, transfer);
    } catch {
      // A buffer that cannot move (wasm memory, a shared one): copy instead; if the value cannot
      // be cloned at all, the second attempt throws into the job's error path.
      port.postMessage(message);
    }
  };
  let backend: string;
  try {
    backend = await initBackend((workerData as WorkerInit).backend);
  } catch (e) {
    post({ type: 'init-error', error: serializeError(e) });
    return;
  }
  const cache = new Map<string, unknown>();
  port.on('message', async (job: JobMessage) => {
    let last = 0;
    const progress = (fraction: number): void => {
      const now = performance.now();
      if (now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      post({ type: 'progress', id: job.id, fraction: Math.min(1, Math.max(0, fraction)) });
    };
    try {
      const output = await executeTask(job.task, job.input, job.seed, cache, progress);
      post({ type: 'result', id: job.id, output }, collectTransferables(output));
    } catch (e) {
      post({ type: 'error', id: job.id, error: serializeError(e) });
    }
  });
  post({ type: 'ready', backend });
}

await main();
