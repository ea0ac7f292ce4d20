/**
 * Clean-label backdoor (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor Attacks"):
 * examples of the target class are first made hard to classify — an untargeted L∞ PGD
 * perturbation of radius `eps` against a reference model — and then given the trigger. Labels
 * stay as they are (each poison still shows its own class to a human), so a model can only fit
 * the hard poisons by leaning on the trigger, which it then associates with the target class.
 * `rate` is the fraction of the whole training set poisoned, drawn from the target class.
 * Threat model: the attacker edits a fraction of the target class's images (not their labels)
 * and knows a reference model. Outside the trigger's pixels every poison is within `eps` (L∞) of
 * its original and inside [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type Dataset, exampleSize, selectExamples } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import { epsSchema, seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import { createPgd } from '../evasion/pgd.js';
import { disposeAttackResult } from '../result.js';
import { type PoisonResult, poisonResult } from './poison-manifest.js';
import {
  checkClass,
  checkTrainingSet,
  drawIndices,
  indicesWhere,
  type PoisonContext,
  poisonCount,
  poisonedCopy,
  rateSchema,
  requireModel,
  step,
} from './selection.js';
import { patchOptionsShape, patchTrigger, stampTrigger, triggerPattern } from './triggers.js';

export const cleanLabelSchema = z.strictObject({
  rate: rateSchema(0.05),
  seed: seedSchema.default(0),
  target: z.number().int().min(0).default(0).describe('class the attacker wants predicted'),
  eps: epsSchema.default(0.1).describe('L∞ radius of the PGD perturbation that makes poisons hard'),
  steps: z.number().int().min(0).default(10).describe('PGD iterations'),
  stepSize: z.number().positive().optional().describe('PGD step (default 2.5·eps/steps)'),
  ...patchOptionsShape,
});
export type CleanLabelConfig = z.infer<typeof cleanLabelSchema>;

/** Examples per PGD batch. */
const BATCH = 128;

/** The clean-label backdoor against the reference model `ctx.model`. */
export async function cleanLabel(
  data: Dataset,
  config: z.input<typeof cleanLabelSchema>,
  ctx: PoisonContext,
): Promise<PoisonResult> {
  const owner = 'clean-label';
  const c = parseWith(owner, cleanLabelSchema, config);
  checkTrainingSet(owner, data);
  checkClass(owner, 'target', c.target, data);
  const shape = data.shape.slice(1);
  const trigger = patchTrigger(owner, c, shape, ctx.pattern);
  const model = requireModel(owner, ctx, data);
  const rng = new Rng(c.seed);
  const indices = drawIndices(
    owner,
    indicesWhere(data.labels, (y) => y === c.target),
    poisonCount(c.rate, data.labels.length),
    rng.fork(),
    `examples of the target class ${c.target}`,
  );
  const out = poisonedCopy(data, owner);
  const size = exampleSize(data);
  const pattern = triggerPattern(trigger, shape);
  for (let start = 0; start < indices.length; start += BATCH) {
    const rows = indices.slice(start, start + BATCH);
    const batch = selectExamples(data, rows);
    const pgd = createPgd({
      eps: c.eps,
      norm: 'linf',
      steps: c.steps,
      stepSize: c.stepSize,
      seed: rng.nextUint32(),
    });
    const x = tf.tensor(batch.x, batch.shape);
    const labels = tf.tensor1d(batch.labels, 'int32');
    try {
      const r = await pgd(model, x, labels, {
        signal: ctx.signal,
        onProgress: (done, total) =>
          ctx.progress?.((start + (rows.length * done) / total) / indices.length),
      });
      const xAdv = await r.xAdv.data();
      disposeAttackResult(r);
      rows.forEach((j, i) => {
        out.x.set(xAdv.subarray(i * size, (i + 1) * size), j * size);
        stampTrigger(out.x, j, shape, trigger, pattern);
      });
    } finally {
      tf.dispose([x, labels]);
    }
    await step(ctx, start + rows.length, indices.length);
  }
  return poisonResult(data, out, {
    attack: owner,
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    targetClass: c.target,
    mapping: 'all-to-one',
    trigger,
    labelsChanged: false,
  });
}
