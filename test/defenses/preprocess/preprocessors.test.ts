import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import {
  buildPreprocessors,
  createBitDepth,
  createCropResize,
  createJpeg,
  createMedian,
  createNoise,
  createResizePad,
  createSmoothing,
  createTv,
  jpegEncoderKind,
  jpegRoundTrip,
  medianFilter,
  type Preprocessor,
  parsePreprocessSpec,
} from '../../../src/defenses/preprocess/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { ParryError } from '../../../src/errors.js';
import { toArray, values } from '../../attacks/helpers.js';

const B: [number, number] = [0, 1];

function run(p: Preprocessor, x: tf.Tensor4D, seed = 1): number[] {
  const out = p.apply(x, B, new Rng(seed));
  expect(out.shape).toEqual(x.shape);
  const v = toArray(out);
  out.dispose();
  return v;
}

/** A smooth 16×16 gray image (a gentle gradient with a bump). */
function smoothImage(c = 1): tf.Tensor4D {
  const v: number[] = [];
  for (let i = 0; i < 16; i++)
    for (let j = 0; j < 16; j++)
      for (let k = 0; k < c; k++)
        v.push(
          0.2 + 0.4 * (i / 15) + 0.3 * Math.exp(-((i - 8) ** 2 + (j - 6) ** 2) / 20) - 0.05 * k,
        );
  return tf.tensor4d(v, [1, 16, 16, c]);
}

const meanAbs = (a: number[], b: number[]) =>
  a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

