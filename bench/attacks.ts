/**
 * Attack benchmark on the committed `models/fmnist-cnn-small` (Fashion-MNIST subset test images,
 * batch 128, L∞ eps 0.1). Throughput runs use the worker pool with one worker per core, like
 * `parry attack`, once per engine (tfjs on the backend, then ONNX Runtime: keys end in the
 * engine's name); the PGD step split runs in one thread on tfjs: forward, backward (gradient minus
 * forward) and projection (the step, the ball projection and the clip). PGD-20 on one batch in
 * one thread also runs once per engine (tfjs on the backend, ONNX Runtime with one intra-op
 * thread), in the same process, so their ratio is measured under the same load.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pgd } from '../src/attacks/evasion/index.js';
import { attackObjective } from '../src/attacks/evasion/objective.js';
import { clipToBounds, projectToBall } from '../src/attacks/evasion/projection.js';
import { type AttackParams, findAttack } from '../src/attacks/registry.js';
import { disposeAttackResult } from '../src/attacks/result.js';
import { loadDataset, takeFirst } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { packageRoot } from '../src/engine/paths.js';
import { WorkerPool } from '../src/engine/pool.js';
import { evaluateAttackPooled } from '../src/evaluate/robustness.js';
import { loadClassifier } from '../src/models/index.js';
import { ENGINES, timeMs, withEngine } from './engine.js';

const BATCH = 128;
const EPS = 0.1;

export async function benchAttacks(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const modelDir = path.join(packageRoot(), 'models', 'fmnist-cnn-small');
  const test = loadDataset('fashion-mnist-subset', 'test');
  const workers = availableParallelism();
  const throughput: Record<string, number> = {};
  for (const engine of ENGINES) {
    await withEngine(engine, async () => {
      const pool = new WorkerPool({ workers, backend: name });
      await pool.ready();
      const run = async (attack: string, n: number, extra: Partial<AttackParams>) => {
        const data = takeFirst(test, n);
        const params: AttackParams = { norm: 'linf', eps: EPS, targeted: false, seed: 0, ...extra };
        const r = await evaluateAttackPooled(
          pool,
          modelDir,
          10,
          data,
          findAttack(attack)!,
          params,
          {
            batchSize: BATCH,
          },
        );
        return { imagesPerS: round(n / r.seconds), robust: r.robustAccuracy };
      };
      try {
        // Warm-up: every worker loads the model, makes its sessions and compiles the kernels
        // of the projection and random start (a first PGD run was 20–30% slower without it).
        await run('pgd', workers * BATCH, { steps: 2 });
        const pgd = await run('pgd', 8 * BATCH, { steps: 20 });
        const apgd = await run('apgd-ce', 2 * BATCH, { steps: 100 });
        const square = await run('square', 2 * BATCH, { maxQueries: 5000 });
        Object.assign(throughput, {
          [`pgd20_linf_images_per_s_${engine}`]: pgd.imagesPerS,
          [`pgd20_linf_robust_accuracy_${engine}`]: pgd.robust,
          [`apgd_ce_100_images_per_s_${engine}`]: apgd.imagesPerS,
          [`apgd_ce_100_robust_accuracy_${engine}`]: apgd.robust,
          [`square_5000_images_per_s_${engine}`]: square.imagesPerS,
          [`square_5000_robust_accuracy_${engine}`]: square.robust,
        });
      } finally {
        await pool.close();
      }
    });
  }
  const model = await loadClassifier(modelDir, { engine: 'tfjs' });
  try {
    const split = pgdStepSplit(model, takeFirst(test, BATCH));
    const engines = await pgdPerEngine(modelDir, takeFirst(test, BATCH));
    return {
      benchmark: 'attacks',
      backend: name,
      workers,
      model: 'fmnist-cnn-small',
      eps: EPS,
      batch: BATCH,
      ...throughput,
      pgd20_linf_ort_over_tfjs: round(
        throughput.pgd20_linf_images_per_s_ort / throughput.pgd20_linf_images_per_s_tfjs,
        2,
      ),
      ...split,
      ...engines,
    };
  } finally {
    model.dispose();
  }
}

function pgdStepSplit(
  model: Awaited<ReturnType<typeof loadClassifier>>,
  data: ReturnType<typeof takeFirst>,
): Record<string, number> {
  const x = tf.tensor(data.x, data.shape);
  const y = tf.tensor1d(data.labels, 'int32');
  const sync = (t: tf.Tensor) => t.dataSync();
  const objective = (z: tf.Tensor) => tf.sum(attackObjective(model.logits(z), y, false, 'ce'));
  const forwardMs = timeMs(() => tf.tidy(() => sync(model.logits(x))));
  const gradientMs = timeMs(() => tf.tidy(() => sync(tf.grad(objective)(x))));
  const g = tf.tidy(() => tf.grad(objective)(x));
  const projectionMs = timeMs(() =>
    tf.tidy(() => {
      const stepped = tf.add(x, tf.mul(tf.sign(g), EPS / 4));
      sync(clipToBounds(projectToBall(stepped, x, EPS, 'linf'), model.bounds));
    }),
  );
  const stepMs = timeMs(() =>
    tf.tidy(() => {
      const grad = tf.grad(objective)(x);
      const stepped = tf.add(x, tf.mul(tf.sign(grad), EPS / 4));
      sync(clipToBounds(projectToBall(stepped, x, EPS, 'linf'), model.bounds));
    }),
  );
  tf.dispose([x, y, g]);
  return {
    pgd_step_forward_ms: round(forwardMs),
    pgd_step_backward_ms: round(gradientMs - forwardMs),
    pgd_step_projection_ms: round(projectionMs),
    pgd_step_ms: round(stepMs),
    pgd_step_over_forward: round(stepMs / forwardMs, 3),
  };
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** PGD-20 on one batch in this thread, per engine: images per second and robust accuracy. */
export async function pgdPerEngine(
  modelDir: string,
  data: ReturnType<typeof takeFirst>,
): Promise<Record<string, number>> {
  const x = tf.tensor(data.x, data.shape);
  const y = tf.tensor1d(data.labels, 'int32');
  const out: Record<string, number> = {};
  try {
    for (const engine of ['tfjs', 'ort'] as const) {
      const model = await loadClassifier(modelDir, { engine });
      const params = { eps: EPS, steps: 20, seed: 0 };
      disposeAttackResult(await pgd(model, x, y, { ...params, steps: 1 })); // warm up
      const started = performance.now();
      const r = await pgd(model, x, y, params);
      const seconds = (performance.now() - started) / 1000;
      const p = r.predictions.dataSync();
      disposeAttackResult(r);
      model.dispose();
      out[`pgd20_one_thread_${engine}_images_per_s`] = round(data.shape[0] / seconds);
      out[`pgd20_one_thread_${engine}_robust_accuracy`] =
        p.filter((v, i) => v === data.labels[i]).length / data.shape[0];
    }
  } finally {
    tf.dispose([x, y]);
  }
  out.pgd20_one_thread_ort_over_tfjs = round(
    out.pgd20_one_thread_ort_images_per_s / out.pgd20_one_thread_tfjs_images_per_s,
    2,
  );
  return out;
}
