/**
 * Which unit of work a job belongs to, for messages and progress: a caller wraps its work in
 * `withJobLabel('fmnist-mlp: fgsm linf 0.1', fn)` and every job that `fn` submits, however deep,
 * carries that label (Node's AsyncLocalStorage follows the awaits). A label never changes a job's
 * key or result.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<string>();

export function withJobLabel<T>(label: string, fn: () => Promise<T>): Promise<T> {
  return current.run(label, fn);
}

/** The label of the work running now, or undefined. */
export const jobLabel = (): string | undefined => current.getStore();
