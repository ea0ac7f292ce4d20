/**
 * The `parry` command. Contract for every sub-command: `--json` prints exactly one JSON object on
 * stdout, progress and logs go to stderr; exit 0 on success, 2 on bad input or options (one line,
 * no stack trace unless --verbose), 1 on internal errors.
 */
import { Command, CommanderError } from 'commander';
import { isParryError, ParryError } from '../errors.js';

/**
 * Every sub-command, in help order, with a loader: a run imports only the module graph of the
 * command it names (a bad option of `parry dp-epsilon` needs neither TF.js nor fastify), and all of
 * them only for help, a typo (commander suggests the nearest name) or no command.
 */
const COMMANDS: readonly (readonly [string, () => Promise<Command>])[] = [
  ['train', async () => (await import('./train.js')).trainCommand()],
  ['info', async () => (await import('./info.js')).infoCommand()],
  ['predict', async () => (await import('./predict.js')).predictCommand()],
  ['attack', async () => (await import('./attack.js')).attackCommand()],
  ['certify', async () => (await import('./certify.js')).certifyCommand()],
  ['defend', async () => (await import('./defend.js')).defendCommand()],
  ['train-denoiser', async () => (await import('./train-denoiser.js')).trainDenoiserCommand()],
  ['detect', async () => (await import('./detect.js')).detectCommand()],
  ['evaluate', async () => (await import('./evaluate.js')).evaluateCommand()],
  ['schema', async () => (await import('./schema.js')).schemaCommand()],
  ['export', async () => (await import('./export.js')).exportCommand()],
  ['poison', async () => (await import('./poison.js')).poisonCommand()],
  ['inspect', async () => (await import('./inspect.js')).inspectCommand()],
  ['scan', async () => (await import('./scan.js')).scanCommand()],
  ['dpa', async () => (await import('./dpa.js')).dpaCommand()],
  ['dp-epsilon', async () => (await import('./dp-epsilon.js')).dpEpsilonCommand()],
  ['invert', async () => (await import('./invert.js')).invertCommand()],
  ['steal', async () => (await import('./steal.js')).stealCommand()],
  ['privacy', async () => (await import('./privacy.js')).privacyCommand()],
  ['serve', async () => (await import('./serve.js')).serveCommand()],
  ['audit', async () => (await import('./audit.js')).auditCommand()],
  ['worker', async () => (await import('./queue-worker.js')).workerCommand()],
];

/** The names of every sub-command, in help order. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map(([name]) => name);

/**
 * The program with every sub-command, or only `only` when it names one (what a run of that
 * command needs).
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('parry')
    .description('Adversarial robustness for TensorFlow.js classifiers: attack, defend, certify.')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .exitOverride();
  const one = COMMANDS.filter(([name]) => name === only);
  for (const [, load] of one.length === 1 ? one : COMMANDS) {
    program.addCommand((await load()).exitOverride());
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    refuseContradictions(argv);
    // The sub-command is the first word (parry has no options of its own that take a value).
    const program = await buildProgram(argv.find((a) => !a.startsWith('-')));
    await program.parseAsync(argv, { from: 'user' });
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
