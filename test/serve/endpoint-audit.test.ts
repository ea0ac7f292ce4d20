/**
 * The endpoint audit against parry serve on a loopback port (the bundled MLP, a tiny budget):
 * the plan of shares, the clean accuracy equal to the model's own, every stage within its share
 * and the whole within the budget, Square skipped on a labels-only endpoint, and stages stopped
 * (not failed) when the endpoint's extraction monitor blocks the auditor.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstExamples, loadDataset } from '../../src/data/index.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { renderAuditReport } from '../../src/serve/audit-report.js';
import { planAudit, runAudit } from '../../src/serve/endpoint-audit.js';
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
  it('gives the clean pass n and splits the rest 2 : 2 : 1 : 2.5 : 2.5', () => {
    expect(planAudit(1008, 8, ['square', 'hsj', 'membership', 'knockoff', 'copycat'])).toEqual({
      clean: 8,
      square: 200,
      hsj: 200,
      membership: 100,
      knockoff: 250,
      copycat: 250,
    });
    // Only two stages: 2 : 2.5 of 900.
    expect(planAudit(908, 8, ['square', 'knockoff'])).toMatchObject({
      square: 400,
      knockoff: 500,
      hsj: 0,
    });
    expect(() => planAudit(7, 8, ['square'])).toThrow(
      /budget \(7\) must cover the clean pass over n = 8/,
    );
  });
});

describe('renderAuditReport', () => {
  it('escapes every string from the results and shows stopped stages with their reason', () => {
    const page = renderAuditReport(
      {
        kind: 'endpoint-audit',
        blackBox: true,
        config: {
          n: 2,
          budget: 10,
          eps: 0.1,
          norm: 'linf',
          stages: ['square'],
          seed: 0,
          thiefArch: 'mlp',
          thiefEpochs: 1,
          sigma: 0.1,
        },
        dataset: { name: '<img onerror=x>', n: 2, pool: 'p' },
        clean: { accuracy: 0.5, queries: 2, predictions: [0, 1] },
        stages: [
          {
            stage: 'square',
            seed: 0,
            status: 'stopped',
            share: 8,
            queries: 3,
            seconds: 1,
            note: 'endpoint: 403 extraction_blocked: <script>alert(1)</script>',
            refusal: { status: 403, code: 'extraction_blocked' },
          },
        ],
        queries: 5,
        notes: [],
      },
      { url: 'http://h/"><b>', requests: 2, waitedSeconds: 0 },
    );
    expect(page).not.toMatch(/<script>alert|<img onerror|"><b>/);
    expect(page).toContain('stopped — endpoint: 403 extraction_blocked: &lt;script&gt;');
    expect(page).toContain('<td>3 / 8</td>');
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
      ['knockoff', 'done'],
      ['copycat', 'done'],
    ]);
    for (const s of r.stages) expect(s.queries, s.stage).toBeLessThanOrEqual(s.share);
    expect(r.queries).toBe(target.queries);
    expect(r.queries).toBeLessThanOrEqual(budget);
    const [sq, hsj, mem, knockoff] = r.stages;
    // Attacks only lower accuracy; Square at eps 0.1 in 50-odd queries breaks some of them.
    for (const s of [sq, hsj]) {
      expect(s.metrics!.robustAccuracy as number).toBeLessThanOrEqual(r.clean.accuracy);
    }
    expect(sq.metrics!.robustAccuracy as number).toBeLessThan(r.clean.accuracy);
    expect(mem.metrics).toMatchObject({ signal: 'noise', samples: 12 });
    expect(mem.metrics!.auc as number).toBeGreaterThanOrEqual(0);
    expect(mem.metrics!.auc as number).toBeLessThanOrEqual(1);
    expect(knockoff.metrics).toMatchObject({ budget: 250 * 2 - n, queriesUsed: 250 * 2 - n });
    const page = renderAuditReport(r, {
      url: 'http://127.0.0.1',
      outputs: target.outputs,
      requests: target.requests,
      waitedSeconds: 0,
    });
    expect(page).toContain('Black-box audit');
    expect(page).not.toMatch(/<script|https?:\/\/(?!127)/);
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
