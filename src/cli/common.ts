/**
 * What every parry command shares: the common options (--backend, --json, --verbose, --seed,
 * --workers), strict number parsing, the one-JSON-object-on-stdout rule and log lines on stderr
 * (progress bars: progress.ts).
 */

import { Command, InvalidArgumentError, Option } from 'commander';
import { DATASETS, type Dataset, loadDataset, sliceDataset } from '../data/index.js';
import { initBackend } from '../engine/backend.js';
import { ParryError } from '../errors.js';
import { ENGINE_CHOICES, type EngineChoice, enginesUsed } from '../models/index.js';

export interface CommonOptions {
  backend?: string;
  engine?: EngineChoice;
  json?: boolean;
  verbose?: boolean;
  seed: number;
  workers?: number;
}

/** Adds the options every command takes. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--backend <name>',
        'tfjs backend: wasm (default), cpu, or any registered one',
      ).env('PARRY_BACKEND'),
    )
    .addOption(engineOption())
    .option('--json', 'print exactly one JSON object on stdout')
    .option('--verbose', 'print stack traces on errors')
    .option('--seed <n>', 'random seed (recorded in every result)', parseUint32, 0)
    .option('--workers <n>', 'worker threads (default: one per core)', parsePositiveInt);
}

/** `--engine auto|ort|tfjs|wasm` (env PARRY_ENGINE; default auto). */
export function engineOption(): Option {
  return new Option(
    '--engine <name>',
    'logits and gradients: ort (ONNX Runtime, native), tfjs (tfjs ops on --backend; alias wasm), ' +
      'or auto: ort when the model has a gradient rule for every op',
  )
    .choices([...ENGINE_CHOICES])
    .default('auto')
    .env('PARRY_ENGINE');
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`must be a positive integer, got '${value}'`);
  }
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`must be a non-negative integer, got '${value}'`);
  }
  return n;
}

export function parseUint32(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n > 0xffffffff) {
    throw new InvalidArgumentError(`must be an integer in [0, 4294967295], got '${value}'`);
  }
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`must be a positive number, got '${value}'`);
  }
  return n;
}

export function parseNonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`must be a number >= 0, got '${value}'`);
  }
  return n;
}

/** Parses "lo,hi" into bounds. */
export function parseBounds(value: string): [number, number] {
  const parts = value.split(',').map((s) => Number(s));
  if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[0] < parts[1])) {
    throw new InvalidArgumentError(`must be "lo,hi" with lo < hi, got '${value}'`);
  }
  return [parts[0], parts[1]];
}

/**
 * Initialises the backend the command asked for and returns its name; the engine goes to
 * $PARRY_ENGINE, which every model load (worker threads' included) reads.
 */
export function setUpBackend(opts: CommonOptions): Promise<string> {
  process.env.PARRY_ENGINE = opts.engine ?? 'auto';
  return initBackend(opts.backend);
}

/** Writes the command's result: one JSON object with --json, readable lines otherwise. */
export function emit(result: Record<string, unknown>, opts: CommonOptions, human: () => string) {
  // The engine that ran the models is part of the record (engines differ in the last digits);
  // a result that names its own engine keeps it.
  const engines = enginesUsed();
  const record =
    engines.length > 0 && !('engine' in result) ? { ...result, engine: engines.join('+') } : result;
  if (opts.json) process.stdout.write(`${JSON.stringify(record)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** Progress and log lines go to stderr so stdout stays clean for --json. */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A fraction as a percentage for the human-readable lines; 'n/a' when there is none. */
export function pct(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? 'n/a' : `${(v * 100).toFixed(digits)}%`;
}

export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A ParryError for an option value commander cannot check on its own. */
export function badOption(message: string): ParryError {
  return new ParryError('BAD_OPTION', message);
}

/** A command on a model and a data set: `--model DIR` (required) and `--dataset NAME`. */
export function modelCommand(name: string, description: string, modelHelp = MODEL_HELP): Command {
  return new Command(name)
    .description(description)
    .requiredOption('--model <dir>', modelHelp)
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset');
}

const MODEL_HELP = 'TF.js LayersModel or GraphModel directory, or an ONNX file (model.onnx)';

/** Help text of --dataset, from the data registry. */
export const DATASET_HELP = `data set: ${DATASETS.map((d) => d.usage).join(' | ')}`;

/**
 * test[offset, offset + n) of `dataset` (`--offset`, `--n`); an offset past the end is bad input,
 * and so is an `n` the user gave (`nGiven`) that runs past it (a default `n` is cut to fit).
 */
export function testSlice(
  dataset: string,
  offset: number,
  n: number,
  seed: number,
  nGiven = false,
): Dataset {
  const test = loadDataset(dataset, 'test', { seed });
  const size = test.shape[0];
  if (offset >= size) {
    throw badOption(`--offset ${offset} leaves no examples: ${test.name} has ${size}`);
  }
  if (nGiven && offset + n > size) {
    throw badOption(
      `--n ${n} runs past the end of ${test.name}: it has ${size} examples${offset > 0 ? ` (--offset ${offset})` : ''}`,
    );
  }
  return sliceDataset(test, offset, offset + n);
}

/** Whether the user gave option `key` (not its default). */
export function optionGiven(cmd: Command, key: string): boolean {
  const source = cmd.getOptionValueSource(key);
  return source === 'cli' || source === 'env';
}
