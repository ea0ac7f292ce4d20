/**
 * Certified robustness of a target, as `results.json` holds it: bound propagation (IBP, CROWN)
 * at each L∞ budget of a grid, and the randomized-smoothing certificate over L2 radii. A model
 * whose layers the bounds do not support gets a note instead of a curve.
 */
import { certifyDataset } from '../certify/bound-certificates.js';
import { certifiedCurve } from '../certify/curve.js';
import {
  certifySmoothingDataset,
  certifySmoothingDatasetPooled,
  type SmoothingRow,
} from '../certify/smoothing-dataset.js';
import type { Dataset } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { isParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import type { TfjsClassifier } from '../models/index.js';
import type { SmoothingConfig } from './config.js';
import type { CertifiedResult } from './results.js';

/** One bound-propagation run at one eps: per example 1 = certified, or why it could not run. */
export type BoundsRecord =
  | { certified: number[]; passes: number; seconds: number }
  | { unsupported: string; seconds: number };

export async function certifyBoundsCell(
  model: TfjsClassifier,
  data: Dataset,
  method: 'ibp' | 'crown',
  eps: number,
  onProgress?: (done: number, total: number) => void,
): Promise<BoundsRecord> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    const r = await certifyDataset(model, data, { method, eps, onProgress });
    return { certified: r.certified.map((c) => (c ? 1 : 0)), passes: r.passes, seconds: seconds() };
  } catch (e) {
    if (isParryError(e) && e.code === 'UNSUPPORTED')
      return { unsupported: e.message, seconds: seconds() };
    throw e;
  }
}

/**
 * The curve over the grid (certified accuracy at each eps) and per example the largest eps of
 * the grid certified (0: none). Null when a run was unsupported.
 */
export function boundsResult(
  method: 'ibp' | 'crown',
  grid: readonly number[],
  records: readonly BoundsRecord[],
): CertifiedResult | null {
  if (records.some((r) => 'unsupported' in r)) return null;
  const runs = records as { certified: number[]; passes: number; seconds: number }[];
  const n = runs[0]?.certified.length ?? 0;
  const radii = Array.from({ length: n }, (_, i) =>
    grid.reduce((best, eps, k) => (runs[k].certified[i] === 1 ? Math.max(best, eps) : best), 0),
  );
  return {
    method,
    norm: 'linf',
    curve: grid.map((eps, k) => ({
      radius: eps,
      accuracy: n === 0 ? 0 : runs[k].certified.reduce((s, c) => s + c, 0) / n,
    })),
    radii,
    abstainRate: null,
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
    params: { eps: [...grid], passes: runs.reduce((s, r) => s + r.passes, 0) },
  };
}

export interface SmoothingRecord {
  /** Smoothed prediction per example, -1 = abstained. */
  predictions: number[];
  radii: number[];
  pALower: number[];
  forwardPasses: number;
  seconds: number;
}

/**
 * Certifies every example (Cohen et al. 2019), across `pool` when the model comes from a
 * directory the workers can load, else in this thread.
 */
export async function smoothingCell(
  model: Classifier,
  modelDir: string | null,
  data: Dataset,
  config: SmoothingConfig,
  seed: number,
  pool: WorkerPool | undefined,
  opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<SmoothingRecord> {
  const started = performance.now();
  const { radii: _radii, ...certify } = config;
  const r =
    pool && modelDir
      ? await certifySmoothingDatasetPooled(pool, modelDir, data, certify, seed, opts)
      : await certifySmoothingDataset(model, data, certify, seed, opts);
  const rows: SmoothingRow[] = r.rows;
  return {
    predictions: rows.map((e) => e.prediction),
    radii: rows.map((e) => e.radius),
    pALower: rows.map((e) => e.pALower),
    forwardPasses: r.forwardPasses,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Certified accuracy at each radius: the smoothed prediction is the label and its certified
 * radius is at least that radius. Per example, the certified radius of a correct prediction,
 * else 0.
 */
export function smoothingResult(
  rec: SmoothingRecord,
  config: SmoothingConfig,
  labels: ArrayLike<number>,
): CertifiedResult {
  const n = rec.predictions.length;
  const correct = (i: number) => rec.predictions[i] === labels[i];
  return {
    method: 'smoothing',
    norm: 'l2',
    curve: certifiedCurve(rec.predictions, rec.radii, labels, config.radii),
    radii: rec.radii.map((r, i) => (correct(i) ? r : 0)),
    abstainRate: n === 0 ? 0 : rec.predictions.filter((p) => p === -1).length / n,
    seconds: rec.seconds,
    params: { ...config, forwardPasses: rec.forwardPasses },
  };
}
