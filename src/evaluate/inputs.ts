/**
 * What an evaluation runs on, prepared and checked before any attack starts: the examples, their
 * groups, and the targets (each model, loaded once, optionally behind its defense). Errors name
 * the config path they come from.
 */

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { preprocessAttacker } from '../adaptive/bpda.js';
import { pgd } from '../attacks/evasion/pgd.js';
import { type Dataset, loadDataset, takeFirst } from '../data/index.js';
import { DetectingClassifier } from '../defenses/detection/detecting-classifier.js';
import type { Detector } from '../defenses/detection/detector.js';
import {
  detectorSplit,
  fitCalibratedDetector,
  isSupervised,
} from '../defenses/detection/protocol.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import type { Preprocessor } from '../defenses/preprocess/preprocessor.js';
import { buildPreprocessors } from '../defenses/preprocess/spec.js';
import { isParryError, ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier, type TfjsClassifier } from '../models/index.js';
import {
  type CertifyConfig,
  type DetectorConfig,
  type EvaluateConfig,
  type ModelConfig,
  type SmoothingConfig,
  targetId,
} from './config.js';
import { middle } from './context.js';
import type { PooledTarget } from './robustness.js';

export interface Target {
  id: string;
  /** Model name (the config's, or the directory's base name). */
  model: string;
  /** Defense label for results (`squeeze-bits:bits=2`), or null. */
  defense: string | null;
  trainedAgainst: string;
  base: TfjsClassifier;
  /** Model directory the pool's workers can load: set only for targets without a preprocessing defense. */
  modelDir: string | null;
  /** What the pool's workers attack (model directory and preprocessing chain): null with a detector. */
  pooled: PooledTarget | null;
  preprocessors: Preprocessor[] | null;
  adaptive: 'bpda' | 'none';
  /** The target is this Gaussian-smoothed classifier (certified, not attacked). */
  smoothing: SmoothingConfig | null;
  /** A fitted, calibrated detector in front of the model, and the joint attack's steps. */
  detector: { detector: Detector; jointSteps: number } | null;
  certify: CertifyConfig;
}

/** The first `n` test examples of the configured data set, with class names. */
export function loadExamples(config: EvaluateConfig): Dataset & { classNames: string[] } {
  const data = takeFirst(loadDataset(config.dataset, 'test', { seed: config.seed }), config.n);
  if (data.shape[0] < config.n) {
    throw new ParryError(
      'BAD_OPTION',
      `evaluate: n: ${config.dataset} has ${data.shape[0]} test examples, fewer than ${config.n}`,
    );
  }
  const classNames =
    data.classNames ?? Array.from({ length: data.numClasses }, (_, i) => String(i));
  return { ...data, classNames };
}

/** Per-example group names from `groups`, or null. */
export function resolveGroups(
  config: EvaluateConfig,
  labels: ArrayLike<number>,
  classNames: readonly string[],
): string[] | null {
  const g = config.groups;
  if (g === undefined) return null;
  if (g.byLabel !== undefined) {
    const byLabel = new Map<number, string>();
    for (const [key, group] of Object.entries(g.byLabel)) {
      const label = /^\d+$/.test(key) ? Number(key) : classNames.indexOf(key);
      if (label < 0 || label >= classNames.length) {
        throw new ParryError(
          'BAD_OPTION',
          `evaluate: groups.byLabel.${key}: not a label or class name (classes: ${classNames.join(', ')})`,
        );
      }
      byLabel.set(label, group);
    }
    return Array.from(labels, (y) => byLabel.get(y) ?? '(other)');
  }
  const file = g.file!;
  let names: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    names = text.trimStart().startsWith('[')
      ? JSON.parse(text)
      : text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '');
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `evaluate: groups.file: cannot read ${file}: ${(e as Error).message}`,
    );
  }
  if (
    !Array.isArray(names) ||
    !names.every((s) => typeof s === 'string' || typeof s === 'number')
  ) {
    throw new ParryError(
      'BAD_FILE',
      `evaluate: groups.file: ${file} must hold a JSON array of names or one name per line`,
    );
  }
  if (names.length < labels.length) {
    throw new ParryError(
      'BAD_FILE',
      `evaluate: groups.file: ${file} names ${names.length} examples, fewer than n = ${labels.length}`,
    );
  }
  return names.slice(0, labels.length).map(String);
}

/** What the model in `dir` was trained against, from its training.json; 'none' without one. */
export function trainedAgainstOf(dir: string): string {
  const file = path.join(dir, 'training.json');
  if (!existsSync(file)) return 'none';
  let t: Record<string, unknown>;
  try {
    t = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return 'none';
  }
  const defense = typeof t.defense === 'string' ? t.defense : 'none';
  if (defense === 'none') {
    const sigma = Number(t.noise_sigma ?? 0);
    return sigma > 0 ? `gaussian-noise sigma ${sigma}` : 'none';
  }
  const params = (t[defense] ?? {}) as Record<string, unknown>;
  const eps = params.eps ?? t.eps;
  const norm = typeof params.norm === 'string' ? params.norm : 'linf';
  return typeof eps === 'number' ? `${defense} ${norm} ${eps}` : defense;
}

