/**
 * What each attack option means: the help text of its CLI flag and of the evaluate config's JSON
 * schema, attached to the attack's own config field when the registry picks it.
 */
import type { z } from 'zod';

/** What each attack option means (the help text of the CLI flag and of the config's JSON schema). */
export const OPTION_HELP: Record<string, string> = {
  steps: 'iterations',
  stepSize: 'step length in the chosen norm (default 2.5·eps/steps)',
  restarts: 'random restarts; each example keeps its worst case',
  randomStart: 'start from a random point in the ball',
  loss: 'objective: cross-entropy (ce) or the C&W logit margin',
  l1Fraction: 'L1 only: fraction of coordinates a sparse step moves',
  decay: 'momentum decay factor μ',
  maxQueries: 'query budget per example',
  pInit: 'initial fraction of the image a square covers',
  initEvals: 'gradient-estimate queries at the first iteration',
  maxEvals: 'gradient-estimate queries at most per iteration',
  gamma: 'binary-search threshold factor γ',
  initTrials: 'random draws to find a first adversarial point',
  numTargets: 'target classes tried (the most likely after the true one)',
  rho: 'step-size halving threshold ρ',
  alpha: 'momentum weight α',
  attacks: 'ensemble members, run in this order on the examples still standing',
  targetFoolingRate: 'stop fitting once this fraction of inputs is fooled',
  maxEpochs: 'passes over the fitting set',
  deepfoolSteps: 'DeepFool iterations per example while fitting',
  overshoot: 'factor the found perturbation is enlarged by',
  candidates: 'classes considered for the closest boundary',
  binarySearchSteps: 'binary-search rounds over the constant c',
  initialConst: 'first constant c of the binary search',
  confidence: 'logit margin κ the adversarial class must win by',
  lr: 'Adam learning rate',
  abortEarly: 'stop a round when the loss stops falling',
};

/** The fields `keys` of an attack's config schema, each with its help text. */
export function pick<S extends z.ZodObject, K extends keyof S['shape'] & string>(
  schema: S,
  keys: readonly K[],
): Pick<S['shape'], K> {
  return Object.fromEntries(
    keys.map((k) => {
      const field = schema.shape[k] as z.ZodType;
      const help = OPTION_HELP[k];
      return [k, help && !field.description ? field.describe(help) : field];
    }),
  ) as Pick<S['shape'], K>;
}
