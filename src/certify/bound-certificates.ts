/**
 * IBP / CROWN certificates over a whole in-memory data set, in batches of examples: the loop
 * shared by `parry certify --method ibp|crown` and the certified accuracy `parry train --defense
 * ibp` records each epoch. Reads each batch's certificates once (a boundary).
 */
import * as tf from '@tensorflow/tfjs-core';
import { batches, type Dataset } from '../data/index.js';
import { type CrownConfigInput, certifyCrown } from '../models/bounds/crown.js';
import { certifyIbp } from '../models/bounds/interval.js';
import type { TfjsClassifier } from '../models/tfjs-classifier.js';

export interface CertifyDatasetOptions {
  method: 'ibp' | 'crown';
  /** L∞ radius, clipped to the model's bounds. */
  eps: number;
  /** Examples per bound pass; default 100. */
  batchSize?: number;
  crown?: CrownConfigInput;
  /** Called after each batch with the examples done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface CertifyDatasetResult {
  /** Per example: the label is certified on the whole ball. */
  certified: boolean[];
  /** Per example: min over j ≠ label of the margin lower bound. */
  minMargin: number[];
  /** IBP's certificates (for crown, the IBP run reported beside it; for ibp, `certified`). */
  ibpCertified: boolean[];
  /** Network passes, counted as `certifyIbp` / `certifyCrown` do (crown adds its IBP run). */
  passes: number;
}

/** Certifies every example of `data` with IBP, or with CROWN and IBP side by side. */
export async function certifyDataset(
  model: TfjsClassifier,
  data: Dataset,
  opts: CertifyDatasetOptions,
): Promise<CertifyDatasetResult> {
  const out: CertifyDatasetResult = { certified: [], minMargin: [], ibpCertified: [], passes: 0 };
  for (const batch of batches(data, opts.batchSize ?? 100)) {
    const x = tf.tensor(batch.x, batch.shape);
    const y = tf.tensor1d(batch.labels, 'int32');
    try {
      let r = await certifyIbp(model, x, y, opts.eps);
      tf.dispose([r.lower, r.upper, r.marginLower]);
      out.passes += r.passes;
      out.ibpCertified.push(...r.certified);
      if (opts.method === 'crown') {
        r = await certifyCrown(model, x, y, opts.eps, opts.crown);
        tf.dispose([r.lower, r.upper, r.marginLower]);
        out.passes += r.passes;
      }
      out.certified.push(...r.certified);
      out.minMargin.push(...r.minMargin);
    } finally {
      tf.dispose([x, y]);
    }
    opts.onProgress?.(batch.start + batch.shape[0], data.shape[0]);
    // Give timers a turn (progress redraws): awaits on wasm data resolve as microtasks.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

/** Fraction of true values. */
export const fraction = (flags: boolean[]) => flags.filter(Boolean).length / flags.length;
