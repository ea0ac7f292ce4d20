/**
 * Output defences: values on hand-computed inputs and against float64 computations written here
 * differently (reverse sigmoid from ART's formula in power form), what each promises to keep
 * (argmax, rows summing to 1) on random probability rows, the noise's stream and statistics, the
 * query wrapper, the registry and chain specs, and no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  applyOutputDefenses,
  buildOutputDefenses,
  chainPreserves,
  createOutputDefense,
  defendClassifier,
  defendQueries,
  highConfidenceProbabilities,
  labelsOnly,
  noisyProbabilities,
  OUTPUT_DEFENSES,
  type OutputDefense,
  parseOutputDefenseSpec,
  reverseSigmoid,
  roundProbabilities,
  topKProbabilities,
} from '../../../src/defenses/output/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { ParryError } from '../../../src/errors.js';
import { LinearClassifier, linearBlackBox, values } from '../../attacks/helpers.js';

/** Runs `f` on a [rows.length, k] tensor and returns the answer as nested arrays. */
function run(rows: number[][], f: (p: tf.Tensor2D) => tf.Tensor2D): number[][] {
  const p = tf.tensor2d(rows);
  const out = f(p);
  const v = out.arraySync();
  tf.dispose([p, out]);
  return v;
}

/** Softmax rows of random logits with spreads from flat to peaked, in float64. */
function randomRows(n: number, k: number, seed: number): number[][] {
  const z = values(n * k, seed, -1, 1);
  return Array.from({ length: n }, (_, i) => {
    const scale = 0.2 + (12 * i) / n;
    const e = z.slice(i * k, (i + 1) * k).map((v) => Math.exp(scale * v));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

const argmax = (row: number[]) => row.indexOf(Math.max(...row));
const sum = (row: number[]) => row.reduce((a, b) => a + b, 0);

/** ART's reverse sigmoid in float64, with σ(−γ·log((1−p)/p)) written as 1/(1 + ((1−p)/p)^γ). */
function reverseSigmoid64(row: number[], beta: number, gamma: number): number[] {
  const q = row.map((p) => {
    const pc = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
    const r = beta * (1 / (1 + ((1 - pc) / pc) ** gamma) - 0.5);
    return Math.min(Math.max(p - r, 0), 1);
  });
  const s = sum(q);
  return q.map((v) => v / s);
}

describe('top-k', () => {
  it('keeps the k largest, zeroes the rest, and rescales only when asked', () => {
    const rows = [
      [0.1, 0.5, 0.15, 0.25],
      [0.4, 0.3, 0.2, 0.1],
    ];
    const kept = run(rows, (p) => topKProbabilities(p, 2));
    expect(kept[0]).toEqual([0, 0.5, 0, 0.25]);
    expect(kept[1][0]).toBeCloseTo(0.4, 7);
    expect(kept[1][1]).toBeCloseTo(0.3, 7);
    expect(kept[1].slice(2)).toEqual([0, 0]);
    const rescaled = run(rows, (p) => topKProbabilities(p, 2, true));
    expect(rescaled[0][1]).toBeCloseTo(0.5 / 0.75, 6);
    expect(rescaled[0][3]).toBeCloseTo(0.25 / 0.75, 6);
    expect(rescaled[1][0]).toBeCloseTo(0.4 / 0.7, 6);
  });

  it('breaks a tie at the k-th value by the lowest index; k beyond the classes keeps all', () => {
    // Exact in float32: the two 0.125s tie for third place; the lower index is kept.
    expect(run([[0.125, 0.5, 0.25, 0.125]], (p) => topKProbabilities(p, 3))[0]).toEqual([
      0.125, 0.5, 0.25, 0,
    ]);
    const all = run([[0.1, 0.2, 0.7]], (p) => topKProbabilities(p, 5));
    expect(all[0][0]).toBeCloseTo(0.1, 7);
    expect(all[0][2]).toBeCloseTo(0.7, 7);
  });
});

describe('rounding', () => {
  it('rounds to d places, half to even as NumPy does', () => {
    const out = run([[0.123456, 0.876544]], (p) => roundProbabilities(p, 3));
    expect(out[0][0]).toBeCloseTo(0.123, 7);
    expect(out[0][1]).toBeCloseTo(0.877, 7);
    // 0.125 and 0.375 are exact in float32: ×100 gives exactly 12.5 and 37.5.
    const halves = run([[0.125, 0.375, 0.5]], (p) => roundProbabilities(p, 2));
    expect(halves[0][0]).toBeCloseTo(0.12, 7);
    expect(halves[0][1]).toBeCloseTo(0.38, 7);
  });

  it('can create ties: the top class stays a maximum but may not be the first one', () => {
    const out = run([[0.4441, 0.4449, 0.111]], (p) => roundProbabilities(p, 2));
    expect(out[0][0]).toBe(out[0][1]);
    expect(Math.max(...out[0])).toBe(out[0][1]);
  });
});

describe('high confidence only', () => {
  it('zeroes values below the cutoff and keeps the rest unscaled', () => {
    const out = run(
      [
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.2],
      ],
      (p) => highConfidenceProbabilities(p, 0.25),
    );
    expect(out[0][0]).toBe(0);
    expect(out[0][1]).toBeCloseTo(0.6, 7);
    expect(out[0][2]).toBeCloseTo(0.3, 7);
    expect(out[1]).toEqual([0, 0, 0]);
  });
});

describe('labels only', () => {
  it('answers the one-hot top class, ties to the lowest index', () => {
    expect(
      run(
        [
          [0.1, 0.7, 0.2],
          [0.4, 0.2, 0.4],
        ],
        labelsOnly,
      ),
    ).toEqual([
      [0, 1, 0],
      [1, 0, 0],
    ]);
  });
});

describe('reverse sigmoid', () => {
  it('matches a float64 computation of ART formula on random rows', () => {
    const rows = randomRows(40, 5, 11);
    for (const [beta, gamma] of [
      [1, 0.1],
      [0.7, 0.5],
      [2, 0.2],
    ]) {
      const out = run(rows, (p) => reverseSigmoid(p, beta, gamma));
      rows.forEach((row, i) => {
        const want = reverseSigmoid64(row, beta, gamma);
        for (let j = 0; j < row.length; j++) expect(out[i][j]).toBeCloseTo(want[j], 5);
      });
    }
  });

  it('clips inside the logit as ART does: p = 1 and p = 0 exactly', () => {
    // Hand-computed: logit of the clipped p is ±log((1 − 1e-9)/1e-9) = ±20.7233.
    const L = Math.log((1 - 1e-9) / 1e-9);
    const r = (sign: number) => 1 / (1 + Math.exp(-sign * 0.1 * L)) - 0.5;
    const q = [1 - r(1), 0 - r(-1)];
    const out = run([[1, 0]], (p) => reverseSigmoid(p, 1, 0.1));
    expect(out[0][0]).toBeCloseTo(q[0] / (q[0] + q[1]), 6);
    expect(out[0][1]).toBeCloseTo(q[1] / (q[0] + q[1]), 6);
    expect(out[0][0]).toBeCloseTo(0.6118, 4);
  });

  it('reads one column as the positive class of a binary model', () => {
    const out = run([[0.9], [0.3]], (p) => reverseSigmoid(p, 1, 0.2));
    expect(out[0][0]).toBeCloseTo(reverseSigmoid64([0.9, 0.1], 1, 0.2)[0], 5);
    expect(out[1][0]).toBeCloseTo(reverseSigmoid64([0.3, 0.7], 1, 0.2)[0], 5);
  });

  it('does not always keep the argmax: a near-zero class can overtake a flat top', () => {
    const row = [0.2, 1e-6, ...Array(8).fill((0.8 - 1e-6) / 8)];
    const out = run([row], (p) => reverseSigmoid(p, 1, 0.1));
    expect(argmax(out[0])).toBe(1);
    expect(argmax(reverseSigmoid64(row, 1, 0.1))).toBe(1);
  });
});

describe('noise on the probabilities', () => {
  it('adds the seeded stream, clips at 0 and renormalises', () => {
    const rows = randomRows(6, 4, 3);
    const out = run(rows, (p) => noisyProbabilities(p, 0.1, new Rng(9)));
    const rng = new Rng(9);
    rows.forEach((row, i) => {
      const noisy = row.map((v) => Math.max(0, v + 0.1 * rng.normal()));
      const s = sum(noisy);
      for (const [j, v] of noisy.entries()) expect(out[i][j]).toBeCloseTo(v / s, 5);
    });
  });

  it('the same seed gives the same answers; a row noised below 0 everywhere comes back uniform', () => {
    const rows = randomRows(200, 2, 5);
    const a = run(rows, (p) => noisyProbabilities(p, 100, new Rng(4)));
    const b = run(rows, (p) => noisyProbabilities(p, 100, new Rng(4)));
    expect(a).toEqual(b);
    // With σ = 100 both values fall below 0 in about a quarter of the rows.
    const uniform = a.filter((r) => r[0] === 0.5 && r[1] === 0.5).length;
    expect(uniform).toBeGreaterThan(25);
    for (const r of a) expect(sum(r)).toBeCloseTo(1, 5);
  });

  it('changes the argmax only when the top two are close relative to sigma', () => {
    const sigma = 0.02;
    const n = 2000;
    // Far: a gap of 0.3 = 15σ. Tied: two classes at 0.4 exactly.
    const far = Array.from({ length: n }, () => [0.55, 0.25, 0.2]);
    const tied = Array.from({ length: n }, () => [0.4, 0.4, 0.2]);
    const farOut = run(far, (p) => noisyProbabilities(p, sigma, new Rng(1)));
    expect(farOut.every((r) => argmax(r) === 0)).toBe(true);
    const tiedOut = run(tied, (p) => noisyProbabilities(p, sigma, new Rng(2)));
    const second = tiedOut.filter((r) => argmax(r) === 1).length / n;
    // Each of the two tied classes wins half the time: 0.5 ± 5 standard errors (0.011).
    expect(Math.abs(second - 0.5)).toBeLessThan(0.056);
  });
});

describe('what each registered defence keeps, at its defaults', () => {
  const tenClass = randomRows(60, 10, 21);
  for (const e of OUTPUT_DEFENSES) {
    it(`${e.name}`, () => {
      const d = createOutputDefense(e.name, {});
      const out = run(tenClass, (p) => d.apply(p));
      tenClass.forEach((row, i) => {
        const top = argmax(row);
        if (d.preserves.argmax === 'kept') expect(argmax(out[i])).toBe(top);
        if (d.preserves.argmax === 'among-ties') expect(out[i][top]).toBe(Math.max(...out[i]));
        if (d.preserves.sumsToOne) expect(sum(out[i])).toBeCloseTo(1, 5);
        for (const v of out[i]) expect(v >= 0 && v <= 1 + 1e-6).toBe(true);
      });
    });
  }

  it('reverse sigmoid at its defaults keeps the argmax of rows with a clear top', () => {
    const d = createOutputDefense('reverse-sigmoid');
    const clear = tenClass.filter((r) => Math.max(...r) > 0.5);
    expect(clear.length).toBeGreaterThan(5);
    const out = run(clear, (p) => d.apply(p));
    for (const [i, row] of clear.entries()) expect(argmax(out[i])).toBe(argmax(row));
  });
});

describe('chains and the query wrapper', () => {
  it('a chain applies its steps in order and promises the weakest guarantee', () => {
    const chain = buildOutputDefenses('top-k:k=2,renormalize=true,rounding:decimals=1');
    const out = run([[0.1, 0.62, 0.28]], (p) => applyOutputDefenses(p, chain));
    // top-2 → [0, 0.62, 0.28] / 0.9 = [0, 0.6889, 0.3111] → one decimal.
    expect(out[0][0]).toBe(0);
    expect(out[0][1]).toBeCloseTo(0.7, 6);
    expect(out[0][2]).toBeCloseTo(0.3, 6);
    expect(chainPreserves(chain)).toEqual({ argmax: 'among-ties', sumsToOne: false });
  });

  it('a tie-breaking step after rounding may name another class, and the chain says so', () => {
    const chain = buildOutputDefenses('rounding:decimals=2,labels-only');
    expect(chainPreserves(chain).argmax).toBe('not-guaranteed');
    expect(run([[0.4441, 0.4449, 0.111]], (p) => applyOutputDefenses(p, chain))).toEqual([
      [1, 0, 0],
    ]);
    expect(chainPreserves(buildOutputDefenses('labels-only,rounding'))).toEqual({
      argmax: 'among-ties',
      sumsToOne: false,
    });
    expect(chainPreserves([])).toEqual({ argmax: 'kept', sumsToOne: true });
  });

  it('wraps a query interface: the defended answer of its probabilities, counted', async () => {
    const model = new LinearClassifier(
      [2, 2, 1],
      values(12, 7, -2, 2).reduce<number[][]>((m, v, i) => {
        if (i % 3 === 0) m.push([]);
        m[m.length - 1].push(v);
        return m;
      }, []),
      [0.1, 0, -0.1],
    );
    const base = linearBlackBox(model);
    const defenses = buildOutputDefenses('reverse-sigmoid:beta=0.5,gamma=0.3');
    const defended = defendQueries(base, defenses);
    const x = tf.tensor4d(values(5 * 4, 3), [5, 2, 2, 1]);
    const raw = await base.predict(x);
    const want = raw.arraySync().map((r) => reverseSigmoid64(r, 0.5, 0.3));
    const before = tf.memory().numTensors;
    const got = await defended.predict(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    for (const [i, r] of got.arraySync().entries()) {
      for (const [j, v] of r.entries()) expect(v).toBeCloseTo(want[i][j], 5);
    }
    expect(defended.queries).toBe(5);
    expect(defended.numClasses).toBe(3);
    tf.dispose([x, raw, got]);
  });

  it('defends a white-box model through the softmax of its logits', async () => {
    const model = new LinearClassifier(
      [1, 2, 1],
      [
        [1, -1],
        [0.5, 2],
      ],
      [0, 0.3],
    );
    const defended = defendClassifier(model, [createOutputDefense('labels-only')]);
    const x = tf.tensor4d([0.9, 0.1, 0.1, 0.9], [2, 1, 2, 1]);
    const out = await defended.predict(x);
    // logits: [0.95, -0.6] and [0.55, 1.9]
    expect(out.arraySync()).toEqual([
      [1, 0],
      [0, 1],
    ]);
    tf.dispose([x, out]);
  });

  it('leaks no tensors across repeated calls of every defence', () => {
    const p = tf.tensor2d(randomRows(8, 4, 2));
    const all: OutputDefense[] = OUTPUT_DEFENSES.map((e) => createOutputDefense(e.name));
    const once = () => tf.dispose([applyOutputDefenses(p, all), ...all.map((d) => d.apply(p))]);
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) once();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(p);
  });

  it('refuses a tensor of the wrong rank, naming the function', () => {
    const v = tf.tensor1d([0.5, 0.5]);
    expect(() => labelsOnly(v as unknown as tf.Tensor2D)).toThrow(
      /labelsOnly: probabilities must have shape \[batch, classes\], got \[2\]/,
    );
    v.dispose();
  });
});

describe('output defence registry', () => {
  const keys = [...new Set(OUTPUT_DEFENSES.flatMap((e) => Object.keys(e.schema.shape)))];
  for (const e of OUTPUT_DEFENSES) {
    it(`${e.name} parses its defaults and refuses options it does not read`, () => {
      expect(e.schema.safeParse({}).success).toBe(true);
      expect(e.requires.length).toBeGreaterThan(0);
      const unread = keys.find((k) => !(k in e.schema.shape))!;
      expect(() => createOutputDefense(e.name, { [unread]: 1 })).toThrow(
        new RegExp(`${e.name}: ${unread}: unknown option: ${e.name} does not read '${unread}'`),
      );
    });
  }

  it('refuses bad values and unknown names, naming them', () => {
    expect(() => createOutputDefense('top-k', { k: 0 })).toThrow(/top-k: k:/);
    expect(() => createOutputDefense('reverse-sigmoid', { beta: -1 })).toThrow(
      /reverse-sigmoid: beta:/,
    );
    expect(() => createOutputDefense('noise', { sigma: 0 })).toThrow(/noise: sigma:/);
    expect(() => createOutputDefense('top1')).toThrow(/unknown output defense 'top1'/);
    const e = (() => {
      try {
        buildOutputDefenses('rounding:decimals=0');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ParryError);
    expect((e as ParryError).code).toBe('BAD_OPTION');
  });

  it('parses chain specs and refuses malformed ones', () => {
    expect(parseOutputDefenseSpec('top-k:k=3,renormalize=true,labels-only')).toEqual([
      { name: 'top-k', options: { k: 3, renormalize: true } },
      { name: 'labels-only', options: {} },
    ]);
    expect(() => parseOutputDefenseSpec('k=3')).toThrow(/'k=3' comes before any defense name/);
    expect(() => parseOutputDefenseSpec('top-k:k=1,k=2')).toThrow(/top-k: 'k' given twice/);
    expect(() => parseOutputDefenseSpec('blur')).toThrow(/unknown defense 'blur'/);
    expect(() => parseOutputDefenseSpec('top-k,,rounding')).toThrow(/empty step/);
  });
});
