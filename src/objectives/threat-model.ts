/**
 * The threat model every technique shares: the norm of the ball, its radius `eps`, whether the
 * attacker aims at a class, and the seed of its randomness. Declared once here; every registry
 * entry's schema starts from these fields, so the CLI, the evaluate config and the library apply
 * the same rules.
 */
import { z } from 'zod';

export const NORMS = ['linf', 'l2', 'l1'] as const;
export type Norm = (typeof NORMS)[number];

/**
 * A radius: finite and >= 0. Zero is allowed everywhere (an attack at eps 0 returns its input, a
 * grid that starts at 0 reports clean accuracy), so the CLI and configs agree.
 */
export const epsSchema = z
  .number({ error: (issue) => (issue.input === undefined ? 'is required' : undefined) })
  .min(0)
  .max(Number.MAX_VALUE)
  .describe('perturbation budget in the chosen norm');

/** A seed: an unsigned 32-bit integer. */
export const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(0xffffffff)
  .describe('seed of every random choice (recorded in results)');

/**
 * The threat-model fields for a technique defined on `norms`. `targeted: false` refuses targets;
 * `eps: false` leaves the radius out (minimum-norm attacks search for it, so none is read).
 */
export function threatModelShape(
  norms: readonly [Norm, ...Norm[]],
  opts: { targeted: boolean; eps: boolean },
) {
  return {
    ...(opts.eps ? { eps: epsSchema } : {}),
    norm: z
      .enum(norms, {
        error: (issue) =>
          `'${String(issue.input)}' is not supported (supported: ${norms.join(', ')})`,
      })
      .default(norms[0])
      .describe('threat model: the norm of the ball'),
    targeted: (opts.targeted
      ? z.boolean()
      : z.literal(false, { error: 'targeted attacks are not supported' })
    )
      .default(false)
      .describe('aim at a given class instead of any wrong one'),
    seed: seedSchema.default(0),
  };
}
