/**
 * Gallery helpers: which examples are shown, and the PNG panels (decoded back with pngjs and
 * compared with the values they were drawn from).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import {
  imagePng,
  perturbationPng,
  pngDataUri,
  writeExamplePng,
} from '../../src/data/image-encoding.js';
import { brokenExamples } from '../../src/evaluate/gallery.js';
import type { AttackCell } from '../../src/evaluate/results.js';

describe('gallery', () => {
  it('shows the first k examples correct clean and misclassified after the attack', () => {
    const labels = [0, 1, 2, 0, 1, 2];
    const clean = [0, 1, 1, 0, 1, 2];
    const cell = { robust: [0, 1, 0, 0, 0, 1], adversarial: [1, 1, 0, 2, 0, 2] } as AttackCell;
    expect(brokenExamples(cell, labels, clean, 2)).toEqual([0, 3]);
    expect(brokenExamples(cell, labels, clean, 10)).toEqual([0, 3, 4]);
  });

  it('draws an image and an amplified perturbation as PNGs', () => {
    const shape = [2, 3, 1];
    const x = [0, 0.5, 1, 0.25, 0.75, 2]; // 2 is clipped to the bounds
    const img = PNG.sync.read(imagePng(x, shape, [0, 1], 2));
    expect([img.width, img.height]).toEqual([6, 4]);
    const grey = (i: number, j: number) => img.data[(i * img.width + j) * 4];
    expect([grey(0, 0), grey(0, 2), grey(0, 4), grey(1, 5), grey(2, 0), grey(3, 5)]).toEqual([
      0, 128, 255, 255, 64, 255,
    ]);
    const xAdv = x.map((v, i) => v + (i === 1 ? 0.1 : i === 2 ? -0.05 : 0));
    const p = perturbationPng(x, xAdv, shape, [0, 1], 1);
    expect(p.amplification).toBeCloseTo(5, 5); // (hi − lo) / (2·max|δ|)
    const pert = PNG.sync.read(p.png);
    expect([pert.data[0], pert.data[4], pert.data[8]]).toEqual([128, 255, 64]);
    expect(pngDataUri(Buffer.from([1, 2]))).toBe('data:image/png;base64,AQI=');
  });

  it('writes the three panels side by side as before', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'parry-png-')), 'e.png');
    const x = new Float32Array(4).fill(0.5);
    const amp = writeExamplePng(
      file,
      x,
      x.map((v) => v + 0.25),
      [2, 2, 1],
      [0, 1],
      3,
    );
    expect(amp).toBeCloseTo(2, 6);
    const png = PNG.sync.read(readFileSync(file));
    expect([png.width, png.height]).toEqual([3 * 6 + 2 * 4, 6]);
  });
});
