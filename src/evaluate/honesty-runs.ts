/**
 * The honesty checks of one target: the measurements they need beyond the attack cells (PGD over
 * the whole input range, stronger PGD, random noise, loss gradients), each a cell of its own, and
 * the decisions of `honesty.ts` over them. The extra attacks and the gradient check run on the
 * first `honesty.examples` examples; random noise on all of them.
 */
import { type AttackParams, findAttack } from '../attacks/registry.js';
import { type Dataset, takeFirst } from '../data/index.js';
import { attackTarget, type CleanRecord } from './attacks.js';
import { type AttackConfig, EVAL_NORMS, type EvalNorm } from './config.js';
import { batchJobs, cell, cellOrFailure, type EvalContext, middle } from './context.js';
import {
  blackVsWhiteCheck,
  type GradientHealth,
  gradientHealth,
  gradientsCheck,
  monotoneCheck,
  moreStepsCheck,
  noiseRobust,
  randomNoiseCheck,
  skipped,
  unboundedCheck,
} from './honesty.js';
import { attacker, deployed, rejectLabel, type Target } from './inputs.js';
import type { AttackCell, HonestyCheck, WorstCaseCell } from './results.js';

/** PGD's default steps (`pgdConfigSchema`), the base of `moreSteps.factor` without a pgd attack. */
const PGD_DEFAULT_STEPS = 10;
const UNBOUNDED_DEFAULT_STEPS = 20;

interface PgdRecord {
  robust: number[];
  robustAccuracy: number;
  gradientEvaluations: number;
  seconds: number;
}

/** What the runs of one target share. */
interface Env {
  ctx: EvalContext;
  t: Target;
  subset: Dataset;
  /** The configured pgd's parameters, if any. */
  pgd?: AttackConfig['params'];
}

const key = (t: Target, attack: string, norm: string | null, eps: number | null) => ({
  target: t.id,
  stage: 'honesty',
  attack,
  norm,
  eps,
});

/** Why a check whose own attack run failed on the job queue is skipped. */
const FAILED_RUN =
  'Its attack run failed on the job queue (see the notes); a resumed run retries it.';

const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / Math.max(v.length, 1);

/**
 * Untargeted L∞ PGD with a random start on the subset (the configured pgd's loss, if any);
 * undefined when a job of it failed on the job queue (the cell is then named in a note).
 */
function runPgd(env: Env, name: string, eps: number, steps: number, restarts: number) {
  const { ctx, t, subset, pgd } = env;
  const label = `${t.id}: ${name}`;
  const m = subset.shape[0];
  return cellOrFailure<PgdRecord>(
    ctx,
    key(t, name, 'linf', eps),
    label,
    m,
    batchJobs(ctx.config.batchSize, m),
    async (seed, progress) => {
      const params: AttackParams = {
        norm: 'linf',
        eps,
        steps,
        restarts,
        randomStart: true,
        targeted: false,
        ...(pgd?.loss ? { loss: pgd.loss } : {}),
        seed,
      };
      const r = await attackTarget(ctx, t, findAttack('pgd')!, params, subset, 0, progress);
      // A detector's rejection of the attacked input defends it (reject label: see cells.ts).
      const reject = rejectLabel(t);
      const robust = r.perExample.map((e) =>
        e.clean === e.label && (e.adversarial === e.label || e.adversarial === reject) ? 1 : 0,
      );
      return {
        robust,
        robustAccuracy: mean(robust),
        gradientEvaluations: r.gradientEvaluations,
        seconds: r.seconds,
      };
    },
  );
}

async function unbounded(env: Env): Promise<HonestyCheck> {
  const [lo, hi] = env.t.base.bounds;
  const steps = env.ctx.config.honesty.unboundedSteps ?? env.pgd?.steps ?? UNBOUNDED_DEFAULT_STEPS;
  const r = await runPgd(env, 'unbounded-eps', hi - lo, steps, 1);
  if (r === undefined) return skipped('unbounded-eps', FAILED_RUN);
  return unboundedCheck({
    robustAccuracy: r.robustAccuracy,
    n: env.subset.shape[0],
    eps: hi - lo,
    steps,
  });
}

