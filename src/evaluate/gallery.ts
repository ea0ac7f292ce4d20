/**
 * The gallery: for an attack at one budget, the first examples it broke, each as PNG data URIs of
 * the clean input, the adversarial input and the amplified perturbation, with saliency maps of
 * both inputs for the prediction made on each.
 */
import * as tf from '@tensorflow/tfjs-core';
import { imagePng, perturbationPng, pngDataUri } from '../data/image-encoding.js';
import { saliency, saliencyPng, pngDataUri as saliencyUri } from '../explain/index.js';
import type { Classifier } from '../models/classifier.js';
import type { AttackCell, GalleryItem } from './results.js';

export type SaliencyMethod = 'gradient' | 'smoothgrad' | 'integrated-gradients';

export interface GalleryInput {
  cell: AttackCell;
  labels: ArrayLike<number>;
  cleanPredictions: ArrayLike<number>;
  cleanConfidences: ArrayLike<number>;
  /** Clean and adversarial inputs of every example, `[n, ...shape]` flattened. */
  x: Float32Array;
  xAdv: Float32Array;
  shape: number[];
  k: number;
  zoom: number;
  /** The model as deployed (confidences) and the one gradients go through (saliency). */
  model: Classifier;
  gradientModel: Classifier;
  methods: readonly SaliencyMethod[];
  samples?: number;
  seed: number;
}

/** Indices of the first `k` examples classified correctly clean and broken in `cell`. */
export function brokenExamples(
  cell: AttackCell,
  labels: ArrayLike<number>,
  cleanPredictions: ArrayLike<number>,
  k: number,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < cell.robust.length && out.length < k; i++) {
    if (cleanPredictions[i] === labels[i] && cell.adversarial[i] !== labels[i]) out.push(i);
  }
  return out;
}

/** Gallery items of one cell; `notes` says which saliency methods could not run. */
export async function galleryItems(
  g: GalleryInput,
): Promise<{ items: GalleryItem[]; notes: string[] }> {
  const idx = brokenExamples(g.cell, g.labels, g.cleanPredictions, g.k);
  if (idx.length === 0) return { items: [], notes: [] };
  const per = g.shape.reduce((a, b) => a * b, 1);
  const rows = (src: Float32Array) => {
    const out = new Float32Array(idx.length * per);
    for (const [r, i] of idx.entries()) out.set(src.subarray(i * per, (i + 1) * per), r * per);
    return out;
  };
  const x = rows(g.x);
  const xAdv = rows(g.xAdv);
  const cleanClasses = idx.map((i) => g.cleanPredictions[i]);
  const advClasses = idx.map((i) => g.cell.adversarial[i]);
  const confidence = await confidenceOf(g.model, xAdv, [idx.length, ...g.shape], advClasses);
  const maps: { method: string; clean: Float32Array; adversarial: Float32Array }[] = [];
  const notes: string[] = [];
  for (const method of g.methods) {
    try {
      const options = { seed: g.seed, ...(g.samples ? { samples: g.samples } : {}) };
      const clean = await saliencyValues(
        g.gradientModel,
        x,
        [idx.length, ...g.shape],
        cleanClasses,
        method,
        options,
      );
      const adversarial = await saliencyValues(
        g.gradientModel,
        xAdv,
        [idx.length, ...g.shape],
        advClasses,
        method,
        options,
      );
      maps.push({ method, clean, adversarial });
    } catch (e) {
      notes.push(`saliency '${method}' skipped: ${(e as Error).message}`);
    }
  }
  const bounds = g.model.bounds;
  const items = idx.map((i, r): GalleryItem => {
    const row = (a: Float32Array) => a.subarray(r * per, (r + 1) * per);
    const pert = perturbationPng(row(x), row(xAdv), g.shape, bounds, g.zoom);
    return {
      attack: g.cell.attack,
      norm: g.cell.norm,
      eps: g.cell.eps,
      index: i,
      label: g.labels[i],
      cleanPrediction: cleanClasses[r],
      cleanConfidence: g.cleanConfidences[i],
      adversarialPrediction: advClasses[r],
      adversarialConfidence: confidence[r],
      clean: pngDataUri(imagePng(row(x), g.shape, bounds, g.zoom)),
      adversarial: pngDataUri(imagePng(row(xAdv), g.shape, bounds, g.zoom)),
      perturbation: pngDataUri(pert.png),
      amplification: pert.amplification,
      saliency: maps.map((m) => ({
        method: m.method,
        clean: saliencyUri(saliencyPng(row(m.clean), g.shape, g.zoom)),
        adversarial: saliencyUri(saliencyPng(row(m.adversarial), g.shape, g.zoom)),
      })),
    };
  });
  return { items, notes };
}

/** Softmax probability of `classes[i]` for each row. */
async function confidenceOf(
  model: Classifier,
  values: Float32Array,
  shape: number[],
  classes: number[],
): Promise<number[]> {
  const probs = tf.tidy(() => tf.softmax(model.logits(tf.tensor(values, shape))));
  const p = await probs.data();
  probs.dispose();
  const k = model.numClasses;
  return classes.map((c, r) => p[r * k + c]);
}

async function saliencyValues(
  model: Classifier,
  values: Float32Array,
  shape: number[],
  classes: number[],
  method: SaliencyMethod,
  options: { seed: number; samples?: number },
): Promise<Float32Array> {
  const x = tf.tensor(values, shape);
  try {
    const map = saliency(model, x, classes, method, options);
    const out = (await map.data()) as Float32Array;
    map.dispose();
    return out;
  } finally {
    x.dispose();
  }
}
