import { type Command, InvalidArgumentError, Option } from 'commander';
import { type AttackEntry, attackNames, findAttack } from '../attacks/registry.js';
import { FPR_RULE, isValidFpr } from '../defenses/detection/detector.js';
import {
  checkDetectorDir,
  DETECTORS,
  type DetectorName,
  type SavedDetectorFile,
  saveDetector,
} from '../defenses/detection/index.js';
import { DETECTOR_SPLIT, isSupervised } from '../defenses/detection/protocol.js';
import { type DetectOptions, evaluateDetectors } from '../evaluate/detection.js';
import { NORMS } from '../objectives/threat-model.js';
import {
  badOption,
  type CommonOptions,
  emit,
  log,
  modelCommand,
  parseNonNegativeNumber,
  parsePositiveInt,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';

/** The library's options, with the detectors and attacks as the comma lists the flags take. */
type DetectCliOptions = CommonOptions &
  Omit<DetectOptions, 'detectors' | 'attacks' | 'seed' | 'workers'> & {
    detector: string;
    attacks: string;
    save?: string;
  };

export function detectCommand(): Command {
  const cmd = modelCommand(
    'detect',
    'fit an adversarial-example detector and report ROC AUC and TPR at a fixed FPR',
    'TF.js LayersModel directory (Sequential)',
  )
    .requiredOption(
      '--detector <list>',
      `comma-separated detectors, or all: ${DETECTORS.map((d) => `${d.name}: ${d.description}`).join('; ')}`,
    )
    .option('--attacks <list>', `comma-separated attacks (${attackNames().join(', ')})`, 'fgsm,pgd')
    .option('--fpr <a>', 'false-positive rate the threshold is calibrated at', parseFpr, 0.05)
    .option('--eps <e>', 'perturbation budget', parseNonNegativeNumber, 0.1)
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORMS]).default('linf'))
    .option('--steps <k>', 'iterations of iterative attacks', parsePositiveInt)
    .option(
      '--joint-steps <k>',
      'iterations of the joint adaptive attack per λ',
      parsePositiveInt,
      20,
    )
    .option('--no-joint', 'skip the joint adaptive attack')
    .option('--n <n>', 'test examples evaluated', parsePositiveInt, 200)
    .option(
      '--fit-n <k>',
      'training examples [0, k) the detector is fitted on',
      parsePositiveInt,
      DETECTOR_SPLIT.fitExamples,
    )
    .option(
      '--calibration-n <k>',
      'the next training examples, which set the threshold at --fpr',
      parsePositiveInt,
      DETECTOR_SPLIT.calibrationExamples,
    )
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128)
    .option(
      '--save <dir>',
      'also write the fitted detector with its threshold to this folder (one detector; for parry serve)',
    );
  return withCommonOptions(cmd).action((opts: DetectCliOptions) => runDetect(opts));
}

function parseFpr(value: string): number {
  const v = Number(value);
  if (value.trim() === '' || !isValidFpr(v)) {
    throw new InvalidArgumentError(`must be ${FPR_RULE}, got '${value}'`);
  }
  return v;
}

function parseDetectors(list: string): DetectorName[] {
  const known = DETECTORS.map((d) => d.name as DetectorName);
  if (list.trim() === 'all') return known;
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw badOption('--detector: give at least one detector');
  for (const name of names) {
    if (!known.includes(name as DetectorName))
      throw badOption(
        `--detector: unknown detector '${name}' (choose from ${known.join(', ')}, or all)`,
      );
  }
  if (new Set(names).size !== names.length)
    throw badOption(`--detector: a detector is listed twice in '${list}'`);
  return names as DetectorName[];
}

function parseAttacks(list: string): AttackEntry[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw badOption('--attacks: give at least one attack');
  return names.map((name) => {
    const a = findAttack(name);
    if (a === undefined) {
      throw badOption(
        `--attacks: unknown attack '${name}' (choose from ${attackNames().join(', ')})`,
      );
    }
    return a;
  });
}

async function runDetect(opts: DetectCliOptions): Promise<void> {
  const detectors = parseDetectors(opts.detector);
  const attacks = parseAttacks(opts.attacks);
  if (opts.save !== undefined) {
    if (detectors.length !== 1)
      throw badOption(
        `--save: give one detector, got ${detectors.length} (${detectors.join(', ')})`,
      );
    checkDetectorDir(opts.save, '--save');
  }
  const backend = await setUpBackend(opts);
  let saved: SavedDetectorFile | undefined;
  const onFitted: DetectOptions['onFitted'] = async (name, detector, model, calibration) => {
    saved = await saveDetector(opts.save!, detector, model, {
      fpr: opts.fpr,
      calibrationScores: detector.score(calibration),
      options: { seed: opts.seed },
      provenance: {
        dataset: opts.dataset,
        fitExamples: opts.fitN,
        calibrationExamples: opts.calibrationN,
        ...(isSupervised(name)
          ? { attacks: attacks.map((a) => a.name), eps: opts.eps, norm: opts.norm }
          : {}),
      },
    });
  };
  const r = await evaluateDetectors(
    { ...opts, detectors, attacks, ...(opts.save !== undefined ? { onFitted } : {}) },
    log,
  );
  const result = {
    command: 'detect',
    model: opts.model,
    ...r,
    ...(saved
      ? {
          saved: {
            dir: opts.save,
            threshold: saved.threshold,
            model_hash: saved.model.contentHash,
          },
        }
      : {}),
    backend,
  };
  const reports = (r.detectors as Record<string, unknown>[] | undefined) ?? [r];
  const r0 = r as { dataset?: string; n?: number };
  emit(result, opts, () =>
    reports
      .flatMap((rep) => {
        const r = rep as {
          detector: string;
          threshold: number;
          clean_fpr: number;
          attacks: object;
          joint?: object;
        };
        return [
          `${r.detector} detector on ${r0.dataset}, ${r0.n} examples, threshold ${round(r.threshold)} at FPR ${opts.fpr} (held-out FPR ${round(r.clean_fpr)})`,
          ...Object.entries({ ...r.attacks, ...(r.joint ? { joint: r.joint } : {}) }).map(
            ([name, v]) => {
              const s = v as Record<string, number>;
              return `  ${name}: AUC ${round(s.auc)}, TPR ${round(s.tpr)}, attack success ${round(s.success_rate)}, robust accuracy ${round(s.robust_accuracy)} (with detector ${round(s.robust_accuracy_with_detector)})`;
            },
          ),
        ];
      })
      .concat(
        saved
          ? [
              `saved to ${opts.save} (threshold ${saved.threshold}, model content hash ${saved.model.contentHash.slice(0, 16)}…)`,
            ]
          : [],
      )
      .join('\n'),
  );
}
