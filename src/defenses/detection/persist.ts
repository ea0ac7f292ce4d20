/**
 * Saving and loading fitted detectors, for `parry detect --save` and the service's detector guard.
 * A saved detector is a folder:
 *
 *   detector.json   format 'parry-detector', version 1: the registry name, its options, its
 *                   settings, the decision threshold and the false-positive rate it was
 *                   calibrated at (with quantiles of the clean calibration scores), the content
 *                   hash of the model it was fitted for (model-hash.ts), its fitted numbers, and
 *                   where each fitted array lies in arrays.bin
 *   arrays.bin      the fitted arrays, raw little-endian float32 / float64 / int32, each at an
 *                   8-byte-aligned offset (absent when there are none)
 *   <model>/        a fitted tfjs LayersModel (MagNet's autoencoder), as model.json + weights
 *
 * Loading validates detector.json strictly (zod; every problem named by its path), refuses
 * another format version and a model whose content hash differs, naming both. Scores of a loaded
 * detector equal the saved one's: arrays come back bit for bit. The false-positive rate holds
 * only for inputs distributed like the clean data the threshold was calibrated on.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkOutputDir, writeFolder } from '../../engine/output-path.js';
import { check, ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { fileHandler, saveLayersModel } from '../../models/io.js';
import { type Detector, FPR_RULE, isValidFpr } from './detector.js';
import {
  isSavable,
  type SavableDetector,
  type StateArray,
  type StateValues,
} from './fitted-state.js';
import { classifierHash } from './model-hash.js';
import type { DetectorName } from './registry.js';
import {
  ARRAYS_FILE,
  DETECTOR_FILE,
  DETECTOR_FORMAT,
  DETECTOR_FORMAT_VERSION,
  parseSavedFile,
  SAVABLE,
  type SavedDetectorFile,
  SCORE_QUANTILE_LEVELS,
  savedDetectorFactory,
} from './saved-format.js';

export {
  ARRAYS_FILE,
  DETECTOR_FILE,
  DETECTOR_FORMAT,
  DETECTOR_FORMAT_VERSION,
  type SavedDetectorFile,
  SCORE_QUANTILE_LEVELS,
} from './saved-format.js';

export interface SaveDetectorOptions {
  /** The false-positive rate the detector's threshold was calibrated at. */
  fpr: number;
  /** The clean scores it was calibrated on: their quantiles are kept (SCORE_QUANTILE_LEVELS). */
  calibrationScores?: ArrayLike<number>;
  /** The registry options it was created with (`{ seed }`). */
  options?: Record<string, unknown>;
  /** What it was fitted on, for the record (data set, example counts, attacks). */
  provenance?: Record<string, unknown>;
}

export interface LoadedDetector {
  /** Fitted and thresholded; the caller owns it (`dispose`). */
  detector: Detector;
  saved: SavedDetectorFile;
}

/** Names of the files a save writes besides model folders. */
const OWN_FILES = new Set([DETECTOR_FILE, ARRAYS_FILE]);

/**
 * Throws 'BAD_OPTION' unless `dir` can take a saved detector: absent, empty, or a saved detector
 * (which a new save replaces). `what` names the option in messages (`--save`).
 */
export function checkDetectorDir(dir: string, what: string): void {
  checkOutputDir(dir, what);
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir);
  if (entries.length === 0) return;
  if (!entries.includes(DETECTOR_FILE) || entries.some((e) => !isOwnEntry(dir, e))) {
    throw new ParryError(
      'BAD_OPTION',
      `${what} ${dir} holds other files: give an empty or new folder, or one a detector was saved to`,
    );
  }
}

const isOwnEntry = (dir: string, e: string) =>
  OWN_FILES.has(e) || (/^[a-z][a-z0-9-]*$/.test(e) && statSync(path.join(dir, e)).isDirectory());

