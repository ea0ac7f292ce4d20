/**
 * Spectral signatures (Tran, Li & Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS
 * 2018). Per class (by the given label): the penultimate features R of its examples, centred;
 * the top right singular vector v of the centred matrix (the top eigenvector of its covariance,
 * by power iteration); each example's outlier score (R̂ᵢ·v)². The 1.5·ε·n_y highest scores of
 * each class are flagged, ε being the expected poisoned fraction (the paper's removal rule).
 * Threat model: poisons that leave a strong trace in the learned representation (patch
 * backdoors); blended triggers and clean-label poisons are known to slip past it.
 */
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import { parseWith } from '../../options.js';
import { classRows, pickRows, trainingFeatures } from './class-features.js';
import type { InspectionResult } from './inspection.js';

export const spectralConfigSchema = z
  .strictObject({
    /** Expected poisoned fraction ε of each class; 1.5·ε·n_y examples are flagged per class. */
    expectedFraction: z
      .number()
      .gt(0)
      .max(0.5)
      .default(0.05)
      .describe('expected poisoned fraction ε of a class; 1.5·ε·n_y flagged per class'),
    /** Power-iteration steps for the top singular vector. */
    iterations: z.number().int().min(1).default(100).describe('power-iteration steps'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .default(0)
      .describe('seed of the power-iteration start'),
  })
  .describe('spectral signatures');
export type SpectralConfig = z.infer<typeof spectralConfigSchema>;

/** Top eigenvector of the d×d symmetric matrix `c` (row-major), by power iteration. */
export function topEigenvector(c: Float64Array, d: number, iterations: number, rng: Rng) {
  let v = Float64Array.from({ length: d }, () => rng.normal());
  for (let it = 0; it < iterations; it++) {
    const w = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += c[i * d + j] * v[j];
      w[i] = s;
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += w[i] * w[i];
    norm = Math.sqrt(norm);
    if (norm === 0) break;
    v = w.map((x) => x / norm);
  }
  return v;
}

/** Outlier scores (R̂ᵢ·v)² of the `n` rows of `features` (n×d, row-major). */
export function spectralScores(
  features: Float64Array,
  n: number,
  d: number,
  iterations: number,
  rng: Rng,
): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += features[i * d + j] / n;
  const centred = features.map((x, k) => x - mean[k % d]);
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let a = 0; a < d; a++) {
      const x = centred[row + a];
      if (x === 0) continue;
      for (let b = 0; b < d; b++) cov[a * d + b] += x * centred[row + b];
    }
  }
  const v = topEigenvector(cov, d, iterations, rng);
  return Float64Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += centred[i * d + j] * v[j];
    return s * s;
  });
}

/**
 * Spectral signatures on the training set `data` with the features of `model` (a Sequential
 * TfjsClassifier). Returns flagged indices and one score per example (scores compare within a
 * class only).
 */
export function spectralSignatures(
  model: Classifier,
  data: Dataset,
  config: z.input<typeof spectralConfigSchema> = {},
  onProgress?: (done: number, total: number) => void,
): InspectionResult {
  const c = parseWith('spectral', spectralConfigSchema, config);
  const { features, d } = trainingFeatures(model, data, onProgress);
  const rng = new Rng(c.seed);
  const scores = new Float64Array(data.shape[0]);
  const flagged: number[] = [];
  const perClass: Record<string, number>[] = [];
  for (let y = 0; y < data.numClasses; y++) {
    const rows = classRows(data.labels, y);
    if (rows.length < 2) continue;
    const s = spectralScores(pickRows(features, d, rows), rows.length, d, c.iterations, rng);
    rows.forEach((i, k) => {
      scores[i] = s[k];
    });
    const remove = Math.min(rows.length, Math.floor(1.5 * c.expectedFraction * rows.length));
    const order = rows.map((_, k) => k).sort((a, b) => s[b] - s[a]);
    for (const k of order.slice(0, remove)) flagged.push(rows[k]);
    perClass.push({ class: y, examples: rows.length, flagged: remove });
  }
  flagged.sort((a, b) => a - b);
  return { method: 'spectral', flagged, scores, perClass };
}
