/**
 * `parry dp-epsilon`: the (ε, δ) of DP-SGD without training, from the RDP accountant of the
 * sampled Gaussian mechanism (src/defenses/privacy/rdp-accountant.ts): noise multiplier σ, sample
 * rate q and a step count (`--steps T`, or `--epochs E` for ⌈E/q⌉ steps). Prints the classic
 * conversion and the tighter one of Balle et al. 2020 beside it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_ORDERS, epsilonFor, stepsForEpochs } from '../defenses/privacy/index.js';
import {
  badOption,
  type CommonOptions,
  emit,
  parsePositiveInt,
  parsePositiveNumber,
} from './common.js';

interface DpEpsilonOptions extends Pick<CommonOptions, 'json' | 'verbose'> {
  noiseMultiplier: number;
  sampleRate: number;
  steps?: number;
  epochs?: number;
  delta: number;
  orders?: number[];
}

function parseSampleRate(value: string): number {
  const q = Number(value);
  if (value.trim() === '' || !(q > 0 && q <= 1))
    throw new InvalidArgumentError(`must be in (0, 1], got '${value}'`);
  return q;
}

function parseDelta(value: string): number {
  const d = Number(value);
  if (value.trim() === '' || !(d > 0 && d < 1))
    throw new InvalidArgumentError(`must be in (0, 1), got '${value}'`);
  return d;
}

function parseOrders(value: string): number[] {
  const orders = value.split(',').map((s) => Number(s));
  if (orders.length === 0 || !orders.every((a) => Number.isFinite(a) && a > 1))
    throw new InvalidArgumentError(`must be a comma-separated list of numbers > 1, got '${value}'`);
  return orders;
}

export function dpEpsilonCommand(): Command {
  return new Command('dp-epsilon')
    .description(
      'ε of DP-SGD at δ without training: RDP accountant of the sampled Gaussian mechanism (classic and Balle et al. 2020 conversions)',
    )
    .requiredOption(
      '--noise-multiplier <s>',
      'σ: noise std over the clipping norm',
      parsePositiveNumber,
    )
    .requiredOption(
      '--sample-rate <q>',
      'q: probability an example is in a step (batch / n)',
      parseSampleRate,
    )
    .option('--steps <t>', 'optimizer steps', parsePositiveInt)
    .option('--epochs <e>', 'epochs instead of --steps: ⌈e / q⌉ steps', parsePositiveNumber)
    .requiredOption('--delta <d>', 'δ of the (ε, δ) guarantee', parseDelta)
    .option(
      '--orders <list>',
      `RDP orders (default: ${DEFAULT_ORDERS[0]} … 63, 128, 256, 512, as TF Privacy)`,
      parseOrders,
    )
    .option('--json', 'print exactly one JSON object on stdout')
    .option('--verbose', 'print stack traces on errors')
    .action((opts: DpEpsilonOptions) => {
      if ((opts.steps === undefined) === (opts.epochs === undefined))
        throw badOption('dp-epsilon: give exactly one of --steps and --epochs');
      const steps = opts.steps ?? stepsForEpochs(opts.epochs!, opts.sampleRate);
      const r = epsilonFor({
        noiseMultiplier: opts.noiseMultiplier,
        sampleRate: opts.sampleRate,
        steps,
        delta: opts.delta,
        orders: opts.orders,
      });
      const orders = opts.orders ?? DEFAULT_ORDERS;
      const atEdge = (a: number) => a === Math.min(...orders) || a === Math.max(...orders);
      const result = {
        command: 'dp-epsilon',
        noise_multiplier: opts.noiseMultiplier,
        sample_rate: opts.sampleRate,
        steps,
        ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
        delta: opts.delta,
        epsilon: r.epsilon,
        order: r.order,
        epsilon_balle: r.epsilonBalle,
        order_balle: r.orderBalle,
        orders: opts.orders ?? 'default',
        // An optimum on the grid's edge: a wider grid may give a smaller ε.
        order_at_edge: atEdge(r.order) || atEdge(r.orderBalle),
      };
      emit(result, { ...opts, seed: 0 }, () =>
        [
          `ε = ${r.epsilon.toFixed(2)} at δ = ${opts.delta} (classic RDP conversion, order ${r.order})`,
          `ε = ${r.epsilonBalle.toFixed(2)} (Balle et al. 2020 conversion, order ${r.orderBalle})`,
          `σ ${opts.noiseMultiplier}, q ${opts.sampleRate}, ${steps} steps`,
          ...(result.order_at_edge
            ? ['note: the best order is at the edge of the grid; try wider --orders']
            : []),
        ].join('\n'),
      );
    });
}