/**
 * Saves a fitted, calibrated `detector` for `model` to the folder `dir` (written whole; a
 * previous saved detector there is replaced). Returns detector.json's content. 'UNSUPPORTED'
 * for a detector that cannot be saved (named), 'BAD_OPTION' for an uncalibrated one.
 */
export async function saveDetector(
  dir: string,
  detector: Detector,
  model: Classifier,
  o: SaveDetectorOptions,
): Promise<SavedDetectorFile> {
  const name = detector.name;
  if (!(SAVABLE as readonly string[]).includes(name) || !isSavable(detector)) {
    throw new ParryError(
      'UNSUPPORTED',
      `saveDetector: detector '${name}' cannot be saved (these can: ${SAVABLE.join(', ')})`,
    );
  }
  check(
    Number.isFinite(detector.threshold),
    () =>
      `saveDetector: ${name} has threshold ${detector.threshold}: calibrate it on clean data first`,
    'BAD_OPTION',
  );
  check(
    isValidFpr(o.fpr),
    () => `saveDetector: fpr must be ${FPR_RULE}, got ${o.fpr}`,
    'BAD_OPTION',
  );
  checkDetectorDir(dir, 'saveDetector:');
  const state = detector.exportState();
  const { entries, bytes } = layOut(state.arrays);
  const scores = Array.from(o.calibrationScores ?? []).filter(Number.isFinite);
  const file: SavedDetectorFile = {
    format: DETECTOR_FORMAT,
    version: DETECTOR_FORMAT_VERSION,
    detector: name as DetectorName,
    options: o.options ?? {},
    config: state.config,
    threshold: detector.threshold,
    calibration: {
      fpr: o.fpr,
      ...(scores.length > 0
        ? {
            scoreQuantiles: {
              levels: SCORE_QUANTILE_LEVELS,
              values: quantiles(scores, SCORE_QUANTILE_LEVELS),
            },
          }
        : {}),
    },
    model: {
      contentHash: classifierHash(model),
      inputShape: [...model.inputShape],
      numClasses: model.numClasses,
      bounds: [model.bounds[0], model.bounds[1]],
    },
    values: state.values,
    arrays: entries,
    models: Object.keys(state.models).sort(),
    ...(o.provenance ? { provenance: o.provenance } : {}),
  };
  // What is written must read back: the same checks as loading.
  const where = `saveDetector: ${dir}`;
  savedDetectorFactory(parseSavedFile(JSON.parse(JSON.stringify(file)), where), where);
  if (existsSync(dir) && readdirSync(dir).length > 0) rmSync(dir, { recursive: true });
  await writeFolder(
    dir,
    async (temporary) => {
      if (bytes.length > 0) await writeFile(path.join(temporary, ARRAYS_FILE), bytes);
      for (const [key, m] of Object.entries(state.models)) {
        await saveLayersModel(m, path.join(temporary, key));
      }
      await writeFile(path.join(temporary, DETECTOR_FILE), `${JSON.stringify(file, null, 2)}\n`);
    },
    [DETECTOR_FILE],
  );
  return file;
}

/**
 * Loads the detector saved in `dir` for `model`, its threshold set. 'BAD_FILE' for a missing,
 * malformed or other-version file; 'BAD_OPTION' when `model` is not the model it was fitted for.
 */
export async function loadDetector(dir: string, model: Classifier): Promise<LoadedDetector> {
  const where = `loadDetector: ${dir}`;
  const jsonPath = path.join(dir, DETECTOR_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ParryError('BAD_FILE', `${where}: cannot read ${DETECTOR_FILE}: ${why}`);
  }
  const saved = parseSavedFile(raw, where);
  const actual = classifierHash(model);
  if (actual !== saved.model.contentHash) {
    throw new ParryError(
      'BAD_OPTION',
      `${where} was fitted for the model with content hash ${saved.model.contentHash}, not this one (content hash ${actual})`,
    );
  }
  const create = savedDetectorFactory(saved, where);
  const arrays = readArrays(dir, saved.arrays, where);
  const models: Record<string, tfl.LayersModel> = {};
  let detector: SavableDetector | undefined;
  try {
    for (const key of saved.models) models[key] = await loadModel(path.join(dir, key), where);
    detector = create();
    detector.restoreState(model, { config: saved.config, values: saved.values, arrays, models });
  } catch (e) {
    detector?.dispose();
    for (const m of Object.values(models)) m.dispose();
    if (e instanceof ParryError && e.code === 'BAD_FILE' && !e.message.startsWith(where)) {
      throw new ParryError('BAD_FILE', `${where}: ${e.message}`);
    }
    throw e;
  }
  detector.threshold = saved.threshold;
  return { detector, saved };
}

