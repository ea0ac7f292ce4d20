/**
 * Example images of an attack run: one PNG per example (clean | adversarial | amplified
 * perturbation) and an `examples.json` index with labels, predictions and perturbation sizes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeExamplePng } from '../data/image-encoding.js';
import type { AttackEvaluation } from '../evaluate/robustness.js';

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Writes the kept examples of `r` into `dir` (created if missing). */
export async function saveAttackExamples(
  dir: string,
  r: AttackEvaluation,
  bounds: readonly [number, number],
  classNames?: string[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const [k, ...shape] = r.examples.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  const name = (c: number) => classNames?.[c] ?? String(c);
  const index = [];
  for (let i = 0; i < k; i++) {
    const file = `example-${String(i).padStart(3, '0')}.png`;
    const amplification = writeExamplePng(
      path.join(dir, file),
      r.examples.x.subarray(i * per, (i + 1) * per),
      r.examples.xAdv.subarray(i * per, (i + 1) * per),
      shape,
      bounds,
    );
    const e = r.perExample[i];
    index.push({
      file,
      panels: ['clean', 'adversarial', 'perturbation'],
      label: name(e.label),
      clean_prediction: name(e.clean),
      adversarial_prediction: name(e.adversarial),
      ...(e.target !== undefined ? { target: name(e.target) } : {}),
      perturbation_norm: e.norm,
      perturbation_amplification: round3(amplification),
    });
  }
  await writeFile(path.join(dir, 'examples.json'), `${JSON.stringify(index, null, 2)}\n`);
}
