/**
 * The detector guard: a Mahalanobis detector fitted here on the bundled MLP and saved; the
 * service loaded with it answers as the library detector (fitted in this test, not the loaded
 * copy) decides on the same inputs: flagged exactly where its score exceeds its threshold, the
 * score shown under 'flag', the answer withheld under 'abstain', the model's own softmax
 * elsewhere. Scores and flags reach /metrics, verdicts the audit log. A detector fitted for
 * another model refuses to start (library and CLI, one line naming both content hashes).
 * guard.yaml's detector section: defaults, relative paths, errors by path.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, sliceDataset } from '../../src/data/index.js';
import {
  classifierHash,
  MahalanobisDetector,
  saveDetector,
} from '../../src/defenses/detection/index.js';
import { Rng } from '../../src/engine/rng.js';
import { ParryError } from '../../src/errors.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';
import { parseGuardConfig } from '../../src/serve/guard-config.js';
import { createService } from '../../src/serve/server.js';
import { expectBadInput, parry } from '../cli/helpers.js';
import { tempDir } from '../models/tmp.js';
import { guard, loadMlp, nested, referenceProbabilities, testImages } from './helpers.js';

const tmp = await tempDir('serve-detector');
let mlp: TfjsClassifier;
let detector: MahalanobisDetector;
let dir: string;

/** 6 test images and 4 uniform-noise images (off the data: the detector should flag them). */
const images = testImages(6);
const rows = 10;
const x = new Float32Array(rows * images.size);
x.set(images.x.subarray(0, 6 * images.size));
const rng = new Rng(21);
for (let i = 6 * images.size; i < x.length; i++) x[i] = rng.next();
const inputs = Array.from({ length: rows }, (_, i) => nested(x, i));

/** The library detector's scores and decisions on the 10 inputs. */
let expected: { scores: Float32Array; flagged: boolean[] };

beforeAll(async () => {
  mlp = await loadMlp();
  const train = loadDataset('fashion-mnist-subset', 'train', { seed: 0 });
  const fit = sliceDataset(train, 0, 300);
  const cal = sliceDataset(train, 300, 500);
  const fx = tf.tensor(fit.x, fit.shape);
  const fy = tf.tensor1d(fit.labels, 'int32');
  const cx = tf.tensor(cal.x, cal.shape);
  detector = new MahalanobisDetector();
  await detector.fit(mlp, fx, fy);
  detector.calibrate(cx, 0.1);
  dir = tmp.next();
  await saveDetector(dir, detector, mlp, { fpr: 0.1, calibrationScores: detector.score(cx) });
  tf.dispose([fx, fy, cx]);
  const t = tf.tensor(x, [rows, 28, 28, 1]);
  const scores = detector.score(t);
  t.dispose();
  expected = { scores, flagged: Array.from(scores, (s) => s > detector.threshold) };
});
afterAll(async () => {
  detector.dispose();
  mlp.dispose();
  await tmp.cleanup();
});

const predict = { method: 'POST' as const, url: '/v1/predict', payload: { inputs } };

interface Answer {
  label: number | null;
  probabilities?: number[];
  abstained?: boolean;
  flagged?: boolean;
  detectorScore?: number;
}

