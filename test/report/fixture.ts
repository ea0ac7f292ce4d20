/**
 * A realistic synthetic `EvaluationResults` for the report's tests: three targets on Fashion-MNIST
 * shaped data (an undefended CNN, the same CNN behind JPEG compression, an IBP-trained MLP with
 * certificates), three attacks (PGD and APGD-T white-box, Square black-box) on L∞ and L2 grids, the
 * per-example worst case, fairness over classes and groups, honesty checks (one warning: Square
 * beats PGD on the JPEG defense, the mark of masked gradients) and a gallery of small PNGs.
 * Every aggregate is computed from the per-example arrays, as `parry evaluate` does.
 */

import { FASHION_MNIST_CLASSES } from '../../src/data/index.js';
import type {
  AttackCell,
  CertifiedResult,
  EvaluationResults,
  FairnessResult,
  GalleryItem,
  GroupStat,
  HonestyCheck,
  Norm,
  TargetResults,
  WorstCaseCell,
} from '../../src/evaluate/results.js';
import { galleryItem } from './fixture-images.js';

export const CLASS_NAMES = FASHION_MNIST_CLASSES;
export const EPS: Record<'linf' | 'l2', number[]> = { linf: [0.05, 0.1, 0.2], l2: [0.5, 1, 2] };
const ATTACKS = [
  { attack: 'pgd', kind: 'pgd', whiteBox: true, strength: 1, norms: ['linf', 'l2'] as Norm[] },
  {
    attack: 'apgd-t',
    kind: 'apgd-t',
    whiteBox: true,
    strength: 1.15,
    norms: ['linf', 'l2'] as Norm[],
  },
  { attack: 'square', kind: 'square', whiteBox: false, strength: 0.85, norms: ['linf'] as Norm[] },
];

export interface FixtureOptions {
  /** A honesty check warns (default true). */
  warn?: boolean;
  /** The MLP carries IBP, CROWN and smoothing certificates (default true). */
  certified?: boolean;
  /** The config defines groups (default true). */
  groups?: boolean;
  /** The first target's model name (and id). */
  modelName?: string;
  /** Examples (default 80). */
  n?: number;
}

