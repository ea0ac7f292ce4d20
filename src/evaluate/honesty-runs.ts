/**
 * The honesty checks of one target: the measurements they need beyond the attack cells (PGD over
 * the whole input range, stronger PGD, random noise, loss gradients), each a cell of its own, and
 * the decisions of `honesty.ts` over them.
 */
import { type AttackParams, findAttack } from '../attacks/registry.js';
import { takeFirst } from '../data/index.js';
import { attackTarget, type CleanRecord } from './attacks.js';
import { EVAL_NORMS } from './config.js';
import { cell, type EvalContext, middle } from './context.js';
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
import { attacker, deployed, type Target } from './inputs.js';
import type { AttackCell, HonestyCheck, WorstCaseCell } from './results.js';

const PGD_DEFAULT_STEPS = 10;

interface PgdRecord {
  robust: number[];
  robustAccuracy: number;
  steps: number;
  restarts: number;
  eps: number;
  gradientEvaluations: number;
  seconds: number;
}

export async function honestyStage(
  ctx: EvalContext,
  t: Target,
  clean: CleanRecord,
  cells: readonly AttackCell[],
  worst: readonly WorstCaseCell[],
): Promise<HonestyCheck[]> {
  const { config, data } = ctx;
  const subset = takeFirst(data, Math.min(config.honesty.examples, data.shape[0]));
  const m = subset.shape[0];
  const pgd = config.attacks.find((a) => a.attack === 'pgd')?.params;
  const key = (attack: string, norm: string | null, eps: number | null) => ({
    target: t.id,
    stage: 'honesty',
    attack,
    norm,
    eps,
  });
  const runPgd = (name: string, eps: number, steps: number, restarts: number) =>
    cell<PgdRecord>(ctx, key(name, 'linf', eps), `${t.id}: ${name}`, m, async (seed, progress) => {
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
      const robust = r.perExample.map((e) =>
        e.clean === e.label && e.adversarial === e.label ? 1 : 0,
      );
      const { robust_accuracy: robustAccuracy, gradient_evaluations, seconds } = r;
      return {
        robust,
        robustAccuracy,
        steps,
        restarts,
        eps,
        gradientEvaluations: gradient_evaluations,
        seconds,
      };
    });

  const checks: HonestyCheck[] = [];
  // unbounded-eps: PGD over the whole input range.
  const [lo, hi] = t.base.bounds;
  const unboundedSteps = config.honesty.unboundedSteps ?? pgd?.steps ?? 20;
  const unbounded = await runPgd('unbounded-eps', hi - lo, unboundedSteps, 1);
  checks.push(
    unboundedCheck({
      robustAccuracy: unbounded.robustAccuracy,
      n: m,
      eps: hi - lo,
      steps: unboundedSteps,
    }),
  );

  checks.push(monotoneCheck(cells, data.shape[0]));

  // more-steps: stronger PGD at the middle L∞ budget, against the worst case on the subset.
  const linf = config.eps.linf;
  const whiteAtMid = linf
    ? cells.filter((c) => c.whiteBox && c.norm === 'linf' && c.eps === middle(linf))
    : [];
  if (linf && whiteAtMid.length > 0) {
    const eps = middle(linf);
    const steps = Math.round(config.honesty.moreSteps.factor * (pgd?.steps ?? PGD_DEFAULT_STEPS));
    const strong = await runPgd('more-steps', eps, steps, config.honesty.moreSteps.restarts);
    const wc = worst.find((w) => w.norm === 'linf' && w.eps === eps)!.robust.slice(0, m);
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / Math.max(v.length, 1);
    const best = whiteAtMid
      .map((c) => ({ attack: c.attack, accuracy: mean(c.robust.slice(0, m)) }))
      .reduce((a, b) => (b.accuracy < a.accuracy ? b : a));
    checks.push(
      moreStepsCheck({
        n: m,
        eps,
        steps,
        restarts: strong.restarts,
        before: mean(wc),
        after: mean(wc.map((r, i) => r * strong.robust[i])),
        strong: mean(strong.robust),
        bestWhiteBox: best,
      }),
    );
  } else {
    checks.push(skipped('more-steps', 'No white-box attack ran at an L∞ budget.'));
  }

  checks.push(blackVsWhiteCheck(cells));

  // random-noise: noise of each budget's size, on every example.
  const noise: { norm: (typeof EVAL_NORMS)[number]; eps: number; robustAccuracy: number }[] = [];
  for (const norm of EVAL_NORMS) {
    for (const eps of config.eps[norm] ?? []) {
      if (!cells.some((c) => c.norm === norm && c.eps === eps)) continue;
      const rec = await cell<{ robustAccuracy: number; seconds: number }>(
        ctx,
        key('random-noise', norm, eps),
        `${t.id}: random noise ${norm} ${eps}`,
        data.shape[0],
        async (seed) => {
          const started = performance.now();
          const robust = await noiseRobust(
            deployed(t, seed),
            data,
            clean.predictions,
            norm,
            eps,
            seed,
            config.batchSize,
          );
          const robustAccuracy = robust.reduce((s, v) => s + v, 0) / robust.length;
          return { robustAccuracy, seconds: (performance.now() - started) / 1000 };
        },
      );
      noise.push({ norm, eps, robustAccuracy: rec.robustAccuracy });
    }
  }
  checks.push(randomNoiseCheck(noise, cells));

  // gradients: of what the attacks differentiate, and (behind BPDA) of the defence as is.
  const grads = await cell<{ attacked: GradientHealth; plain?: GradientHealth; seconds: number }>(
    ctx,
    key('gradients', null, null),
    `${t.id}: gradients`,
    m,
    async (seed) => {
      const started = performance.now();
      const attacked = await gradientHealth(attacker(t, seed), subset, config.batchSize);
      const bpda = t.preprocessors !== null && t.adaptive === 'bpda';
      const plain = bpda
        ? await gradientHealth(deployed(t, seed), subset, config.batchSize)
        : undefined;
      return {
        attacked,
        ...(plain ? { plain } : {}),
        seconds: (performance.now() - started) / 1000,
      };
    },
  );
  checks.push(gradientsCheck(grads.attacked, grads.plain));
  return checks;
}
