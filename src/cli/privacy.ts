/**
 * `parry privacy`: how much a model trained on a data set leaks its membership
 * (src/evaluate/privacy.ts). Trains a target on a random half of a pool drawn from the training
 * split of `--dataset` and K reference models on other random halves (seeded, recorded), runs the
 * membership attacks on the raw outputs and behind each `--output` defence, and the label-only
 * signals; prints AUC and TPR at 0.1% / 1% FPR per attack. `--out DIR` writes privacy.json.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { membershipAttackNames, membershipLabel } from '../attacks/privacy/membership/index.js';
import { loadDataset } from '../data/index.js';
import { TRAINING_METHODS } from '../defenses/training/registry.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { withJobLabel } from '../engine/queue/label.js';
import { redactUrl } from '../engine/queue/redis.js';
import { DEFAULT_MEMBERSHIP_ATTACKS } from '../evaluate/privacy-config.js';
import { type PrivacyResults, privacyEvaluation } from '../evaluate/privacy-stage.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  parseNonNegativeInt,
  parsePositiveInt,
  parsePositiveNumber,
  pct,
  setUpBackend,
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
import { addDpOptions, type DpFlags, dpOptions } from './train.js';

interface PrivacyOptions extends CommonOptions, DpFlags, QueueFlags {
  optimizer: 'adam' | 'sgd' | 'momentum';
  defense: string;
  dataset: string;
  pool?: number;
  population?: number;
  referenceModels: number;
  arch: string;
  epochs: number;
  batchSize: number;
  lr: number;
  queries: 'none' | 'flip' | 'flip-shift';
  attacks: { name: string; params: Record<string, unknown> }[];
  output: string[];
  labelOnly: string[];
  labelOnlyN?: number;
  out?: string;
}

const SIGNALS = ['augmentation', 'noise', 'boundary'] as const;

function list(known: readonly string[], what: string) {
  return (value: string): string[] => {
    const names = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const n of names) {
      if (!known.includes(n)) {
        throw new InvalidArgumentError(`unknown ${what} '${n}' (known: ${known.join(', ')})`);
      }
    }
    if (names.length === 0) throw new InvalidArgumentError(`no ${what} given`);
    return names;
  };
}

/**
 * `loss,lira:fixedVariance=true,mode=offline,rmia`: attacks in order, each with its options (a
 * `key=value` token without a colon belongs to the attack before it). Values are numbers, booleans
 * or strings; the attack's schema checks them.
 */