/** mulberry32: a small seeded generator, so the fixture is the same on every run. */
export function rngOf(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

interface TargetSpec {
  id: string;
  model: string;
  defense: string | null;
  trainedAgainst: string;
  /** Clean accuracy before per-class difficulty. */
  clean: number;
  /** eps at which a typical correct example breaks, per norm. */
  scale: Record<'linf' | 'l2', number>;
  /** Multiplies white-box strength (gradient masking < 1). */
  whiteBox: number;
  /** Seconds per forward-backward pass, relative to the CNN (BPDA through JPEG is slower). */
  cost: number;
}

/** Per-class accuracy of each group, and the summary of gaps, as `parry evaluate` computes them. */
export function fairnessOf(
  labels: number[],
  groups: string[] | null,
  correct: number[],
  worst: WorstCaseCell[],
): FairnessResult {
  const stats = (names: string[], of: (i: number) => string): GroupStat[] =>
    names
      .map((name) => {
        const idx = labels.map((_, i) => i).filter((i) => of(i) === name);
        const robustAccuracy: Record<string, number> = {};
        for (const w of worst)
          robustAccuracy[`${w.norm}:${w.eps}`] = mean(idx.map((i) => w.robust[i]));
        return {
          group: name,
          n: idx.length,
          cleanAccuracy: mean(idx.map((i) => correct[i])),
          robustAccuracy,
        };
      })
      .filter((s) => s.n > 0);
  const perClass = stats(CLASS_NAMES, (i) => CLASS_NAMES[labels[i]]);
  const perGroup = groups ? stats([...new Set(groups)], (i) => groups[i]) : null;
  const keys = ['clean', ...worst.map((w) => `${w.norm}:${w.eps}`)];
  const summary: FairnessResult['summary'] = [];
  for (const [over, list] of [
    ['class', perClass],
    ['group', perGroup],
  ] as const) {
    if (!list) continue;
    for (const key of keys) {
      const acc = (s: GroupStat) => (key === 'clean' ? s.cleanAccuracy : s.robustAccuracy[key]);
      const sorted = [...list].sort((a, b) => acc(a) - acc(b));
      const [lo, hi] = [sorted[0], sorted[sorted.length - 1]];
      summary.push({
        over,
        key,
        gap: acc(hi) - acc(lo),
        ratio: acc(hi) === 0 ? null : acc(lo) / acc(hi),
        worst: lo.group,
        best: hi.group,
      });
    }
  }
  return { perClass, perGroup, summary };
}

function certificates(margin: number[], correct: number[]): CertifiedResult[] {
  const curveOf = (radii: number[], per: number[]) =>
    radii.map((radius) => ({
      radius,
      accuracy: mean(per.map((r) => (r >= radius && r > 0 ? 1 : 0))),
    }));
  const ibp = margin.map((m, i) =>
    correct[i] ? ([0.2, 0.1, 0.05].find((e) => e <= m * 0.16) ?? 0) : 0,
  );
  const crown = margin.map((m, i) =>
    correct[i] ? ([0.2, 0.1, 0.05].find((e) => e <= m * 0.19) ?? 0) : 0,
  );
  const smooth = margin.map((m, i) => (correct[i] ? Number((m * 1.1).toFixed(3)) : 0));
  const base = { abstainRate: null, seconds: 3.2 };
  return [
    {
      method: 'ibp',
      norm: 'linf',
      curve: curveOf([0, 0.05, 0.1, 0.2], ibp),
      radii: ibp,
      ...base,
      params: {},
    },
    {
      method: 'crown',
      norm: 'linf',
      curve: curveOf([0, 0.05, 0.1, 0.2], crown),
      radii: crown,
      ...base,
      seconds: 41.5,
      params: {},
    },
    {
      method: 'smoothing',
      norm: 'l2',
      curve: curveOf([0, 0.25, 0.5, 0.75, 1], smooth),
      radii: smooth,
      abstainRate: 0.0375,
      seconds: 812.4,
      params: { sigma: 0.25, n0: 100, n: 10000, alpha: 0.001 },
    },
  ];
}

function honesty(spec: TargetSpec, warn: boolean): HonestyCheck[] {
  const masked = spec.whiteBox < 1 && warn;
  const check = (
    id: HonestyCheck['id'],
    title: string,
    status: HonestyCheck['status'],
    detail: string,
  ): HonestyCheck => ({
    id,
    title,
    status,
    detail,
    values: {},
  });
  return [
    check(
      'unbounded-eps',
      'Unbounded attack reaches 0%',
      'pass',
      'PGD at eps 1 (L∞) leaves 0.0% robust accuracy.',
    ),
    check(
      'monotone-eps',
      'Accuracy falls as ε grows',
      'pass',
      'Robust accuracy never rises with ε for any attack.',
    ),
    check(
      'more-steps',
      'More steps do not help',
      'pass',
      'PGD with 4× the steps changes robust accuracy by 0.4 pts.',
    ),
    masked
      ? check(
          'black-vs-white',
          'Black box does not beat white box',
          'warn',
          'Square (black-box) leaves 31.2% where PGD leaves 58.8% at L∞ ε=0.1: gradients are likely masked.',
        )
      : check(
          'black-vs-white',
          'Black box does not beat white box',
          'pass',
          'Square never beats the white-box attacks by more than 1 pt.',
        ),
    check(
      'random-noise',
      'Random noise is weaker than attacks',
      'pass',
      'Uniform noise at ε=0.1 leaves 90.0% (attacks: 40.0%).',
    ),
    spec.defense
      ? check(
          'gradients',
          'Gradients are informative',
          'skip',
          'Skipped: the defense is not differentiable; BPDA was used.',
        )
      : check(
          'gradients',
          'Gradients are informative',
          'pass',
          'No zero gradients on 80 examples.',
        ),
  ];
}

function target(
  spec: TargetSpec,
  labels: number[],
  groups: string[] | null,
  rand: () => number,
  o: Required<FixtureOptions>,
): TargetResults {
  const n = labels.length;
  // Shirts are hard, trousers and bags easy; the "outdoor" group is a little harder.
  const difficulty = (i: number) =>
    (labels[i] === 6 ? 0.25 : labels[i] === 1 || labels[i] === 8 ? -0.1 : 0) +
    (groups?.[i] === 'outdoor' ? 0.05 : 0);
  const correct = labels.map((_, i): number => (rand() < spec.clean - difficulty(i) ? 1 : 0));
  const predictions = labels.map((y, i) =>
    correct[i] ? y : (y + 1 + Math.floor(rand() * 9)) % 10,
  );
  const margin = labels.map((_, i) => Math.max(0, rand() * 1.6 - difficulty(i)));
  const attacks: AttackCell[] = [];
  for (const a of ATTACKS) {
    for (const norm of a.norms) {
      for (const eps of EPS[norm as 'linf' | 'l2']) {
        const strength = a.strength * (a.whiteBox ? spec.whiteBox : 1);
        const robust = margin.map((m, i) =>
          correct[i] && m * spec.scale[norm as 'linf' | 'l2'] > eps * strength ? 1 : 0,
        );
        const adversarial = robust.map((r, i) => (r ? labels[i] : (labels[i] + 3) % 10));
        const nCorrect = correct.reduce((s, c) => s + c, 0);
        const broken = correct.filter((c, i) => c && !robust[i]).length;
        attacks.push({
          attack: a.attack,
          kind: a.kind,
          norm,
          eps,
          params: a.whiteBox ? { steps: 20, stepSize: eps / 4, restarts: 1 } : { maxQueries: 1000 },
          whiteBox: a.whiteBox,
          robustAccuracy: mean(robust),
          attackSuccessRate: nCorrect === 0 ? 0 : broken / nCorrect,
          meanPerturbation: eps * 0.93,
          medianPerturbation: eps * 0.97,
          robust,
          adversarial,
          seconds: (a.whiteBox ? 12 * eps * 10 : 40) * spec.cost,
          gradientEvaluations: a.whiteBox ? (a.attack === 'pgd' ? 20 : 100) * n : 0,
          queries: a.whiteBox ? 0 : Math.round(640 * n * (0.5 + spec.clean)),
        });
      }
    }
  }
  const worstCase: WorstCaseCell[] = [];
  for (const norm of ['linf', 'l2'] as const) {
    for (const eps of EPS[norm]) {
      const cells = attacks.filter((c) => c.norm === norm && c.eps === eps);
      const robust = labels.map((_, i) => (cells.every((c) => c.robust[i]) ? 1 : 0));
      const brokenBy = labels.map((_, i) =>
        !correct[i] ? 'clean' : (cells.find((c) => !c.robust[i])?.attack ?? null),
      );
      worstCase.push({ norm, eps, robustAccuracy: mean(robust), robust, brokenBy });
    }
  }
  const certified =
    o.certified && spec.trainedAgainst.startsWith('ibp') ? certificates(margin, correct) : [];
  const rand2 = rngOf(labels.length + spec.id.length);
  const gallery: GalleryItem[] =
    spec.id === 'mlp-ibp'
      ? []
      : [
          ...[0, 1, 2].map((k) =>
            galleryItem(rand2, 'pgd', 'linf', 0.1, k, labels[k], k !== 1, spec.defense === null),
          ),
          ...[3, 4].map((k) =>
            galleryItem(rand2, 'square', 'linf', 0.1, k, labels[k], true, false),
          ),
        ];
  const sum = (f: (c: AttackCell) => number) => attacks.reduce((s, c) => s + f(c), 0);
  return {
    id: spec.id,
    model: spec.model,
    defense: spec.defense,
    trainedAgainst: spec.trainedAgainst,
    engine: 'tfjs',
    clean: {
      accuracy: mean(correct),
      predictions,
      confidences: labels.map(() => 0.6 + 0.4 * rand()),
      seconds: 0.8,
    },
    attacks,
    worstCase,
    certified,
    fairness: fairnessOf(labels, groups, correct, worstCase),
    honesty: honesty(spec, o.warn),
    gallery,
    cost: {
      seconds: sum((c) => c.seconds) + certified.reduce((s, c) => s + c.seconds, 0),
      gradientEvaluations: sum((c) => c.gradientEvaluations),
      queries: sum((c) => c.queries),
    },
  };
}

export function makeResults(options: FixtureOptions = {}): EvaluationResults {
  const o: Required<FixtureOptions> = {
    warn: true,
    certified: true,
    groups: true,
    modelName: 'cnn-small',
    n: 80,
    ...options,
  };
  const rand = rngOf(7);
  const labels = Array.from({ length: o.n }, (_, i) => (i * 7 + Math.floor(rand() * 3)) % 10);
  const groups = o.groups ? labels.map(() => (rand() < 0.6 ? 'studio' : 'outdoor')) : null;
  const specs: TargetSpec[] = [
    {
      id: o.modelName,
      model: o.modelName,
      defense: null,
      trainedAgainst: 'none',
      clean: 0.93,
      scale: { linf: 0.09, l2: 1.1 },
      whiteBox: 1,
      cost: 1,
    },
    {
      id: `${o.modelName} + jpeg:q=75`,
      model: o.modelName,
      defense: 'jpeg:q=75',
      trainedAgainst: 'none',
      clean: 0.9,
      scale: { linf: 0.1, l2: 1.3 },
      whiteBox: o.warn ? 0.45 : 1,
      cost: 2.4,
    },
    {
      id: 'mlp-ibp',
      model: 'mlp-ibp',
      defense: null,
      trainedAgainst: 'ibp linf 0.11',
      clean: 0.83,
      scale: { linf: 0.22, l2: 1.4 },
      whiteBox: 1,
      cost: 0.3,
    },
  ];
  return {
    version: 1,
    started: '2025-11-26T09:14:03.000Z',
    finished: '2025-11-26T09:41:47.000Z',
    config: {
      dataset: { name: 'fashion-mnist', n: o.n, groups: o.groups ? { by: 'background' } : null },
      targets: specs.map((s) => ({ model: `models/${s.model}`, defense: s.defense })),
      attacks: ATTACKS.map((a) => ({ id: a.attack, norms: a.norms })),
      eps: EPS,
      seed: 1,
    },
    dataset: {
      name: 'fashion-mnist',
      n: o.n,
      classNames: CLASS_NAMES,
      inputShape: [28, 28, 1],
      labels,
      groups,
    },
    targets: specs.map((s) => target(s, labels, groups, rand, o)),
    notes: [
      'square ran on L∞ only: its L2 variant is not configured.',
      'smoothing certifies the smoothed classifier of mlp-ibp (σ = 0.25), not the model itself.',
    ],
  };
}
