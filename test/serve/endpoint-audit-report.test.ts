/**
 * An audit's results.json and report.html: the audit runs against parry serve in this process
 * (the bundled MLP, a small budget), its results are written in `parry evaluate`'s format and
 * rendered by the evaluate report. Checked: the black-box mark (results.json's `access` and the
 * banner in the report's header), every robust accuracy against a recount of the per-example
 * outcomes written beside it, the membership block's accuracies against the model itself, the
 * stealing row, a guarded endpoint's skipped and stopped stages, and escaping.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dataset, firstExamples, loadDataset } from '../../src/data/index.js';
import { RESULTS_VERSION } from '../../src/evaluate/results.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { renderReport } from '../../src/report/index.js';
import { type AuditedResults, auditResults } from '../../src/serve/audit-report.js';
import { type AuditResults, runAudit } from '../../src/serve/endpoint-audit.js';
import { HttpQueryClassifier } from '../../src/serve/http-classifier.js';
import { createService } from '../../src/serve/server.js';
import { guard, loadMlp } from './helpers.js';

let mlp: TfjsClassifier;
const apps: FastifyInstance[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'parry-audit-report-'));
beforeAll(async () => {
  mlp = await loadMlp();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  mlp.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const n = 12;
const test = firstExamples(loadDataset('fashion-mnist-subset', 'test', { seed: 0 }), n);
const train = loadDataset('fashion-mnist-subset', 'train', { seed: 0 });
const tiny = { thiefArch: 'mlp', thiefEpochs: 1, seed: 3 };

/** An audit of the MLP behind `extra` guards, written to DIR/name as the CLI writes it. */
async function auditTo(name: string, extra: Parameters<typeof guard>[0], budget: number) {
  const app = await createService({ model: mlp, guard: guard(extra) });
  apps.push(app);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const target = await HttpQueryClassifier.connect(url);
  const r = await runAudit(
    target,
    { test, train },
    { n, budget, stages: ['square', 'hsj', 'membership', 'augmentation', 'copycat'], ...tiny },
  );
  const out = path.join(dir, name);
  const results = auditResults(r, test, {
    url,
    outputs: target.outputs,
    guards: target.info.guards,
    classNames: target.info.classNames,
    requests: target.requests,
    waitedSeconds: target.waitedSeconds,
    abstentions: target.abstentions,
  });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(results)}\n`);
  writeFileSync(path.join(out, 'report.html'), renderReport(results));
  return {
    url,
    target,
    audit: r,
    saved: JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as AuditedResults,
    page: readFileSync(path.join(out, 'report.html'), 'utf8'),
  };
}

/** The model's own argmax on `d`'s examples (float32 through tfjs, as the service computes it). */
function ownPredictions(d: Dataset): number[] {
  const x = tf.tensor(d.x, d.shape);
  const p = tf.tidy(() => tf.argMax(mlp.logits(x), 1));
  const out = Array.from(p.dataSync());
  tf.dispose([x, p]);
  return out;
}

/** The text of `<section id=…>` (or of the header) of a page. */
function part(page: string, open: string, close: string): string {
  const start = page.indexOf(open);
  expect(start, open).toBeGreaterThanOrEqual(0);
  return page.slice(start, page.indexOf(close, start));
}

describe('audit results in the evaluate format', () => {
  it('unguarded: marked black-box; every robust accuracy is the recount of its per-example outcomes', async () => {
    const budget = 3012;
    const { url, target, saved, page } = await auditTo('open', {}, budget);
    expect(saved.version).toBe(RESULTS_VERSION);
    expect(saved.access).toMatchObject({
      mode: 'black-box',
      url,
      outputs: 'scores',
      budget,
      adapter: null,
    });
    expect(saved.access.queries).toBe(target.queries);
    expect(saved.access.queries).toBeLessThanOrEqual(budget);
    expect(saved.access.stages.map((s) => [s.stage, s.status])).toEqual([
      ['square', 'done'],
      ['hsj', 'done'],
      ['membership', 'done'],
      ['augmentation', 'done'],
      ['copycat', 'done'],
    ]);
    for (const s of saved.access.stages) expect(s.queries, s.stage).toBeLessThanOrEqual(s.share);

    // One target, the endpoint; its clean predictions are the model's own.
    const labels = saved.dataset.labels;
    expect(labels).toEqual(Array.from(test.labels));
    expect(saved.dataset).toMatchObject({ n, inputShape: [28, 28, 1], groups: null });
    expect(saved.targets).toHaveLength(1);
    const t = saved.targets[0];
    expect(t).toMatchObject({ id: url, engine: 'endpoint', certified: [], honesty: [] });
    const own = ownPredictions(test);
    expect(t.clean.predictions).toEqual(own);
    const cleanCorrect = own.filter((p, i) => p === labels[i]).length;
    expect(t.clean.accuracy).toBe(cleanCorrect / n);

    // Each attack: robust = correct clean and, attacked, still correct (or abstained).
    expect(t.attacks.map((c) => [c.attack, c.norm, c.eps, c.whiteBox])).toEqual([
      ['square', 'linf', 0.1, false],
      ['hsj', 'linf', 0.1, false],
    ]);
    for (const c of t.attacks) {
      let kept = 0;
      let broken = 0;
      for (let i = 0; i < n; i++) {
        const correct = t.clean.predictions[i] === labels[i];
        const holds = c.adversarial[i] === labels[i] || c.adversarial[i] === -1;
        if (correct && holds) kept++;
        if (correct && !holds) broken++;
        expect(c.robust[i], `${c.attack} example ${i}`).toBe(correct && holds ? 1 : 0);
        // Only correctly classified examples are attacked.
        if (!correct) expect(c.adversarial[i]).toBe(t.clean.predictions[i]);
      }
      expect(c.robustAccuracy, c.attack).toBe(kept / n);
      expect(c.attackSuccessRate, c.attack).toBe(broken / cleanCorrect);
      expect(c.queries).toBe(saved.access.stages.find((s) => s.stage === c.attack)!.queries);
    }
    // Square at eps 0.1 breaks some of the MLP's examples within its queries.
    expect(t.attacks[0].robustAccuracy).toBeLessThan(t.clean.accuracy);
    // The worst case: robust only if robust under both attacks.
    expect(t.worstCase).toHaveLength(1);
    const w = t.worstCase[0];
    const both = labels.map((_, i) => t.attacks[0].robust[i] * t.attacks[1].robust[i]);
    expect(w.robust).toEqual(both);
    expect(w.robustAccuracy).toBe(both.filter((v) => v === 1).length / n);
    // Per class, the same recount over the class's examples.
    for (const s of t.fairness.perClass) {
      const members = labels.flatMap((y, i) =>
        saved.dataset.classNames[y] === s.group ? [i] : [],
      );
      const robust = members.filter((i) => both[i] === 1).length / members.length;
      expect(s.robustAccuracy['linf:0.1'], s.group).toBeCloseTo(robust, 12);
    }

    // Membership: the endpoint's accuracy on the assumed members is the model's own.
    const m = saved.privacy!.membership!;
    const members = firstExamples(train, n);
    const ownMembers = ownPredictions(members).filter((p, i) => p === members.labels[i]).length;
    expect(m.target).toMatchObject({
      members: n,
      trainAccuracy: ownMembers / n,
      testAccuracy: cleanCorrect / n,
    });
    expect(m.labelOnly.map((r) => [r.attack, r.candidates, r.references])).toEqual([
      ['label-only-noise', 2 * n, 0],
      ['label-only-augmentation', 2 * n, 0],
    ]);
    expect(m.config.models).toMatchObject({ referenceModels: 0, epochs: 0 });
    // Stealing: one row, the endpoint as the victim, within the stage's share.
    const steal = saved.privacy!.stealing;
    expect(steal).toHaveLength(1);
    expect(steal[0]).toMatchObject({ model: url, method: 'copycat', output: 'scores' });
    const copycat = saved.access.stages.find((s) => s.stage === 'copycat')!;
    expect(steal[0].curve[0].queriesUsed).toBe(copycat.share - n);

    // The report: the black-box banner in the header, the numbers as results.json gives them.
    const header = part(page, '<header>', '</header>');
    expect(header).toContain('<div class="banner neutral" id="black-box"');
    expect(header).toContain('<strong>Black-box audit</strong>');
    expect(header).toContain(
      `${saved.access.queries.toLocaleString('en-US')} of a budget of 3,012 queries`,
    );
    expect(page).toContain(`<title>parry audit — ${url}</title>`);
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    const headline = part(page, '<section id="headline">', '</section>');
    expect(headline).toContain(`>${pct(w.robustAccuracy)}</td>`);
    const attacks = part(page, '<section id="attacks">', '</section>');
    for (const c of t.attacks) {
      expect(attacks).toMatch(
        new RegExp(
          `<td>${c.attack}</td>.*?<td class="num">${pct(c.robustAccuracy).replace('.', '\\.')}</td>`,
        ),
      );
    }
    const privacy = part(page, '<section id="privacy">', '</section>');
    expect(privacy).toContain('label-only-noise');
    expect(privacy).toContain('label-only-augmentation');
    expect(privacy).toContain('Assumed members: the first 12 examples');
    expect(privacy).toContain(`<td class="num">${pct(steal[0].curve[0].agreement)}</td>`);
  });

  it('behind labels-only output and a blocking PRADA monitor: skipped and stopped stages in the mark', async () => {
    const { saved, page } = await auditTo(
      'guarded',
      {
        guards: {
          output: 'labels-only',
          extractionMonitor: { method: 'prada', minQueries: 20, onAlarm: 'block' },
        },
      },
      1512,
    );
    expect(saved.access.outputs).toBe('labels');
    expect(saved.targets[0].defense).toBe('output:labels-only, prada (block)');
    const square = saved.access.stages.find((s) => s.stage === 'square')!;
    expect(square).toMatchObject({ status: 'skipped', queries: 0 });
    expect(square.note).toMatch(/labels only/);
    // HopSkipJump's queries circle twelve images: the monitor blocks the key, and every later
    // stage is refused at once.
    const hsj = saved.access.stages.find((s) => s.stage === 'hsj')!;
    expect(hsj).toMatchObject({
      status: 'stopped',
      refusal: { status: 403, code: 'extraction_blocked' },
    });
    expect(saved.targets[0].attacks).toEqual([]);
    expect(saved.targets[0].worstCase).toEqual([]);
    for (const s of saved.access.stages.slice(2)) expect(s.status, s.stage).toBe('stopped');
    expect(saved.privacy).toBeUndefined();
    const header = part(page, '<header>', '</header>');
    expect(header).toContain('the endpoint answers labels only');
    expect(header).toContain('output:labels-only, prada (block)');
    expect(header).toMatch(
      /<li>Stopped: hsj after \d+ queries, membership after 0 queries, augmentation after 0 queries, copycat after 0 queries — endpoint .*403 extraction_blocked/,
    );
    expect(part(page, '<section id="attacks">', '</section>')).toContain(
      '<p class="empty">No attack ran to the end.</p>',
    );
  });

  it('escapes every string from the results', () => {
    const hostile = '<img src=x onerror=alert(1)>';
    const r: AuditResults = {
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
      dataset: { name: hostile, n: 2, pool: hostile },
      clean: { accuracy: 0.5, queries: 2, predictions: [0, 1], confidences: [1, 1], seconds: 0 },
      stages: [
        {
          stage: 'square',
          seed: 0,
          status: 'stopped',
          share: 8,
          queries: 3,
          seconds: 1,
          note: 'endpoint: 403 extraction_blocked: <script>alert(1)</script>',
          refusal: { status: 403, code: '<b>code</b>' },
        },
      ],
      queries: 5,
      notes: [hostile],
      started: '2025-01-01T00:00:00.000Z',
      finished: '2025-01-01T00:00:01.000Z',
    };
    const data = { ...firstExamples(test, 2), name: hostile, classNames: [hostile, 'b'] };
    const page = renderReport(
      auditResults(r, data, {
        url: 'http://h/"><b>',
        guards: { applied: [hostile] },
        requests: 2,
        waitedSeconds: 0,
        abstentions: 0,
      }),
    );
    expect(page).not.toMatch(/<img src=x|<script>alert|"><b>|<b>code/);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('<td class="num">3 / 8</td>');
  });
});
