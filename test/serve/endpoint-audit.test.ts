/**
 * The endpoint audit against parry serve on a loopback port (the bundled MLP, a tiny budget):
 * the plan of shares, the clean accuracy equal to the model's own, every stage within its share
 * and the whole within the budget, Square skipped on a labels-only endpoint, and stages stopped
 * (not failed) when the endpoint's extraction monitor blocks the auditor. The results.json and
 * report it gives: endpoint-audit-report.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstExamples, loadDataset } from '../../src/data/index.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { labelsOfRows } from '../../src/serve/audit-stages.js';
import { type AuditTarget, planAudit, runAudit } from '../../src/serve/endpoint-audit.js';
import { HttpQueryClassifier } from '../../src/serve/http-classifier.js';
import { createService } from '../../src/serve/server.js';
import { guard, loadMlp } from './helpers.js';

let mlp: TfjsClassifier;
const apps: FastifyInstance[] = [];
beforeAll(async () => {
  mlp = await loadMlp();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  mlp.dispose();
});

async function endpoint(extra: Parameters<typeof guard>[0] = {}) {
  const app = await createService({ model: mlp, guard: guard(extra) });
  apps.push(app);
  return HttpQueryClassifier.connect(await app.listen({ port: 0, host: '127.0.0.1' }));
}

const n = 8;
const test = firstExamples(loadDataset('fashion-mnist-subset', 'test', { seed: 0 }), n);
const train = loadDataset('fashion-mnist-subset', 'train', { seed: 0 });
const tiny = { thiefArch: 'mlp', thiefEpochs: 1, seed: 2 };

describe('planAudit', () => {
  it('gives the clean pass n and splits the rest by weight among the chosen stages', () => {
    expect(planAudit(1008, 8, ['square', 'hsj', 'membership', 'knockoff', 'copycat'])).toEqual({
      clean: 8,
      square: 200,
      hsj: 200,
      membership: 100,
      knockoff: 250,
      copycat: 250,
      augmentation: 0,
      jacobian: 0,
    });
    // Only two stages: 2 : 2.5 of 900.
    expect(planAudit(908, 8, ['square', 'knockoff'])).toMatchObject({
      square: 400,
      knockoff: 500,
      hsj: 0,
    });
    // Every stage (the default): 2 : 2 : 1 : 1 : 2.5 : 2.5 : 2.5 of 1350.
    expect(
      planAudit(1358, 8, [
        'square',
        'hsj',
        'membership',
        'augmentation',
        'knockoff',
        'copycat',
        'jacobian',
      ]),
    ).toEqual({
      clean: 8,
      square: 200,
      hsj: 200,
      membership: 100,
      augmentation: 100,
      knockoff: 250,
      copycat: 250,
      jacobian: 250,
    });
    expect(() => planAudit(7, 8, ['square'])).toThrow(
      /budget \(7\) must cover the clean pass over n = 8/,
    );
  });
});

describe('labelsOfRows', () => {
  it('reads the top class, -1 for the uniform row of an abstention, and the top score', async () => {
    // Answers by the first value of each [1, 1, 1] example: 0 → scores, 1 → one-hot label 2,
    // 2 → the uniform row an HttpQueryClassifier gives for an abstention.
    const rows: Record<number, number[]> = {
      0: [0.1, 0.7, 0.2],
      1: [0, 0, 1],
      2: [1 / 3, 1 / 3, 1 / 3],
    };
    const target: AuditTarget = {
      inputShape: [1, 1, 1],
      numClasses: 3,
      bounds: [0, 2],
      queries: 0,
      limit: Number.POSITIVE_INFINITY,
      predict: async (x) => {
        const v = await x.data();
        return tf.tensor2d(Array.from(v, (e) => rows[e]));
      },
    };
    const before = tf.memory().numTensors;
    const confidence = new Float32Array(5);
    const labels = await labelsOfRows(target, Float32Array.from([2, 0, 1, 0, 2]), 5, confidence);
    expect(Array.from(labels)).toEqual([-1, 1, 2, 1, -1]);
    expect(Array.from(confidence)).toEqual([1 / 3, 0.7, 1, 0.7, 1 / 3].map((v) => Math.fround(v)));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('runAudit against parry serve', () => {
  it('every stage within its share, the whole within the budget; clean accuracy as the model’s', async () => {
    const target = await endpoint();
    const budget = 2008;
    const r = await runAudit(target, { test, train }, { n, budget, ...tiny });
    expect(r.blackBox).toBe(true);
    // The model's own accuracy on the same examples, computed here.
    const x = tf.tensor(test.x, [n, 28, 28, 1]);
    const pred = tf.tidy(() => tf.argMax(mlp.logits(x), 1));
    const own = Array.from(pred.dataSync());
    tf.dispose([x, pred]);
    expect(r.clean.predictions).toEqual(own);
    expect(r.clean.accuracy).toBe(own.filter((p, i) => p === test.labels[i]).length / n);
    expect(r.clean.queries).toBe(n);
    expect(r.stages.map((s) => [s.stage, s.status])).toEqual([
      ['square', 'done'],
      ['hsj', 'done'],
      ['membership', 'done'],
      ['augmentation', 'done'],
      ['knockoff', 'done'],
      ['copycat', 'done'],
      ['jacobian', 'done'],
    ]);
    for (const s of r.stages) expect(s.queries, s.stage).toBeLessThanOrEqual(s.share);
    expect(r.queries).toBe(target.queries);
    expect(r.queries).toBeLessThanOrEqual(budget);
    const [sq, hsj, mem, aug, knockoff, , jacobian] = r.stages;
    // Attacks only lower accuracy; Square at eps 0.1 in 50-odd queries breaks some of them.
    for (const s of [sq, hsj]) {
      expect(s.metrics!.robustAccuracy as number).toBeLessThanOrEqual(r.clean.accuracy);
    }
    expect(sq.metrics!.robustAccuracy as number).toBeLessThan(r.clean.accuracy);
    // Shares of the 2000 queries after the clean pass, by weight out of 13.5: membership and
    // augmentation 148 each, a stealing stage 370. Membership: 8 clean labels of the assumed
    // members, then (148 − 8) / 16 = 8 noisy copies per candidate; augmentation: too few for the
    // 18 flip-shift copies, so the 2 flip copies.
    expect(mem).toMatchObject({ share: 148, metrics: { signal: 'noise', samples: 8 } });
    expect(aug).toMatchObject({ share: 148, metrics: { signal: 'augmentation', queries: 'flip' } });
    for (const s of [mem, aug]) {
      expect(s.labelOnly!.candidates).toBe(2 * n);
      expect(s.metrics!.auc as number).toBeGreaterThanOrEqual(0);
      expect(s.metrics!.auc as number).toBeLessThanOrEqual(1);
    }
    // The assumed members' clean labels, read by the first membership stage, against the model.
    const members = firstExamples(train, n);
    const xm = tf.tensor(members.x, [n, 28, 28, 1]);
    const pm = tf.tidy(() => tf.argMax(mlp.logits(xm), 1));
    const ownMembers = Array.from(pm.dataSync()).filter((p, i) => p === members.labels[i]).length;
    tf.dispose([xm, pm]);
    expect(mem.memberAccuracy).toBe(ownMembers / n);
    expect(knockoff.metrics).toMatchObject({ budget: 370 - n, queriesUsed: 370 - n });
    expect(jacobian.stealing).toMatchObject({
      method: 'jacobian',
      budget: 370 - n,
      targets: 'hard',
    });
    expect(jacobian.stealing!.queriesUsed).toBe(370 - n);
  });

  it('a labels-only endpoint: Square is skipped, HopSkipJump runs', async () => {
    const target = await endpoint({ guards: { output: 'labels-only' } });
    const before = tf.memory().numTensors;
    const r = await runAudit(
      target,
      { test, train },
      { n, budget: 808, stages: ['square', 'hsj', 'membership'], ...tiny },
    );
    expect(r.stages[0]).toMatchObject({ stage: 'square', status: 'skipped', queries: 0 });
    expect(r.stages[0].note).toMatch(/labels only/);
    expect(r.stages[1].status).toBe('done');
    expect(r.stages[2].status).toBe('done');
    // The audit (and the service answering it in this process) leaves no tensor behind.
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an endpoint that blocks the auditor: the stages stop with the refusal, the audit ends', async () => {
    const target = await endpoint({
      guards: { extractionMonitor: { method: 'prada', minQueries: 20, onAlarm: 'block' } },
    });
    const r = await runAudit(
      target,
      { test, train },
      { n, budget: 1008, stages: ['square', 'knockoff'], ...tiny },
    );
    // Square's queries are small perturbations of eight images: PRADA's W collapses.
    expect(r.stages[0]).toMatchObject({
      status: 'stopped',
      refusal: { status: 403, code: 'extraction_blocked' },
    });
    expect(r.stages[1]).toMatchObject({ status: 'stopped', refusal: { status: 403 } });
  });
});
