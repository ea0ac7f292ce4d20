/**
 * `parry attack`: one evasion attack on a model over a data set: clean and robust accuracy,
 * success rate, perturbation sizes and cost; optionally PNGs of the first examples. The attack's
 * options are generated from the registry's schemas (src/attacks/registry.ts). With `--queue URL`
 * the batches run as jobs on `parry worker` processes (docs/distributed.md), with the same result.
 */

import { type Command, Option } from 'commander';
import {
  ATTACKS,
  type AttackParams,
  attackNames,
  attackOptions,
  findAttack,
  fitUniversalPerturbation,
} from '../attacks/registry.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { checkOutputDir } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { withJobLabel } from '../engine/queue/label.js';
import { redactUrl } from '../engine/queue/redis.js';
import {
  type AttackEvaluation,
  attackSummary,
  evaluateAttack,
  evaluateAttackPooled,
  foolingRate,
} from '../evaluate/robustness.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier, type TfjsClassifier } from '../models/index.js';
import { NORMS } from '../objectives/threat-model.js';
import { saveAttackExamples } from '../report/examples.js';
import {
  type CommonOptions,
  emit,
  modelCommand,
  optionGiven,
  parseNonNegativeInt,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  testSlice,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';
import {
  addQueueOptions,
  checkQueueFlags,
  jobFailure,
  openQueue,
  type QueueFlags,
} from './queue-options.js';

interface AttackOptions extends CommonOptions, QueueFlags {
  model: string;
  dataset: string;
  attack: string;
  fitExamples: number;
  n: number;
  offset: number;
  batchSize: number;
  saveExamples?: string;
  /** Whether --n was given (else its default is cut to the data set). */
  nGiven?: boolean;
  examples: number;
}

/** eps when an attack with a budget is run without `--eps`. */
const DEFAULT_EPS = 0.1;

export function attackCommand(): Command {
  const cmd = modelCommand('attack', 'run an evasion attack and report clean vs robust accuracy')
    .addOption(
      new Option('--attack <name>', ATTACKS.map((a) => `${a.name}: ${a.description}`).join('; '))
        .choices(attackNames())
        .default('pgd'),
    )
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORMS]).default('linf'))
    .option('--n <n>', 'examples to attack (the first N of the test split)', parsePositiveInt, 1000)
    .option('--offset <k>', 'attack test[K, K+N) (to split a long run)', parseNonNegativeInt, 0)
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128)
    .option('--fit-examples <k>', 'uap: training examples to fit on', parsePositiveInt, 1000)
    .option('--save-examples <dir>', 'write PNGs of the first examples and their labels')
    .option('--examples <k>', 'how many examples --save-examples writes', parsePositiveInt, 8);
  const keys = addEntryOptions(cmd, ATTACKS, ['norm', 'seed']);
  return addQueueOptions(withCommonOptions(cmd), 'the attack batches').action(
    (opts: AttackOptions) =>
      runAttack(
        { ...opts, nGiven: optionGiven(cmd, 'n') },
        givenEntryOptions(cmd, keys),
        cmd.opts().norm,
      ),
  );
}

