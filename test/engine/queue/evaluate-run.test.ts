/**
 * `runEvaluation` over a job queue, with a stand-in executor that records what it is asked (and
 * runs it on a thread pool; `npm run build` first): every attack job is submitted up front with
 * exactly the content the attack stage later asks for, labelled with its cell; a cell whose job
 * always throws is left out with a note while every other cell is reported, and a resumed run
 * computes only that cell.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/engine/paths.js';
import {
  type Executor,
  type MapOptions,
  type RunOptions,
  ThreadPool,
} from '../../../src/engine/pool.js';
import { canonicalJson, encodeValue, sha256 } from '../../../src/engine/queue/codec.js';
import { JobFailedError } from '../../../src/engine/queue/executor.js';
import { jobLabel } from '../../../src/engine/queue/label.js';
import type { InputOf, OutputOf, TaskSpec } from '../../../src/engine/tasks.js';
import { parseEvaluateConfig } from '../../../src/evaluate/config.js';
import { runEvaluation } from '../../../src/evaluate/run.js';

const model = path.join(packageRoot(), 'models', 'fmnist-mlp');
const DEFENDED = 'fmnist-mlp + squeeze-bits:bits=4';

/** Runs jobs on a pool; counts each content asked for and the labels; fails some on request. */
class Recorder implements Executor {
  readonly size: number;
  readonly asked = new Map<string, number>();
  readonly labels = new Set<string>();

  constructor(
    private readonly inner: ThreadPool,
    private readonly failing: (label: string) => boolean = () => false,
  ) {
    this.size = inner.size;
  }

  ready() {
    return this.inner.ready();
  }

  async run<T extends TaskSpec>(task: T, input: InputOf<T>, options?: RunOptions) {
    this.record([input]);
    return this.inner.run(task, input, options);
  }

  async map<T extends TaskSpec>(
    task: T,
    inputs: readonly InputOf<T>[],
    options?: MapOptions<InputOf<T>>,
  ): Promise<OutputOf<T>[]> {
    const label = this.record(inputs);
    if (this.failing(label)) {
      // As the queue reports a job that threw on each of its 3 attempts: the last of the cell's.
      const part = { index: inputs.length - 1, total: inputs.length };
      const job = `${label} · job ${inputs.length}/${inputs.length}`;
      throw new JobFailedError('f'.repeat(64), job, 3, 'boom', part);
    }
    return this.inner.map(task, inputs, options);
  }

  close() {
    return this.inner.close();
  }

  private record(inputs: readonly unknown[]): string {
    const label = jobLabel() ?? '(none)';
    this.labels.add(label);
    for (const input of inputs) {
      const key = sha256(canonicalJson(encodeValue(input)));
      this.asked.set(key, (this.asked.get(key) ?? 0) + 1);
    }
    return label;
  }
}

const config = () =>
  parseEvaluateConfig(
    {
      n: 6,
      batchSize: 3,
      seed: 4,
      models: [{ path: model }, { path: model, defense: { preprocess: 'squeeze-bits:bits=4' } }],
      attacks: [{ attack: 'fgsm' }, { attack: 'pgd', params: { steps: 2 } }],
      eps: { linf: [0.05, 0.1] },
      gallery: { examples: 1 },
      honesty: { enabled: false },
    },
    packageRoot(),
  );

let dir: string;
let pool: ThreadPool;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parry-queue-run-'));
  pool = new ThreadPool({ workers: 1 });
  await pool.ready();
});
afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('runEvaluation with a queue', () => {
  it('submits every attack job up front, as the attack stage then asks for it, labelled by cell', async () => {
    const queue = new Recorder(pool);
    await runEvaluation(config(), { outDir: path.join(dir, 'all'), queue });
    // Each batch content asked twice: once up front, once by its cell (2 targets × 2 attacks ×
    // 2 eps × 2 batches).
    expect([...queue.asked.values()]).toEqual(Array(16).fill(2));
    const cells = [];
    for (const t of ['fmnist-mlp', DEFENDED]) {
      for (const a of ['fgsm', 'pgd'])
        for (const eps of [0.05, 0.1]) cells.push(`${t}: ${a} linf ${eps}`);
    }
    expect([...queue.labels].sort()).toEqual(cells.sort());
  });

  it('leaves out only the cell whose job failed, with a note, and resumes only that cell', async () => {
    const failing = `${DEFENDED}: fgsm linf 0.05`;
    const queue = new Recorder(pool, (label) => label === failing);
    const outDir = path.join(dir, 'failed');
    const results = await runEvaluation(config(), { outDir, queue });
    // Both targets are reported; the defended one without the failed cell.
    expect(results.targets.map((t) => t.id)).toEqual(['fmnist-mlp', DEFENDED]);
    const [plain, defended] = results.targets;
    const cells = (t: typeof plain) => t.attacks.map((c) => `${c.attack} ${c.norm} ${c.eps}`);
    expect(cells(plain)).toEqual([
      'fgsm linf 0.05',
      'fgsm linf 0.1',
      'pgd linf 0.05',
      'pgd linf 0.1',
    ]);
    expect(cells(defended)).toEqual(['fgsm linf 0.1', 'pgd linf 0.05', 'pgd linf 0.1']);
    // The worst case over fewer attacks would overstate robustness: left out at that budget.
    expect(plain.worstCase.map((w) => w.eps)).toEqual([0.05, 0.1]);
    expect(defended.worstCase.map((w) => w.eps)).toEqual([0.1]);
    // 6 examples in batches of 3: the cell's second job is batch 2/2, examples 3 to 5.
    expect(results.notes).toContain(
      `${failing}: left out: batch 2/2 (examples 3-5) failed after 3 attempts: boom`,
    );
    expect(results.notes).toContain(
      `${DEFENDED}: worst case at linf 0.05 left out: the cell of fgsm there failed`,
    );
    expect(results.failed).toEqual([
      {
        target: DEFENDED,
        stage: 'attack',
        attack: 'fgsm',
        norm: 'linf',
        eps: 0.05,
        label: failing,
        job: 'batch 2/2 (examples 3-5)',
        jobId: 'f'.repeat(64),
        attempts: 3,
        error: 'boom',
        refused: false,
      },
    ]);
    expect(existsSync(path.join(outDir, 'results.json'))).toBe(true);
    const partial = path.join(outDir, 'partial.jsonl');
    expect(existsSync(partial)).toBe(true);

    // Resumed with the cause fixed: only the failed cell's two batches are asked for (once up
    // front, once by the cell), and the results are those of a run that never failed.
    const again = new Recorder(pool);
    const resumed = await runEvaluation(config(), { outDir, queue: again, resume: true });
    expect([...again.asked.values()]).toEqual([2, 2]);
    expect([...again.labels]).toEqual([failing]);
    expect(resumed.failed).toBeUndefined();
    expect(existsSync(partial)).toBe(false);
    const whole = await runEvaluation(config(), {
      outDir: path.join(dir, 'whole'),
      queue: new Recorder(pool),
    });
    expect(numbers(resumed)).toEqual(numbers(whole));
  });
});

