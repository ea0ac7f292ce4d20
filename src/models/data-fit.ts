/**
 * Whether a data set can be run through a classifier, checked once at the boundary (CLI, config):
 * examples of the model's input shape, at least one of them, and labels the model can output.
 * A set with a label the model has no class for would otherwise be scored as always wrong.
 */
import { ParryError } from '../errors.js';
import type { Classifier } from './classifier.js';

/** What `checkDataFits` reads of a data set (a `Dataset` has it). */
export interface LabelledExamples {
  name: string;
  shape: readonly number[];
  labels: ArrayLike<number>;
}

/** Throws BAD_INPUT naming the data set unless it fits `model` (see above). */
export function checkDataFits(
  model: Pick<Classifier, 'inputShape' | 'numClasses'>,
  data: LabelledExamples,
): void {
  const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
  const example = data.shape.slice(1);
  if (
    example.length !== model.inputShape.length ||
    example.some((d, i) => d !== model.inputShape[i])
  ) {
    throw new ParryError(
      'BAD_INPUT',
      `${data.name}: examples of shape ${fmt(example)} do not fit the model's input ${fmt(model.inputShape)}`,
    );
  }
  if (data.shape[0] === 0) throw new ParryError('BAD_INPUT', `${data.name} has no examples`);
  let max = -1;
  let at = -1;
  for (let i = 0; i < data.labels.length; i++) {
    if (data.labels[i] > max) [max, at] = [data.labels[i], i];
  }
  if (max >= model.numClasses) {
    throw new ParryError(
      'BAD_INPUT',
      `${data.name}: label ${max} (example ${at}) is not a class of the model, which has ${model.numClasses}`,
    );
  }
}