function attackList(value: string): { name: string; params: Record<string, unknown> }[] {
  const known = membershipAttackNames();
  const out: { name: string; params: Record<string, unknown> }[] = [];
  for (const token of value.split(',').map((t) => t.trim())) {
    if (token === '') continue;
    const colon = token.indexOf(':');
    let pair = token;
    if (colon >= 0 || !token.includes('=')) {
      const name = colon >= 0 ? token.slice(0, colon) : token;
      if (!known.includes(name))
        throw new InvalidArgumentError(
          `unknown membership attack '${name}' (known: ${known.join(', ')})`,
        );
      out.push({ name, params: {} });
      pair = colon >= 0 ? token.slice(colon + 1) : '';
    } else if (out.length === 0) {
      throw new InvalidArgumentError(`'${token}' comes before any attack name`);
    }
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    if (eq <= 0 || key === '' || raw === '')
      throw new InvalidArgumentError(`expected key=value, got '${pair}'`);
    out[out.length - 1].params[key] =
      raw === 'true' || raw === 'false'
        ? raw === 'true'
        : /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw)
          ? Number(raw)
          : raw;
  }
  if (out.length === 0) throw new InvalidArgumentError('no membership attack given');
  return out;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function privacyCommand(): Command {
  const cmd = new Command('privacy')
    .description(
      'membership inference: a target and K reference models on random halves of a data pool, then loss, confidence, modified-entropy, shadow, LiRA, RMIA and label-only attacks (AUC, TPR at 0.1% and 1% FPR)',
    )
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .option(
      '--pool <n>',
      'candidates drawn from the training split; the target trains on half (default: 10000, or 3/4 of a smaller split)',
      parsePositiveInt,
    )
    .option(
      '--population <n>',
      'population samples for RMIA, outside the pool (default: 2000, or the rest of a smaller split)',
      parseNonNegativeInt,
    )
    .option('--reference-models <k>', 'reference models besides the target', parsePositiveInt, 16)
    .option('--arch <name>', 'architecture of every model', 'cnn-small')
    .option('--epochs <n>', 'training epochs of every model', parsePositiveInt, 20)
    .option('--batch-size <n>', 'training batch size', parsePositiveInt, 128)
    .option('--lr <x>', 'learning rate', parsePositiveNumber, 0.001)
    .addOption(
      new Option('--optimizer <name>', 'optimizer of every model')
        .choices(['adam', 'sgd', 'momentum'])
        .default('adam'),
    )
    .addOption(
      new Option(
        '--defense <name>',
        'training method of every model (target and references alike), with its options below',
      )
        .choices(TRAINING_METHODS.filter((m) => m.kind !== 'ibp').map((m) => m.name))
        .default('none'),
    )
    .option('--queries <set>', 'augmented queries per example: none, flip, flip-shift', 'flip')
    .option(
      '--attacks <list>',
      `membership attacks, comma-separated, each with options as key=value after a colon (${membershipAttackNames().join(', ')}), e.g. 'loss,lira:fixedVariance=true,rmia'`,
      attackList,
      DEFAULT_MEMBERSHIP_ATTACKS.map((name) => ({ name, params: {} })),
    )
    .option(
      '--output <chain>',
      "re-run the attacks behind this output defence chain (repeatable), e.g. 'labels-only', 'top-k:k=1', 'rounding:decimals=1'",
      collect,
    )
    .option(
      '--label-only <list>',
      `label-only signals, comma-separated (${SIGNALS.join(', ')})`,
      list(SIGNALS, 'label-only signal'),
      [],
    )
    .option(
      '--label-only-n <n>',
      'candidates the label-only signals query (default: the whole pool)',
      parsePositiveInt,
    )
    .option('--out <dir>', 'write privacy.json here');
  const keys = addEntryOptions(
    cmd,
    TRAINING_METHODS.filter((m) => m.kind !== 'ibp'),
    ['seed'],
  );
  addDpOptions(cmd);
  addQueueOptions(cmd, "the models' training (one job per model)");
  return withCommonOptions(cmd).action(async (opts: PrivacyOptions) => {
    const dp = dpOptions(opts);
    checkQueueFlags('privacy', opts, opts.workers);
    if (opts.out !== undefined) checkOutputDir(opts.out, '--out');
    if (!['none', 'flip', 'flip-shift'].includes(opts.queries)) {
      throw new InvalidArgumentError(
        `--queries must be none, flip or flip-shift, got '${opts.queries}'`,
      );
    }
    const backend = await setUpBackend(opts);
    const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
    const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
    const n = train.shape[0];
    const poolSize = opts.pool ?? Math.min(10000, Math.floor((3 * n) / 4));
    const population = opts.population ?? Math.min(2000, Math.max(0, n - poolSize));
    const config = {
      pool: poolSize,
      population,
      models: {
        referenceModels: opts.referenceModels,
        arch: opts.arch,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        lr: opts.lr,
        optimizer: opts.optimizer,
        seed: opts.seed,
      },
      training: {
        defense: opts.defense,
        params: givenEntryOptions(cmd, keys),
        ...(dp ? { dp } : {}),
      },
      queries: opts.queries,
      attacks: opts.attacks,
      outputs: ['none', ...(opts.output ?? [])],
      labelOnly: opts.labelOnly.map((signal) => ({
        signal: signal as (typeof SIGNALS)[number],
        ...(opts.labelOnlyN !== undefined ? { n: opts.labelOnlyN } : {}),
      })),
      seed: opts.seed,
    };
    const queue =
      opts.queue === undefined
        ? undefined
        : await openQueue('privacy', opts.queue, opts.attempts, backend);
    // The models train as one job each: on the queue's workers, or on one thread per core here.
    const workers = queue ? 0 : chooseWorkers(opts.workers);
    const pool =
      queue?.executor ?? (workers > 1 ? new WorkerPool({ workers, backend }) : undefined);
    const bar = progressBar('privacy {stage} |{bar}| {value}/{total} | ETA {eta_formatted}');
    let stage = '';
    let r: PrivacyResults;
    try {
      r = await withFlagNames(
        opts.defense,
        () =>
          withJobLabel('privacy model', () =>
            privacyEvaluation(train, test, config, {
              pool,
              onProgress: (p) => {
                // With a queue, its own bar counts the training jobs.
                if (queue && p.stage === 'train') return;
                if (p.stage !== stage) {
                  if (stage !== '') bar.stop();
                  stage = p.stage;
                  bar.start(p.total, 0, { stage: p.stage });
                }
                bar.update(p.done, { stage: p.stage });
              },
            }),
          ),
        keys,
      );
    } catch (e) {
      await queue?.close(false);
      throw jobFailure('privacy', e);
    } finally {
      bar.stop();
      queue?.stopBar();
      if (!queue) await pool?.close();
    }
    await queue?.close(true);
    const record = {
      command: 'privacy',
      ...r,
      ...(opts.queue !== undefined ? { queue: redactUrl(opts.queue) } : {}),
      dataset: opts.dataset,
      seed: opts.seed,
    };
    if (opts.out !== undefined) {
      await writeFolder(opts.out, async (dir) => {
        writeFileSync(path.join(dir, 'privacy.json'), `${JSON.stringify(record)}\n`);
      });
    }
    emit(record, opts, () => {
      const lines = [
        `privacy: target ${r.config.models.arch} on ${r.target.members} of ${r.pool} pool examples (train accuracy ${pct(r.target.trainAccuracy)}, test ${pct(r.target.testAccuracy)}); ${r.config.models.referenceModels} reference models; ${r.queries} queries per example`,
      ];
      const t = r.target.training as { defense?: string; epsilon?: number; delta?: number };
      if (t.defense === 'dp-sgd')
        lines.push(
          `every model trained with DP-SGD: the target's ε = ${t.epsilon?.toFixed(2)} at δ = ${t.delta}`,
        );
      else if (t.defense !== undefined) lines.push(`every model trained with ${t.defense}`);
      const row = (a: {
        attack: string;
        options: Record<string, unknown>;
        metrics: { auc: number; tprAt: Record<string, number> };
      }) =>
        `  ${membershipLabel(a.attack, a.options).padEnd(26)} AUC ${a.metrics.auc.toFixed(3)}  TPR@0.1%FPR ${pct(a.metrics.tprAt['0.001'])}  TPR@1%FPR ${pct(a.metrics.tprAt['0.01'])}`;
      for (const o of r.outputs) {
        lines.push(`output: ${o.output}`);
        lines.push(...o.attacks.map(row));
      }
      if (r.labelOnly.length > 0) {
        lines.push('label only:');
        for (const a of r.labelOnly)
          lines.push(`${row(a)}  (${a.candidates} candidates, ${a.queries} queries each)`);
      }
      for (const o of r.outputs) {
        for (const a of o.attacks) {
          const name = membershipLabel(a.attack, a.options);
          lines.push(...a.warnings.map((w) => `warning: ${o.output}, ${name}: ${w}`));
        }
      }
      for (const a of r.labelOnly)
        lines.push(...a.warnings.map((w) => `warning: ${a.attack}: ${w}`));
      return lines.join('\n');
    });
  });
}
