/**
 * `runEvaluation` over a job queue, with a stand-in executor that records what it is asked (and
 * runs it on a thread pool; `npm run build` first): every attack job is submitted up front with
 * exactly the content the attack stage later asks for, labelled with its cell; a target whose job
 * fails is left out with a note while the others finish.
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
    if (this.failing(label)) throw new JobFailedError('f'.repeat(64), label, 3, 'boom');
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

  it('leaves out a target whose job failed, with a note, and keeps partial.jsonl', async () => {
    const queue = new Recorder(pool, (label) => label.startsWith(DEFENDED));
    const outDir = path.join(dir, 'failed');
    const results = await runEvaluation(config(), { outDir, queue });
    expect(results.targets.map((t) => t.id)).toEqual(['fmnist-mlp']);
    expect(results.notes).toContain(
      `${DEFENDED}: not evaluated: queue: ${DEFENDED}: fgsm linf 0.05 failed after 3 attempts: boom`,
    );
    expect(existsSync(path.join(outDir, 'partial.jsonl'))).toBe(true);
    expect(existsSync(path.join(outDir, 'results.json'))).toBe(true);
  });
});