describe('preprocessors', () => {
  const all: [string, Preprocessor][] = [
    ['squeeze-bits', createBitDepth({ bits: 3 })],
    ['median', createMedian({ k: 3 })],
    ['jpeg', createJpeg({ q: 50 })],
    ['smooth mean', createSmoothing({ kind: 'mean', k: 3 })],
    ['smooth gaussian', createSmoothing({ kind: 'gaussian', k: 5, sigma: 1 })],
    ['tv', createTv({})],
    ['noise', createNoise({ sigma: 0.2 })],
    ['noise uniform', createNoise({ kind: 'uniform', sigma: 0.3 })],
    ['crop', createCropResize({ scale: 0.7 })],
    ['resize-pad', createResizePad({ scale: 0.7 })],
  ];

  it.each(all)('%s keeps shape and bounds (1 and 3 channels) and leaks nothing', (_, p) => {
    for (const c of [1, 3]) {
      const x = tf.tensor4d(values(2 * 8 * 8 * c, 3 + c), [2, 8, 8, c]);
      const before = tf.memory().numTensors;
      const v = run(p, x);
      expect(tf.memory().numTensors).toBe(before);
      for (const e of v) {
        expect(e).toBeGreaterThanOrEqual(0);
        expect(e).toBeLessThanOrEqual(1 + 1e-6);
      }
      x.dispose();
    }
  });

  it('bit-depth reduction rounds to 2^bits − 1 levels, in any bounds', () => {
    const x = tf.tensor4d([0, 0.1, 0.2, 0.49, 0.51, 0.8, 0.9, 1], [1, 2, 4, 1]);
    expect(run(createBitDepth({ bits: 1 }), x)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    const q2 = run(createBitDepth({ bits: 2 }), x);
    expect(q2.map((v) => Math.round(v * 3))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    const y = tf.tensor4d([-1, -0.2, 0.3, 1], [1, 2, 2, 1]);
    const out = createBitDepth({ bits: 1 }).apply(y, [-1, 1]);
    expect(toArray(out)).toEqual([-1, -1, 1, 1]);
    tf.dispose([x, y, out]);
  });

  it('median filter removes an impulse; reflect padding at the borders', () => {
    const impulse = new Float32Array(9);
    impulse[4] = 1;
    expect(Array.from(medianFilter(impulse, [1, 3, 3, 1], 3))).toEqual(new Array(9).fill(0));
    // 3×3 ramp, k = 3, reflect padding. Expected values from numpy:
    // [np.median(np.pad(a, 1, mode='reflect')[i:i+3, j:j+3]) for i in range(3) for j in range(3)]
    const ramp = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(medianFilter(ramp, [1, 3, 3, 1], 3))).toEqual([4, 4, 5, 5, 5, 5, 5, 6, 6]);
    const five = new Float32Array(25).fill(0.5);
    five[12] = 1;
    five[0] = 0;
    const x = tf.tensor4d(five, [1, 5, 5, 1]);
    expect(run(createMedian({ k: 3 }), x)).toEqual(new Array(25).fill(0.5));
    expect(run(createMedian({ k: 1 }), x)).toEqual(Array.from(five));
    x.dispose();
  });

  it('JPEG round trip: small error at q=90 on a smooth image, larger at q=10; RGB too', () => {
    for (const c of [1, 3]) {
      const x = smoothImage(c);
      const v = toArray(x);
      const e90 = meanAbs(run(createJpeg({ q: 90 }), x), v);
      const e10 = meanAbs(run(createJpeg({ q: 10 }), x), v);
      expect(e90).toBeLessThan(0.01);
      expect(e10).toBeGreaterThan(e90);
      expect(e10).toBeLessThan(0.1);
      x.dispose();
    }
  });

  it('JPEG with the reused encoder equals jpeg-js encode + decode, byte for byte', () => {
    expect(jpegEncoderKind()).toBe('reused');
    const rng = new Rng(12);
    for (const [h, w, c, q] of [
      [28, 28, 1, 75],
      [13, 21, 3, 30],
      [28, 28, 1, 75],
      [8, 8, 3, 95],
    ]) {
      // Two images per batch: the encoder's state must not carry from one image to the next.
      const data = new Float32Array(2 * h * w * c).map(() => rng.next());
      const ours = jpegRoundTrip(data, [2, h, w, c], [0, 1], q);
      const reference = new Float32Array(data.length);
      for (let n = 0; n < 2; n++) {
        const rgba = new Uint8Array(h * w * 4);
        for (let p = 0; p < h * w; p++) {
          for (let ch = 0; ch < 3; ch++) {
            const v = data[n * h * w * c + p * c + (c === 1 ? 0 : ch)];
            rgba[p * 4 + ch] = Math.round(Math.min(255, Math.max(0, v * 255)));
          }
          rgba[p * 4 + 3] = 255;
        }
        const encoded = jpeg.encode({ data: rgba, width: w, height: h }, q).data;
        const d = jpeg.decode(encoded, { useTArray: true, formatAsRGBA: true }).data;
        for (let p = 0; p < h * w; p++) {
          const i = n * h * w * c + p * c;
          if (c === 1) reference[i] = (d[p * 4] + d[p * 4 + 1] + d[p * 4 + 2]) / 3 / 255;
          else for (let ch = 0; ch < 3; ch++) reference[i + ch] = d[p * 4 + ch] / 255;
        }
      }
      expect(Array.from(ours)).toEqual(Array.from(reference));
    }
  });

  it('smoothing: mean filter of a constant image is the constant; kernel averages', () => {
    const x = tf.fill([1, 5, 5, 2], 0.3) as tf.Tensor4D;
    for (const v of run(createSmoothing({ k: 3 }), x)) expect(v).toBeCloseTo(0.3, 6);
    x.dispose();
    const imp = new Float32Array(25);
    imp[12] = 1;
    const y = tf.tensor4d(imp, [1, 5, 5, 1]);
    const out = run(createSmoothing({ k: 3 }), y);
    expect(out[12]).toBeCloseTo(1 / 9, 6);
    expect(out[6]).toBeCloseTo(1 / 9, 6);
    expect(out[0]).toBeCloseTo(0, 6);
    y.dispose();
  });

  it('TV minimisation reduces total variation and keeps a constant image', () => {
    const noisy = tf.tensor4d(values(64, 9, 0.3, 0.7), [1, 8, 8, 1]);
    const tv = (v: number[]) => {
      let s = 0;
      for (let i = 0; i < 8; i++)
        for (let j = 0; j < 8; j++) {
          if (i < 7) s += Math.abs(v[(i + 1) * 8 + j] - v[i * 8 + j]);
          if (j < 7) s += Math.abs(v[i * 8 + j + 1] - v[i * 8 + j]);
        }
      return s;
    };
    const out = run(createTv({ lambda: 0.1, steps: 60 }), noisy);
    expect(tv(out)).toBeLessThan(0.7 * tv(toArray(noisy)));
    const flat = tf.fill([1, 4, 4, 1], 0.4) as tf.Tensor4D;
    for (const v of run(createTv({}), flat)) expect(v).toBeCloseTo(0.4, 5);
    tf.dispose([noisy, flat]);
  });

  it('crop and resize-pad are the identity at scale 1', () => {
    const x = tf.tensor4d(values(2 * 6 * 6 * 3, 4), [2, 6, 6, 3]);
    expect(run(createCropResize({ scale: 1 }), x)).toEqual(toArray(x));
    expect(run(createResizePad({ scale: 1 }), x)).toEqual(toArray(x));
    x.dispose();
  });

  it.each([
    ['noise', createNoise({ sigma: 0.1 })],
    ['crop', createCropResize({ scale: 0.6 })],
    ['resize-pad', createResizePad({ scale: 0.6 })],
  ] as [string, Preprocessor][])('%s: same seed reproduces, different seeds differ', (_, p) => {
    const x = tf.tensor4d(values(4 * 10 * 10, 5), [4, 10, 10, 1]);
    expect(run(p, x, 7)).toEqual(run(p, x, 7));
    expect(run(p, x, 7)).not.toEqual(run(p, x, 8));
    expect(() => p.apply(x, B)).toThrow(ParryError);
    x.dispose();
  });

  it('resize-pad pads with the lower bound', () => {
    const x = tf.fill([1, 10, 10, 1], 0.8) as tf.Tensor4D;
    const v = run(createResizePad({ scale: 0.5 }), x, 3);
    expect(v.filter((e) => e === 0).length).toBeGreaterThan(0);
    expect(v.filter((e) => Math.abs(e - 0.8) < 1e-5).length).toBeGreaterThan(0);
    x.dispose();
  });
});

describe('preprocess specs', () => {
  it('parses steps and their keys', async () => {
    expect(parsePreprocessSpec('jpeg:q=75,squeeze-bits:bits=4,median:k=3')).toEqual([
      { name: 'jpeg', params: { q: 75 } },
      { name: 'squeeze-bits', params: { bits: 4 } },
      { name: 'median', params: { k: 3 } },
    ]);
    expect(parsePreprocessSpec('noise:kind=uniform,sigma=0.1,tv,crop')).toEqual([
      { name: 'noise', params: { kind: 'uniform', sigma: 0.1 } },
      { name: 'tv', params: {} },
      { name: 'crop', params: {} },
    ]);
    const ps = await buildPreprocessors('jpeg:q=75,squeeze-bits:bits=4,median:k=3');
    expect(ps.map((p) => [p.name, p.differentiable, p.randomized])).toEqual([
      ['jpeg', false, false],
      ['squeeze-bits', false, false],
      ['median', false, false],
    ]);
  });

  it.each([
    ['foo:q=1', /unknown step 'foo'/],
    ['jpeg:quality=75', /jpeg: .*quality/i],
    ['jpeg:q=0', /jpeg: q/],
    ['jpeg:q=abc', /jpeg: q/],
    ['median:k=4', /median: k: k must be odd/],
    ['noise:kind=salt', /noise: kind/],
    ['q=3', /before any step/],
    ['jpeg:q', /expected key=value/],
    ['jpeg,,median', /empty step/],
    ['jpeg:q=5,q=6', /given twice/],
  ])('rejects %s', async (spec, pattern) => {
    const err = await buildPreprocessors(spec).catch((e) => e);
    expect(err).toBeInstanceOf(ParryError);
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toMatch(pattern);
  });
});
