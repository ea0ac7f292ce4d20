/**
 * Content hashes of everything an evaluation reads besides its config: the examples, every model
 * (all files of its folder, or the .onnx file and its parry.json), every preprocessing model and
 * the groups file. A resumed run compares them with the interrupted run's, so cells computed from
 * another model under the same path are never mixed into one report.
 */
import { createHash, type Hash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Dataset } from '../data/index.js';
import { parsePreprocessSpec } from '../defenses/preprocess/spec.js';
import type { EvaluateConfig } from './config.js';

const digest = (h: Hash) => h.digest('hex').slice(0, 16);

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => {
      const rel = path.join(prefix, e.name);
      return e.isDirectory() ? filesUnder(dir, rel) : [rel];
    })
    .sort();
}

/** Hash of a file or of every file in a folder (names and bytes); 'missing' if absent. */
export function pathHash(p: string): string {
  if (!existsSync(p)) return 'missing';
  const h = createHash('sha256');
  const add = (file: string, name: string) => {
    h.update(`${name}\0`);
    h.update(readFileSync(file));
  };
  if (statSync(p).isDirectory()) {
    for (const rel of filesUnder(p)) add(path.join(p, rel), rel);
  } else {
    add(p, path.basename(p));
    const sidecar = path.join(path.dirname(p), 'parry.json');
    if (p.endsWith('.onnx') && existsSync(sidecar)) add(sidecar, 'parry.json');
  }
  return digest(h);
}

/** What an evaluation of `config` on `data` reads, each with its content hash. */
export function inputFingerprints(config: EvaluateConfig, data: Dataset): Record<string, string> {
  const h = createHash('sha256');
  h.update(new Uint8Array(data.x.buffer, data.x.byteOffset, data.x.byteLength));
  h.update(new Uint8Array(data.labels.buffer, data.labels.byteOffset, data.labels.byteLength));
  const out: Record<string, string> = { [`dataset ${config.dataset}`]: digest(h) };
  for (const m of config.models) {
    out[`model ${m.path}`] = pathHash(m.path);
    const spec = m.defense?.preprocess;
    for (const step of spec === undefined ? [] : parsePreprocessSpec(spec)) {
      const file = step.params.model;
      if (typeof file === 'string') out[`preprocessing model ${file}`] = pathHash(file);
    }
  }
  if (config.groups?.file) out[`groups file ${config.groups.file}`] = pathHash(config.groups.file);
  return out;
}