const BYTES = { float32: 4, float64: 8, int32: 4 } as const;
const dtypeOf = (v: StateValues) =>
  v instanceof Float64Array ? 'float64' : v instanceof Int32Array ? 'int32' : 'float32';

/** Offsets of `arrays` in one buffer (8-byte aligned, in key order) and the buffer. */
function layOut(arrays: Record<string, StateArray>) {
  const entries: SavedDetectorFile['arrays'] = {};
  let size = 0;
  const keys = Object.keys(arrays).sort();
  for (const key of keys) {
    const a = arrays[key];
    const n = a.shape.reduce((p, d) => p * d, 1);
    check(
      n === a.data.length,
      () => `saveDetector: array '${key}': ${a.data.length} values for [${a.shape}]`,
      'INTERNAL',
    );
    entries[key] = { dtype: dtypeOf(a.data), shape: [...a.shape], offset: size };
    size += Math.ceil(a.data.byteLength / 8) * 8;
  }
  const bytes = new Uint8Array(size);
  for (const key of keys) {
    const d = arrays[key].data;
    bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), entries[key].offset);
  }
  return { entries, bytes };
}

/** The arrays detector.json lists, read from arrays.bin (each a copy). */
function readArrays(
  dir: string,
  entries: SavedDetectorFile['arrays'],
  where: string,
): Record<string, StateArray> {
  const keys = Object.keys(entries);
  if (keys.length === 0) return {};
  const file = path.join(dir, ARRAYS_FILE);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ParryError('BAD_FILE', `${where}: cannot read ${ARRAYS_FILE}: ${why}`);
  }
  const out: Record<string, StateArray> = {};
  for (const key of keys) {
    const { dtype, shape, offset } = entries[key];
    const n = shape.reduce((p, d) => p * d, 1);
    const end = offset + n * BYTES[dtype];
    if (offset % 8 !== 0 || end > buf.length) {
      throw new ParryError(
        'BAD_FILE',
        `${where}: ${ARRAYS_FILE} is ${buf.length} bytes; array '${key}' (${dtype} [${shape.join(', ')}] at ${offset}) does not fit`,
      );
    }
    const bytes = new Uint8Array(buf.subarray(offset, end)).buffer;
    const data =
      dtype === 'float64'
        ? new Float64Array(bytes)
        : dtype === 'int32'
          ? new Int32Array(bytes)
          : new Float32Array(bytes);
    out[key] = { shape, data };
  }
  return out;
}

async function loadModel(dir: string, where: string): Promise<tfl.LayersModel> {
  const artifacts = await fileHandler(dir).load();
  try {
    return await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `${where}: cannot build the model in ${dir}: ${(e as Error).message}`,
    );
  }
}

/**
 * Quantiles of `values` at `levels`, linearly interpolated between order statistics (numpy's
 * default: position (n − 1)·q of the sorted values).
 */
export function quantiles(values: ArrayLike<number>, levels: readonly number[]): number[] {
  const s = Float64Array.from(values).sort();
  check(s.length > 0, () => 'quantiles: no values', 'BAD_INPUT');
  return levels.map((q) => {
    const h = (s.length - 1) * q;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo] + (h - lo) * (s[hi] - s[lo]);
  });
}