describe('the detector guard in the predict path', () => {
  it('the inputs exercise both outcomes', () => {
    expect(expected.flagged.slice(6)).toEqual([true, true, true, true]);
    expect(expected.flagged.filter((f) => !f).length).toBeGreaterThanOrEqual(4);
  });

  it("action 'flag': every answer, flagged as the library decides, with its score", async () => {
    const auditPath = path.join(tmp.root, 'flag.log');
    const app = await createService({
      model: mlp,
      guard: guard({
        guards: { detector: { path: dir, action: 'flag' } },
        audit: { path: auditPath },
      }),
      page: false,
    });
    const res = await app.inject(predict);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { predictions: Answer[]; guards: Record<string, string> };
    const ref = referenceProbabilities(mlp, x, rows);
    body.predictions.forEach((p, i) => {
      expect(p.flagged, `row ${i}`).toBe(expected.flagged[i]);
      const want = expected.scores[i];
      expect(Math.abs(p.detectorScore! - want)).toBeLessThanOrEqual(1e-5 * Math.abs(want));
      expect(p.label).toBe(ref[i].indexOf(Math.max(...ref[i])));
      expect(p.abstained).toBeUndefined();
    });
    expect(body.guards.detector).toBe('flagged');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const flagged = expected.flagged.filter(Boolean).length;
    expect(metrics).toContain(`parry_detector_score_count{detector="mahalanobis"} ${rows}`);
    expect(metrics).toContain(
      `parry_detector_flagged_total{detector="mahalanobis",action="flag"} ${flagged}`,
    );
    // The threshold is a bucket edge: the examples at or below it are the unflagged ones.
    expect(metrics).toContain(
      `parry_detector_score_bucket{le="${detector.threshold}",detector="mahalanobis"} ${rows - flagged}`,
    );
    const model = (await app.inject({ method: 'GET', url: '/v1/model' })).json();
    expect(model.guards.applied).toContain('detector');
    await app.close();
    const line = JSON.parse(readFileSync(auditPath, 'utf8').trim().split('\n')[0]);
    expect(line.guards.detector).toBe('flagged');
  });

  it("action 'abstain': flagged answers withheld without score, the rest answered", async () => {
    const auditPath = path.join(tmp.root, 'abstain.log');
    const app = await createService({
      model: mlp,
      guard: guard({ guards: { detector: { path: dir } }, audit: { path: auditPath } }),
      page: false,
    });
    const res = await app.inject(predict);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { predictions: Answer[]; guards: Record<string, string> };
    const ref = referenceProbabilities(mlp, x, rows);
    body.predictions.forEach((p, i) => {
      expect(p.detectorScore).toBeUndefined();
      if (expected.flagged[i]) {
        expect(p).toEqual({ label: null, abstained: true, flagged: true });
      } else {
        expect(p.flagged).toBe(false);
        expect(p.label).toBe(ref[i].indexOf(Math.max(...ref[i])));
        p.probabilities!.forEach((v, c) => {
          expect(v).toBeCloseTo(ref[i][c], 6);
        });
      }
    });
    expect(body.guards.detector).toBe('abstained');
    // Scoring leaks nothing: the tensor count is flat over repeated requests.
    const before = tf.memory().numTensors;
    for (let k = 0; k < 3; k++) expect((await app.inject(predict)).statusCode).toBe(200);
    expect(tf.memory().numTensors).toBe(before);
    // One clean image alone passes.
    const clean = expected.flagged.indexOf(false);
    const one = await app.inject({ ...predict, payload: { inputs: [inputs[clean]] } });
    expect(one.json().guards.detector).toBe('pass');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('parry_smoothing_abstentions_total 0');
    await app.close();
    const lines = readFileSync(auditPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0].predictions).toEqual(
      expected.flagged.map((f, i) => (f ? null : body.predictions[i].label)),
    );
    expect(lines.map((l) => l.guards.detector)).toEqual([
      'abstained',
      'abstained',
      'abstained',
      'abstained',
      'pass',
    ]);
  });
});

describe('a detector fitted for another model', () => {
  it('refuses to start, naming both content hashes (library)', async () => {
    const other = await loadClassifier('models/fmnist-mlp-ibp');
    try {
      const started = createService({
        model: other,
        guard: guard({ guards: { detector: { path: dir } } }),
        page: false,
      });
      await expect(started).rejects.toBeInstanceOf(ParryError);
      const e = (await started.catch((err) => err)) as ParryError;
      expect(e.code).toBe('BAD_OPTION');
      expect(e.message).not.toContain('\n');
      expect(e.message).toMatch(/^guard: guards\.detector: loadDetector: .* was fitted for/);
      expect(e.message).toContain(classifierHash(mlp));
      expect(e.message).toContain(classifierHash(other));
    } finally {
      other.dispose();
    }
  });

  it('parry serve exits 2 with one line (CLI; npm run build first)', () => {
    const file = path.join(tmp.root, 'guard.yaml');
    writeFileSync(file, `guards:\n  detector: { path: ${path.relative(tmp.root, dir)} }\n`);
    const r = parry('serve', '--model', 'models/fmnist-mlp-ibp', '--guard', file, '--port', '0');
    expectBadInput(
      r,
      /guards\.detector: .* was fitted for the model with content hash [0-9a-f]{64}, not this one/,
    );
  });
});

describe('guard.yaml: guards.detector', () => {
  it('defaults to abstain and resolves the path against the guard file', () => {
    const base = path.join(tmp.root, 'conf');
    mkdirSync(base, { recursive: true });
    const c = parseGuardConfig({ guards: { detector: { path: 'det' } } }, base);
    expect(c.guards.detector).toEqual({ path: path.join(base, 'det'), action: 'abstain' });
  });

  it('names each problem by its path', () => {
    const refused = (raw: unknown) => {
      try {
        parseGuardConfig(raw, '/base', 'g.yaml');
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(refused({ guards: { detector: { path: 'd', action: 'drop' } } })).toBe(
      `guard: g.yaml: guards.detector.action: expected 'abstain' or 'flag', got "drop"`,
    );
    expect(refused({ guards: { detector: { name: 'mahalanobis' } } })).toBe(
      'guard: g.yaml: guards.detector.path: expected the folder parry detect --save wrote, got nothing; guards.detector.name: unknown key',
    );
  });
});