/** Loads every model once (by path), builds defenses, and checks them against the data. */
export async function prepareTargets(config: EvaluateConfig, data: Dataset): Promise<Target[]> {
  const loaded = new Map<string, TfjsClassifier>();
  const targets: Target[] = [];
  try {
    for (const [i, m] of config.models.entries()) {
      let base = loaded.get(m.path);
      if (base === undefined) {
        base = await at(`models[${i}].path`, () => loadClassifier(m.path));
        loaded.set(m.path, base);
        const model = base;
        await at(`models[${i}]`, () => {
          model.checkInput(data.shape);
          checkDataFits(model, data);
        });
        if (base.numClasses !== data.numClasses) {
          throw new ParryError(
            'BAD_OPTION',
            `evaluate: models[${i}]: ${m.path} has ${base.numClasses} classes, ${config.dataset} has ${data.numClasses}`,
          );
        }
      }
      targets.push(await targetOf(config, m, i, base));
    }
  } catch (e) {
    for (const model of loaded.values()) model.dispose();
    throw e;
  }
  return targets;
}

async function targetOf(
  config: EvaluateConfig,
  m: ModelConfig,
  i: number,
  base: TfjsClassifier,
): Promise<Target> {
  const spec = m.defense?.preprocess;
  const preprocessors = spec
    ? await at(`models[${i}].defense.preprocess`, () => buildPreprocessors(spec))
    : null;
  const d = m.defense?.detector;
  const detector = d
    ? {
        detector: await at(`models[${i}].defense.detector`, () => fitDetector(config, d, base)),
        jointSteps: d.jointSteps,
      }
    : null;
  return {
    id: targetId(m),
    model: m.name ?? path.basename(m.path),
    defense:
      [
        spec,
        m.defense?.smoothing ? `smoothing sigma=${m.defense.smoothing.sigma}` : undefined,
        d ? `${d.name} detector, fpr ${d.fpr}` : undefined,
      ]
        .filter((p) => p !== undefined)
        .join(' + ') || null,
    trainedAgainst: m.trainedAgainst ?? trainedAgainstOf(m.path),
    base,
    modelDir: preprocessors === null && detector === null ? m.path : null,
    pooled:
      detector === null
        ? { modelDir: m.path, ...(spec ? { preprocess: spec, adaptive: m.defense?.adaptive } : {}) }
        : null,
    preprocessors,
    adaptive: m.defense?.adaptive ?? 'bpda',
    smoothing: m.defense?.smoothing ?? null,
    detector,
    certify: m.certify ?? config.certify,
  };
}

/**
 * Fits detector `d` by the detector protocol (src/defenses/detection/protocol.ts) on the training
 * split; supervised detectors also learn from PGD-10 examples crafted on the fitting slice at the
 * middle L∞ budget of the config (0.1 when it has none).
 */
async function fitDetector(
  config: EvaluateConfig,
  d: DetectorConfig,
  model: TfjsClassifier,
): Promise<Detector> {
  const train = loadDataset(config.dataset, 'train', { seed: config.seed });
  const { fit, calibration } = detectorSplit(train, d);
  const x = tf.tensor(fit.x, fit.shape);
  const y = tf.tensor1d(fit.labels, 'int32');
  const calX = tf.tensor(calibration.x, calibration.shape);
  let adv: tf.Tensor | undefined;
  try {
    if (isSupervised(d.name)) {
      const eps = config.eps.linf ? middle(config.eps.linf) : 0.1;
      const r = await pgd(model, x, y, { eps, steps: 10, seed: config.seed + 1 });
      tf.dispose([r.predictions, r.success, r.perturbationNorms]);
      adv = r.xAdv;
    }
    const data = { x, labels: y, adversarial: adv, calibration: calX };
    return await fitCalibratedDetector(d.name, model, data, d.fpr, config.seed);
  } finally {
    tf.dispose([x, y, calX, ...(adv ? [adv] : [])]);
  }
}

/**
 * The target as deployed: the model, the model behind its preprocessing (seeded), or the model
 * with its detector (label `base.numClasses` = rejected).
 */
export function deployed(t: Target, seed: number): Classifier {
  if (t.detector) return new DetectingClassifier(t.base, t.detector.detector);
  return t.preprocessors ? new DefendedClassifier(t.base, t.preprocessors, { seed }) : t.base;
}

/** The label a target returns when it abstains (its detector fires), or null. */
export const rejectLabel = (t: Target): number | null => (t.detector ? t.base.numClasses : null);

/** What gradient attacks differentiate: the deployed model, or its BPDA wrapper. */
export function attacker(t: Target, seed: number): Classifier {
  if (t.preprocessors === null) return deployed(t, seed);
  return preprocessAttacker(t.base, t.preprocessors, t.adaptive, seed);
}

/** Frees each loaded model once, and the detectors. */
export function disposeTargets(targets: readonly Target[]): void {
  for (const base of new Set(targets.map((t) => t.base))) base.dispose();
  for (const t of targets) t.detector?.detector.dispose();
}

/** Runs `step`, prefixing a ParryError's message with the config path it concerns. */
async function at<T>(where: string, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (isParryError(e))
      throw new ParryError(e.code, `evaluate: ${where}: ${e.message}`, { cause: e });
    throw e;
  }
}