/** Stronger PGD at the middle L∞ budget, against the worst case of the configured attacks there. */
async function moreSteps(
  env: Env,
  cells: readonly AttackCell[],
  worst: readonly WorstCaseCell[],
): Promise<HonestyCheck> {
  const grid = env.ctx.config.eps.linf;
  const eps = grid ? middle(grid) : undefined;
  const white = cells.filter((c) => c.whiteBox && c.norm === 'linf' && c.eps === eps);
  if (eps === undefined || white.length === 0) {
    return skipped('more-steps', 'No white-box attack ran at an L∞ budget.');
  }
  const before = worst.find((w) => w.norm === 'linf' && w.eps === eps);
  if (before === undefined) {
    return skipped('more-steps', `The worst case at L∞ ${eps} is left out: an attack cell failed.`);
  }
  const { factor, restarts } = env.ctx.config.honesty.moreSteps;
  const steps = Math.round(factor * (env.pgd?.steps ?? PGD_DEFAULT_STEPS));
  const strong = await runPgd(env, 'more-steps', eps, steps, restarts);
  if (strong === undefined) return skipped('more-steps', FAILED_RUN);
  const m = env.subset.shape[0];
  const wc = before.robust.slice(0, m);
  const best = white
    .map((c) => ({ attack: c.attack, accuracy: mean(c.robust.slice(0, m)) }))
    .reduce((a, b) => (b.accuracy < a.accuracy ? b : a));
  return moreStepsCheck({
    n: m,
    eps,
    steps,
    restarts,
    before: mean(wc),
    after: mean(wc.map((r, i) => r * strong.robust[i])),
    strong: mean(strong.robust),
    bestWhiteBox: best,
  });
}

/** Random noise of each budget's size on every example, beside the attacks at that budget. */
async function randomNoise(
  env: Env,
  clean: CleanRecord,
  cells: readonly AttackCell[],
): Promise<HonestyCheck> {
  const { ctx, t } = env;
  const { data, config } = ctx;
  const noise: { norm: EvalNorm; eps: number; robustAccuracy: number }[] = [];
  for (const norm of EVAL_NORMS) {
    for (const eps of config.eps[norm] ?? []) {
      if (!cells.some((c) => c.norm === norm && c.eps === eps)) continue;
      const label = `${t.id}: random noise ${norm} ${eps}`;
      const rec = await cell(
        ctx,
        key(t, 'random-noise', norm, eps),
        label,
        data.shape[0],
        async (seed) => {
          const started = performance.now();
          const model = deployed(t, seed);
          const robust = await noiseRobust(
            model,
            data,
            clean.predictions,
            norm,
            eps,
            seed,
            config.batchSize,
            rejectLabel(t),
          );
          return { robustAccuracy: mean(robust), seconds: (performance.now() - started) / 1000 };
        },
      );
      noise.push({ norm, eps, robustAccuracy: rec.robustAccuracy });
    }
  }
  return randomNoiseCheck(noise, cells);
}

/** Gradients of what the attacks differentiate and, behind BPDA, of the defense as is. */
async function gradients(env: Env): Promise<HonestyCheck> {
  const { ctx, t, subset } = env;
  const batchSize = ctx.config.batchSize;
  type Rec = { attacked: GradientHealth; plain?: GradientHealth; seconds: number };
  const rec = await cell<Rec>(
    ctx,
    key(t, 'gradients', null, null),
    `${t.id}: gradients`,
    subset.shape[0],
    async (seed) => {
      const started = performance.now();
      const attacked = await gradientHealth(attacker(t, seed), subset, batchSize);
      const bpda = t.preprocessors !== null && t.adaptive === 'bpda';
      const plain = bpda ? await gradientHealth(deployed(t, seed), subset, batchSize) : undefined;
      return {
        attacked,
        ...(plain ? { plain } : {}),
        seconds: (performance.now() - started) / 1000,
      };
    },
  );
  return gradientsCheck(rec.attacked, rec.plain);
}

/** The six checks, in the order of `HonestyCheck['id']`. */
export async function honestyStage(
  ctx: EvalContext,
  t: Target,
  clean: CleanRecord,
  cells: readonly AttackCell[],
  worst: readonly WorstCaseCell[],
): Promise<HonestyCheck[]> {
  const subset = takeFirst(ctx.data, Math.min(ctx.config.honesty.examples, ctx.data.shape[0]));
  const pgd = ctx.config.attacks.find((a) => a.attack === 'pgd')?.params;
  const env: Env = { ctx, t, subset, ...(pgd ? { pgd } : {}) };
  return [
    await unbounded(env),
    monotoneCheck(cells, ctx.data.shape[0]),
    await moreSteps(env, cells, worst),
    blackVsWhiteCheck(cells),
    await randomNoise(env, clean, cells),
    await gradients(env),
  ];
}
