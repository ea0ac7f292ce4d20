/** `parry info --model DIR`: layers, input shape, classes and parameter count of a model. */
import { Command } from 'commander';
import { loadClassifier } from '../models/index.js';
import { type CommonOptions, emit, setUpBackend, withCommonOptions } from './common.js';

interface InfoOptions extends CommonOptions {
  model: string;
}

export function infoCommand(): Command {
  const cmd = new Command('info')
    .description('describe a model directory: layers, input shape, classes, parameters')
    .requiredOption(
      '--model <dir>',
      'TF.js LayersModel or GraphModel directory, or an ONNX file (model.onnx)',
    );
  return withCommonOptions(cmd).action((opts: InfoOptions) => runInfo(opts));
}

async function runInfo(opts: InfoOptions): Promise<void> {
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const info = model.info();
  model.dispose?.();
  const result = { command: 'info', model: opts.model, backend, seed: opts.seed, ...info };
  emit(result, opts, () => {
    const rows = info.layers.map(
      (l) =>
        `  ${l.name.padEnd(28)} ${l.className.padEnd(20)} ${JSON.stringify(l.outputShape).padEnd(22)} ${l.params}`,
    );
    return [
      `${opts.model}: ${info.format}, input [${info.inputShape.join(', ')}], ${info.numClasses} classes, bounds [${info.bounds.join(', ')}]`,
      `  ${'layer'.padEnd(28)} ${'type'.padEnd(20)} ${'output'.padEnd(22)} params`,
      ...rows,
      `total parameters: ${info.params}`,
      ...(info.outputWasSoftmax
        ? ['note: the last layer had a softmax; parry reads the logits before it']
        : []),
    ].join('\n');
  });
}
