/**
 * `parry invert` through the built CLI on the bundled MLP: one JSON object, the PNGs beside the
 * class means (the mean image against a float64 mean of the same examples, the reconstruction
 * against the distance the record reports), inversion.json equal to the record; bad input as one
 * line, exit 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { firstExamples, loadDataset } from '../../src/data/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-invert');
afterAll(() => tmp.cleanup());
const model = 'models/fmnist-mlp';

/** The grey values of a PNG written with zoom 4, one per image pixel, in [0, 1]. */
function pixels(file: string): number[] {
  const png = PNG.sync.read(readFileSync(file));
  const out: number[] = [];
  for (let i = 0; i < png.height / 4; i++) {
    for (let j = 0; j < png.width / 4; j++)
      out.push(png.data[(4 * i * png.width + 4 * j) * 4] / 255);
  }
  return out;
}

describe('parry invert', () => {
  it('writes a reconstruction and the class mean per class, and the scores', () => {
    const out = path.join(tmp.root, 'inv');
    const r = parry(
      'invert',
      '--model',
      model,
      '--classes',
      '1,7',
      '--n',
      '300',
      '--steps',
      '15',
      '--lr',
      '0.05',
      '--tv',
      '0.01',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(1);
    const record = JSON.parse(lines[0]);
    expect(record.command).toBe('invert');
    expect(record.options).toMatchObject({ steps: 15, lr: 0.05, tv: 0.01, score: 'probability' });
    expect(record.mean_examples).toBe(300);
    expect(record.per_class.map((c: { class: number }) => c.class)).toEqual([1, 7]);
    const { engine: _, ...written } = record;
    expect(JSON.parse(readFileSync(path.join(out, 'inversion.json'), 'utf8'))).toEqual(written);

    const data = firstExamples(loadDataset('fashion-mnist-subset', 'train'), 300);
    for (const c of record.per_class) {
      expect(c.steps).toBeLessThanOrEqual(15);
      expect(c.recognisable).toBe(c.nearest_class === c.class);
      // The class mean, in float64 over the same 300 examples, against the mean PNG.
      const mean = new Float64Array(784);
      let count = 0;
      data.labels.forEach((label, i) => {
        if (label !== c.class) return;
        count++;
        for (let j = 0; j < 784; j++) mean[j] += data.x[i * 784 + j];
      });
      const meanPng = pixels(path.join(out, c.mean_png));
      expect(meanPng.length).toBe(784);
      for (const [j, v] of meanPng.entries()) {
        expect(Math.abs(v - mean[j] / count)).toBeLessThan(0.5 / 255 + 1e-6);
      }
      // The reconstruction's PNG, 8-bit, is within quantisation of the distance reported.
      const image = pixels(path.join(out, c.png));
      const d = Math.sqrt(image.reduce((s, v, j) => s + (v - mean[j] / count) ** 2, 0));
      expect(Math.abs(d - c.distance_own)).toBeLessThan(0.06);
    }
  });

  it('refuses bad input with one line and exit 2', () => {
    const out = path.join(tmp.root, 'bad');
    const base = ['invert', '--model', model, '--out', out, '--steps', '2'];
    expectBadInput(parry(...base, '--classes', '12'), /class 12 is not a class of the model/);
    expectBadInput(parry(...base, '--classes', 'a,b'), /--classes.*must be class indices/);
    expectBadInput(parry(...base, '--lr', '-1'), /miFace: --lr/);
    expectBadInput(parry('invert', '--model', model, '--steps', '0', '--out', out), /--steps/);
  });
});
