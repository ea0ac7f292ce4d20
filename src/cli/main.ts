/**
 * The `parry` command. Contract for every sub-command: `--json` prints exactly one JSON object on
 * stdout, progress and logs go to stderr; exit 0 on success, 2 on bad input or options (one line,
 * no stack trace unless --verbose), 1 on internal errors.
 */
import { Command, CommanderError } from 'commander';
import { isParryError, ParryError } from '../errors.js';
import { attackCommand } from './attack.js';
import { auditCommand } from './audit.js';
import { certifyCommand } from './certify.js';
import { defendCommand } from './defend.js';
import { detectCommand } from './detect.js';
import { dpEpsilonCommand } from './dp-epsilon.js';
import { dpaCommand } from './dpa.js';
import { evaluateCommand } from './evaluate.js';
import { exportCommand } from './export.js';
import { infoCommand } from './info.js';
import { inspectCommand } from './inspect.js';
import { invertCommand } from './invert.js';
import { poisonCommand } from './poison.js';
import { predictCommand } from './predict.js';
import { privacyCommand } from './privacy.js';
import { workerCommand } from './queue-worker.js';
import { scanCommand } from './scan.js';
import { schemaCommand } from './schema.js';
import { serveCommand } from './serve.js';
import { stealCommand } from './steal.js';
import { trainCommand } from './train.js';
import { trainDenoiserCommand } from './train-denoiser.js';

export function buildProgram(): Command {
  const program = new Command('parry')
    .description('Adversarial robustness for TensorFlow.js classifiers: attack, defend, certify.')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .exitOverride();
  for (const cmd of [
    trainCommand(),
    infoCommand(),
    predictCommand(),
    attackCommand(),
    certifyCommand(),
    defendCommand(),
    trainDenoiserCommand(),
    detectCommand(),
    evaluateCommand(),
    schemaCommand(),
    exportCommand(),
    poisonCommand(),
    inspectCommand(),
    scanCommand(),
    dpaCommand(),
    dpEpsilonCommand(),
    invertCommand(),
    stealCommand(),
    privacyCommand(),
    serveCommand(),
    auditCommand(),
    workerCommand(),
  ]) {
    program.addCommand(cmd.exitOverride());
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    refuseContradictions(argv);
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return reportError(e, verbose);
  }
}

/** `--x` and `--no-x` together are refused (commander would let the last one win, silently). */
function refuseContradictions(argv: string[]): void {
  const flags = new Set(argv.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]));
  for (const flag of flags) {
    if (flag.startsWith('--no-') && flags.has(`--${flag.slice(5)}`)) {
      throw new ParryError('BAD_OPTION', `--${flag.slice(5)} and ${flag} contradict each other`);
    }
  }
}

function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError) {
    // Commander has already printed its one-line message to stderr.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code === 'commander.help') return 0;
    return 2;
  }
  if (isParryError(e)) {
    process.stderr.write(`parry: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`parry: internal error: ${err.message}\n`);
  if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