async function runAttack(opts: AttackOptions, given: Record<string, unknown>, norm: string) {
  if (opts.saveExamples) checkOutputDir(opts.saveExamples, '--save-examples');
  checkQueueFlags('attack', opts, opts.workers);
  const backend = await setUpBackend(opts);
  const attack = findAttack(opts.attack)!;
  const eps = attack.minimumNorm ? {} : { eps: given.eps ?? DEFAULT_EPS };
  const params = { ...given, ...eps, norm, seed: opts.seed } as AttackParams;
  await withFlagNames(attack.name, async () => attackOptions(attack, params)); // before any work
  const model = await loadClassifier(opts.model);
  const data = testSlice(opts.dataset, opts.offset, opts.n, opts.seed, opts.nGiven);
  model.checkInput(data.shape);
  checkDataFits(model, data);
  const queue =
    opts.queue === undefined
      ? undefined
      : await openQueue('attack', opts.queue, opts.attempts, backend);
  const fit = attack.name === 'uap' ? await fitUniversal(opts, model, params) : undefined;
  if (fit) params.universalPerturbation = fit.perturbation;
  const batches = Math.ceil(data.shape[0] / opts.batchSize);
  const workers = queue ? 0 : chooseWorkers(opts.workers, batches);
  // With a queue, its own bar counts the jobs.
  const bar = queue
    ? undefined
    : progressBar(`${attack.name} |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar?.start(data.shape[0], 0);
  const keep = opts.saveExamples ? Math.min(opts.examples, data.shape[0]) : 0;
  const evalOpts = {
    batchSize: opts.batchSize,
    keepExamples: keep,
    onProgress: (done: number) => bar?.update(done),
  };
  const pool = queue?.executor ?? (workers > 1 ? new WorkerPool({ workers, backend }) : undefined);
  let r: AttackEvaluation;
  try {
    // The queue's messages and bar name the jobs `pgd linf 0.1 · job 2/8`.
    const label = `${attack.name} ${norm}${attack.minimumNorm ? '' : ` ${params.eps}`}`;
    r = await withJobLabel(label, () =>
      pool
        ? evaluateAttackPooled(pool, opts.model, model.numClasses, data, attack, params, evalOpts)
        : evaluateAttack(model, data, attack, params, evalOpts),
    );
  } catch (e) {
    await queue?.close(false);
    throw jobFailure('attack', e);
  } finally {
    bar?.stop();
    queue?.stopBar();
    if (!queue) await pool?.close();
  }
  if (opts.saveExamples)
    await saveAttackExamples(opts.saveExamples, r, model.bounds, data.classNames);
  model.dispose();
  const at = attack.minimumNorm ? '' : `, eps ${params.eps}`;
  const result = {
    command: 'attack',
    attack: attack.name,
    norm,
    eps: attack.minimumNorm ? null : params.eps,
    targeted: params.targeted === true,
    loss: params.loss ?? 'ce',
    model: opts.model,
    dataset: data.name,
    offset: opts.offset,
    n: r.n,
    seed: opts.seed,
    backend,
    ...(queue ? { queue: redactUrl(queue.executor.url) } : { workers: Math.max(workers, 1) }),
    ...attackSummary(r, attack.minimumNorm),
    ...(fit ? { fooling_rate: foolingRate(r), ...fit.summary } : {}),
  };
  emit(result, opts, () =>
    [
      `${attack.name} (${norm}${at}) on ${data.name}, ${r.n} examples`,
      `clean accuracy ${pct(r.cleanAccuracy)}, robust accuracy ${pct(r.robustAccuracy)}, success rate ${pct(r.attackSuccessRate)}`,
      `perturbation (${norm}) of successful examples: mean ${round(r.meanPerturbation)}, max ${round(r.maxPerturbation)}`,
      `${r.gradientEvaluations} gradient evaluations, ${r.queries} queries, ${round(r.seconds, 2)} s`,
    ].join('\n'),
  );
  // Printed: the queue's copies of the results can go.
  await queue?.close(true);
}

/** uap: fits one perturbation on the first --fit-examples training examples. */
async function fitUniversal(opts: AttackOptions, model: TfjsClassifier, params: AttackParams) {
  const train = takeFirst(
    loadDataset(opts.dataset, 'train', { seed: opts.seed }),
    opts.fitExamples,
  );
  model.checkInput(train.shape);
  const bar = progressBar('uap fit |{bar}| epoch {epoch} {value}/{total} examples');
  bar.start(train.shape[0], 0, { epoch: 1 });
  return fitUniversalPerturbation(model, train, params, (epoch, done) =>
    bar.update(done, { epoch }),
  ).finally(() => bar.stop());
}
