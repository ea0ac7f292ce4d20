/**
 * File-system model I/O without tfjs-node: `tf.loadLayersModel('file://…')` needs tfjs-node's
 * router, so parry reads and writes the tfjs layout itself — `model.json` (topology, weights
 * manifest, metadata) next to its binary weight shards. Works for LayersModel and GraphModel.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../errors.js';
import type { ParryMetadata } from './metadata.js';
import { quantizeFloat16, weightSpecProblem, weightsByteLength } from './weights.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_FILE = 'group1-shard1of1.bin';

type UserMetadata = NonNullable<tf.io.ModelArtifacts['userDefinedMetadata']>;

/** An IOHandler that has both halves. */
export type FileHandler = tf.io.IOHandler & { load: tf.io.LoadHandler; save: tf.io.SaveHandler };

function badFile(message: string, cause?: unknown): ParryError {
  return new ParryError('BAD_FILE', `fileHandler: ${message}`, { cause });
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function readModelJson(dir: string): Promise<Record<string, unknown>> {
  const dirStat = await stat(dir).catch((e: unknown) => {
    const code = errnoCode(e);
    if (code === 'ENOENT') return null;
    const why: Record<string, string> = {
      ELOOP: 'is a symbolic link loop',
      ENOTDIR: 'has a file where a folder should be',
      EACCES: 'cannot be read (permission denied)',
    };
    throw badFile(`model directory ${dir} ${why[code ?? ''] ?? `cannot be read (${code})`}`, e);
  });
  if (dirStat === null) throw badFile(`model directory ${dir} does not exist`);
  if (!dirStat.isDirectory()) throw badFile(`${dir} is not a directory`);
  const jsonPath = path.join(dir, MODEL_JSON);
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw badFile(`${jsonPath} not found`, e);
    throw badFile(`cannot read ${jsonPath}: ${(e as Error).message}`, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw badFile(`${jsonPath} is not valid JSON (${(e as Error).message})`, e);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw badFile(`${jsonPath} does not hold a JSON object`);
  }
  const obj = json as Record<string, unknown>;
  if (obj.modelTopology === null || typeof obj.modelTopology !== 'object') {
    throw badFile(`${jsonPath} has no modelTopology`);
  }
  return obj;
}

/** A shard path from the manifest, resolved inside `dir` (a manifest may not point outside). */
function shardPath(dir: string, jsonPath: string, p: unknown): string {
  const root = path.resolve(dir);
  const full = typeof p === 'string' ? path.resolve(root, p) : '';
  if (!full.startsWith(root + path.sep)) {
    throw badFile(`${jsonPath} lists weight path ${JSON.stringify(p)} outside ${dir}`);
  }
  return full;
}

async function readShard(file: string, jsonPath: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw badFile(`weight shard ${file} (listed in ${jsonPath}) not found`, e);
    }
    throw badFile(`cannot read weight shard ${file}: ${(e as Error).message}`, e);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Reads every group of the manifest, checking each group's bytes against its specs. */
async function readWeights(
  dir: string,
  jsonPath: string,
  manifest: unknown,
): Promise<{ specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer }> {
  if (!Array.isArray(manifest)) throw badFile(`${jsonPath} has no weightsManifest list`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const groups: Uint8Array[] = [];
  for (const [g, group] of manifest.entries()) {
    const { paths, weights } = (group ?? {}) as { paths?: unknown; weights?: unknown };
    if (!Array.isArray(weights)) throw badFile(`${jsonPath} weightsManifest[${g}] has no weights`);
    if (!Array.isArray(paths)) throw badFile(`${jsonPath} weightsManifest[${g}] has no paths`);
    for (const w of weights) {
      const problem = weightSpecProblem(w);
      if (problem !== null) throw badFile(`${jsonPath}: ${problem}`);
    }
    const files = paths.map((p) => shardPath(dir, jsonPath, p));
    const data = concat(await Promise.all(files.map((f) => readShard(f, jsonPath))));
    const expected = weightsByteLength(weights, data);
    if (expected !== data.byteLength) {
      throw badFile(
        `${files.join(', ')} ${files.length === 1 ? 'holds' : 'hold'} ${data.byteLength} bytes ` +
          `but the weight specs in ${jsonPath} require ${expected}`,
      );
    }
    specs.push(...weights);
    groups.push(data);
  }
  const all = concat(groups);
  return { specs, data: all.buffer as ArrayBuffer };
}

/** The JSON-serialisable fields of artifacts, as written to `model.json`. */
function modelJsonFor(artifacts: tf.io.ModelArtifacts, weightsManifest: unknown): object {
  const optional = [
    'trainingConfig',
    'signature',
    'userDefinedMetadata',
    'modelInitializer',
    'initializerSignature',
  ] as const;
  const json: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
  };
  for (const key of optional) if (artifacts[key] != null) json[key] = artifacts[key];
  json.weightsManifest = weightsManifest;
  return json;
}

/**
 * An IOHandler on directory `dir`. `load()` reads `dir/model.json` and its shards and checks
 * their sizes against the weight specs (ParryError 'BAD_FILE' naming the file otherwise);
 * `save()` writes `model.json` and one shard `group1-shard1of1.bin`, creating `dir`.
 */
export function fileHandler(dir: string): FileHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = await readModelJson(dir);
      const jsonPath = path.join(dir, MODEL_JSON);
      if (json.weightsManifest == null) throw badFile(`${jsonPath} has no weightsManifest`);
      const { specs, data } = await readWeights(dir, jsonPath, json.weightsManifest);
      return tf.io.getModelArtifactsForJSONSync(json as unknown as tf.io.ModelJSON, specs, data);
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ParryError('UNSUPPORTED', `fileHandler: cannot save a binary topology to ${dir}`);
      }
      const data =
        artifacts.weightData == null
          ? new ArrayBuffer(0)
          : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const manifest = [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }];
      const jsonPath = path.join(dir, MODEL_JSON);
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(path.join(dir, WEIGHTS_FILE), new Uint8Array(data));
        await writeFile(jsonPath, JSON.stringify(modelJsonFor(artifacts, manifest)));
      } catch (e) {
        throw badFile(`cannot write ${jsonPath}: ${(e as Error).message}`, e);
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

export interface SaveOptions {
  /** Store float32 weights as IEEE half (tfjs `quantization: {dtype: 'float16'}`). */
  float16?: boolean;
  /**
   * parry's metadata (bounds, mean, std, classNames, ... and any extra keys), written under
   * `userDefinedMetadata.parry` over the model's own entry; undefined values are skipped.
   */
  metadata?: ParryMetadata & Record<string, unknown>;
}

/** The model's user-defined metadata with `parry` entries merged key by key. */
function mergeMetadata(
  own: UserMetadata | undefined,
  parry: Record<string, unknown> | undefined,
): UserMetadata | undefined {
  if (parry == null) return own;
  const defined = Object.fromEntries(Object.entries(parry).filter(([, v]) => v !== undefined));
  return { ...own, parry: { ...(own?.parry ?? {}), ...defined } };
}

/**
 * Saves a LayersModel to `dir` (model.json + one shard), optionally with float16 weights and
 * extra user-defined metadata. The model itself is not modified.
 */
export async function saveLayersModel(
  model: tfl.LayersModel,
  dir: string,
  opts: SaveOptions = {},
): Promise<tf.io.SaveResult> {
  const files = fileHandler(dir);
  return model.save({
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const out = { ...artifacts };
      const metadata = mergeMetadata(artifacts.userDefinedMetadata, opts.metadata);
      if (metadata != null) out.userDefinedMetadata = metadata;
      if (opts.float16 && out.weightSpecs != null && out.weightData != null) {
        const data = tf.io.CompositeArrayBuffer.join(out.weightData);
        const q = quantizeFloat16(out.weightSpecs, data);
        out.weightSpecs = q.specs;
        out.weightData = q.data;
      }
      return files.save(out);
    },
  });
}
