/**
 * `parry invert`: MI-Face model inversion (src/attacks/privacy/inversion). One reconstruction per
 * class, written as `inversion-K.png` beside `mean-K.png`, the class mean of the training split
 * of `--dataset` (the first `--n` examples), and `inversion.json` with the scores: the target's
 * confidence in the class and the L2 distance to the class mean against the distance to the
 * other classes' means (a reconstruction nearest its own class mean is recognisable).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import {
  classMeans,
  miFace,
  miFaceSchema,
  scoreInversions,
} from '../attacks/privacy/inversion/index.js';
import { imagePng } from '../data/image-encoding.js';
import { firstExamples, loadDataset } from '../data/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { ParryError } from '../errors.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import { parseWith } from '../options.js';
import {
  type CommonOptions,
  emit,
  modelCommand,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface InvertOptions extends CommonOptions {
  model: string;
  dataset: string;
  classes?: number[];
  n?: number;
  out: string;
}

const INVERSION = [
  {
    name: 'mi-face',
    description: 'MI-Face (Fredrikson et al. 2015)',
    schema: miFaceSchema,
    requires: ['gradients' as const],
  },
];

function parseClasses(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (!parts.every((s) => /^\d+$/.test(s))) {
    throw new InvalidArgumentError(`must be class indices like 0,1,2, got '${value}'`);
  }
  return [...new Set(parts.map(Number))];
}

export function invertCommand(): Command {
  const cmd = modelCommand(
    'invert',
    'reconstruct one input per class from a model (MI-Face model inversion), scored against the class means',
  )
    .option('--classes <list>', 'classes to invert, e.g. 0,3,7 (default: all)', parseClasses)
    .option(
      '--n <n>',
      'class means from the first N training examples (default: all)',
      parsePositiveInt,
    )
    .requiredOption('--out <dir>', 'write inversion-K.png, mean-K.png and inversion.json here');
  const keys = addEntryOptions(cmd, INVERSION, ['seed']);
  return withCommonOptions(cmd).action(async (opts: InvertOptions) => {
    checkOutputDir(opts.out, '--out');
    const given = { ...givenEntryOptions(cmd, keys), seed: opts.seed };
    await withFlagNames('miFace', () => invert(opts, given), keys);
  });
}

async function invert(opts: InvertOptions, options: Record<string, unknown>): Promise<void> {
  const config = parseWith('miFace', miFaceSchema, options);
  await setUpBackend(opts);
  let data = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  if (opts.n !== undefined) data = firstExamples(data, opts.n, '--n');
  const model = await loadClassifier(opts.model);
  const bar = progressBar('invert |{bar}| {value}/{total} steps | ETA {eta_formatted}');
  try {
    checkDataFits(model, data);
    const [h, w, ch] = model.inputShape;
    if (model.inputShape.length !== 3 || (ch !== 1 && ch !== 3)) {
      throw new ParryError(
        'BAD_INPUT',
        `invert: PNGs need image inputs [h, w, 1 or 3], the model takes [${model.inputShape.join(', ')}]`,
      );
    }
    const classes = opts.classes ?? Array.from({ length: model.numClasses }, (_, k) => k);
    const started = performance.now();
    bar.start(config.steps, 0);
    const r = await miFace(model, classes, config, { onProgress: (done) => bar.update(done) });
    bar.stop();
    const means = classMeans(data, model.numClasses);
    const scores = await scoreInversions(model, r.x, classes, means);
    const pixels = await r.x.data();
    r.x.dispose();
    const size = h * w * ch;
    const perClass = scores.map((s, i) => ({
      class: s.class,
      ...(model.classNames ? { name: model.classNames[s.class] } : {}),
      confidence: round(s.confidence, 6),
      distance_own: round(s.distanceOwn, 4),
      distance_others: round(s.distanceOthers, 4),
      nearest_class: s.nearestClass,
      recognisable: s.nearestClass === s.class,
      cost: round(r.cost[i], 6),
      steps: r.steps[i],
      stopped: r.stopped[i],
      png: `inversion-${s.class}.png`,
      mean_png: means.means[s.class] === null ? null : `mean-${s.class}.png`,
    }));
    const record = {
      command: 'invert',
      method: 'mi-face',
      model: opts.model,
      dataset: data.name,
      mean_examples: data.shape[0],
      options: r.config,
      seed: opts.seed,
      per_class: perClass,
      recognisable: perClass.filter((c) => c.recognisable).length,
      mean_confidence: round(scores.reduce((a, s) => a + s.confidence, 0) / scores.length, 6),
      seconds: round((performance.now() - started) / 1000, 3),
      out: opts.out,
    };
    await writeFolder(opts.out, async (dir) => {
      classes.forEach((k, i) => {
        const image = pixels.subarray(i * size, (i + 1) * size);
        writeFileSync(
          path.join(dir, `inversion-${k}.png`),
          imagePng(image, [h, w, ch], model.bounds),
        );
        const mean = means.means[k];
        if (mean !== null) {
          writeFileSync(path.join(dir, `mean-${k}.png`), imagePng(mean, [h, w, ch], model.bounds));
        }
      });
      writeFileSync(path.join(dir, 'inversion.json'), `${JSON.stringify(record, null, 2)}\n`);
    });
    emit(record, opts, () =>
      [
        `mi-face: ${record.recognisable} of ${classes.length} reconstructions nearest their own class mean; wrote ${opts.out}`,
        ...perClass.map(
          (c) =>
            `  class ${c.class}${c.name ? ` (${c.name})` : ''}: confidence ${pct(c.confidence)}, distance to its mean ${c.distance_own} vs ${c.distance_others} to the others (nearest: ${c.nearest_class}), ${c.steps} steps (${c.stopped})`,
        ),
      ].join('\n'),
    );
  } finally {
    bar.stop();
    model.dispose();
  }
}