/** Results without wall-clock fields. */
const numbers = (r: object) =>
  JSON.stringify(r, (k, v) => (['seconds', 'started', 'finished'].includes(k) ? undefined : v));

describe('runEvaluation with a queue whose certificate and honesty jobs fail', () => {
  it('leaves out the certificate, a smoothed target, and skips the honesty check', async () => {
    const smoothing = { sigma: 0.25, n0: 10, n: 50 };
    const smoothed = 'fmnist-mlp + smoothing sigma=0.25';
    const cfg = parseEvaluateConfig(
      {
        n: 6,
        batchSize: 3,
        seed: 4,
        models: [
          { path: model, certify: { smoothing } },
          { path: model, defense: { smoothing } },
        ],
        attacks: [{ attack: 'fgsm' }],
        eps: { linf: [0.1] },
        gallery: { examples: 0 },
        honesty: { examples: 3, unboundedSteps: 2, moreSteps: { factor: 1, restarts: 1 } },
      },
      packageRoot(),
    );
    const queue = new Recorder(
      pool,
      (label) => label.endsWith('smoothing sigma 0.25') || label.endsWith(': unbounded-eps'),
    );
    const results = await runEvaluation(cfg, { outDir: path.join(dir, 'certify'), queue });
    // The smoothed target's clean predictions are its certificate's: it goes whole.
    expect(results.targets.map((t) => t.id)).toEqual(['fmnist-mlp']);
    const [t] = results.targets;
    expect(t.attacks.map((c) => c.eps)).toEqual([0.1]);
    expect(t.certified).toEqual([]);
    const unbounded = t.honesty.find((h) => h.id === 'unbounded-eps')!;
    expect(unbounded.status).toBe('skip');
    expect(unbounded.detail).toMatch(/failed on the job queue/);
    expect(t.honesty.find((h) => h.id === 'more-steps')!.status).not.toBe('skip');
    // One job per example: the last, example 5; the honesty run's 3 examples are one batch.
    expect(results.notes).toEqual(
      expect.arrayContaining([
        'fmnist-mlp: smoothing sigma 0.25: left out: the job of example 5 (6/6) failed after 3 attempts: boom',
        'fmnist-mlp: unbounded-eps: left out: batch 1/1 (examples 0-2) failed after 3 attempts: boom',
        `${smoothed}: not evaluated: its clean predictions come from its smoothing certificate, which failed`,
      ]),
    );
    expect(results.failed?.map((f) => [f.target, f.stage, f.attack])).toEqual([
      ['fmnist-mlp', 'certify', 'smoothing'],
      ['fmnist-mlp', 'honesty', 'unbounded-eps'],
      [smoothed, 'certify', 'smoothing'],
    ]);
  });

  it("trains the privacy section's population as one job per model on the queue, as locally", async () => {
    const raw = {
      n: 2,
      seed: 4,
      models: [{ path: model }],
      attacks: [],
      honesty: { enabled: false },
      privacy: {
        dataset: 'fashion-mnist-subset',
        membership: {
          pool: 40,
          population: 0,
          models: { referenceModels: 2, arch: 'mlp', epochs: 2, batchSize: 8 },
          queries: 'none',
          attacks: [{ name: 'loss' }],
        },
      },
    };
    const queue = new Recorder(pool);
    const queued = await runEvaluation(parseEvaluateConfig(raw, packageRoot()), {
      outDir: path.join(dir, 'privacy-queued'),
      queue,
    });
    const local = await runEvaluation(parseEvaluateConfig(raw, packageRoot()), {
      outDir: path.join(dir, 'privacy-local'),
    });
    // Three models (target + 2 references), one job each, under the membership cell's label.
    expect([...queue.labels]).toEqual(['privacy: membership inference']);
    expect(queue.asked.size).toBe(3);
    const m = (r: typeof local) => {
      const { seconds: _, referenceSeconds: __, ...rest } = r.privacy!.membership!;
      return {
        ...rest,
        target: { ...rest.target, trainSeconds: 0 },
        outputs: rest.outputs.map((o) => ({
          ...o,
          queryLogitsSeconds: 0,
          attacks: o.attacks.map((a) => ({ ...a, seconds: 0 })),
        })),
      };
    };
    expect(m(queued)).toEqual(m(local));
  });
});
