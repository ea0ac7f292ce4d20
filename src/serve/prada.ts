/**
 * PRADA (Juuti, Szyller, Marchal & Asokan, "PRADA: Protecting against DNN Model Stealing
 * Attacks", EuroS&P 2019, Algorithm 1): per client, the distribution of the minimum distances of
 * its queries to its earlier ones, tested for normality.
 *
 * For each query x of a key, with c the class the service predicted for it:
 * - the first query of class c starts the class's growing set G_c = {x}, with D_{G_c} = {0} and
 *   threshold T_c = 0; it adds no distance;
 * - every later one gets d_min = min over y ∈ G_c of ‖x − y‖₂, which joins the key's distance set
 *   D; if d_min > T_c, x joins G_c, d_min joins D_{G_c}, and T_c ← max(T_c, mean(D_{G_c}) −
 *   std(D_{G_c})) (population std, after the new distance is added, as the authors' code does).
 * Once D holds `minQueries` distances, the values more than 3 std from D's mean are set aside
 * and the Shapiro–Wilk W of the rest is computed; W < `delta` raises the alarm. Natural queries
 * give roughly normal minimum distances; synthetic ones (small perturbations of a few seeds, as
 * Jacobian augmentation makes) pile up near a few values and W drops. A point mass (every
 * distance equal, e.g. one image sent again and again) has no W; it counts as W = 0.
 *
 * The test runs once per request (after all its rows), on what D holds then.
 *
 * Memory is bounded: a key keeps at most `maxStored` queries in its growing sets (once full,
 * distances are still measured against them, nothing more is added), its last `maxDistances`
 * distances (at most 5000, the test's limit; older ones slide out), and at most `maxKeys` keys are
 * tracked (the least recently seen is forgotten). So the monitor holds at most about
 * maxKeys · maxStored · (values per example) · 4 bytes of queries: 100 · 1000 · 784 · 4 B ≈ 314 MB
 * for Fashion-MNIST at the defaults, if every key filled its sets.
 */
import { check } from '../errors.js';
import { SHAPIRO_WILK_MAX_N, shapiroWilk } from './shapiro-wilk.js';

/** A verdict on a key's stream: W < delta raises the alarm. */
export interface PradaVerdict {
  readonly alarm: boolean;
  /** W of the key's distances, when the test ran. */
  readonly statistic?: number;
}

export interface PradaOptions {
  /** Alarm when W < delta. */
  delta: number;
  /** Distances a key must have before the test is applied. */
  minQueries: number;
  /** Queries kept per key in its growing sets. */
  maxStored: number;
  /** Most recent distances kept per key (≤ 5000). */
  maxDistances: number;
  /** Keys tracked at once. */
  maxKeys: number;
}

/** Label under which abstained answers (no class) are grouped. */
const ABSTAINED = -1;

interface ClassSet {
  /** The growing set's queries, row after row (capacity grows by doubling). */
  rows: Float32Array;
  count: number;
  /** D_{G_c}: the minimum distance each member had when it joined (the first: 0). */
  joined: number[];
  threshold: number;
}

interface KeyState {
  classes: Map<number, ClassSet>;
  stored: number;
  /** D as a ring buffer of the last `maxDistances` distances. */
  distances: Float64Array;
  next: number;
  size: number;
  last?: PradaVerdict;
}

/** What the monitor holds for a key (tests, diagnostics). */
export interface PradaKeyStats {
  distances: number;
  stored: number;
  classes: number;
  thresholds: Record<number, number>;
  last?: PradaVerdict;
}

export class PradaMonitor {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly rowSize: number,
    private readonly o: PradaOptions,
  ) {
    check(
      Number.isInteger(rowSize) && rowSize >= 1,
      () => `PradaMonitor: rowSize must be a positive integer, got ${rowSize}`,
      'BAD_OPTION',
    );
    check(
      o.delta > 0 && o.delta < 1,
      () => `PradaMonitor: delta must be in (0, 1), got ${o.delta}`,
      'BAD_OPTION',
    );
    check(
      Number.isInteger(o.maxDistances) &&
        o.maxDistances >= 3 &&
        o.maxDistances <= SHAPIRO_WILK_MAX_N,
      () =>
        `PradaMonitor: maxDistances must be an integer in [3, ${SHAPIRO_WILK_MAX_N}], got ${o.maxDistances}`,
      'BAD_OPTION',
    );
    check(
      Number.isInteger(o.minQueries) && o.minQueries >= 3 && o.minQueries <= o.maxDistances,
      () =>
        `PradaMonitor: minQueries must be an integer in [3, maxDistances = ${o.maxDistances}], got ${o.minQueries}`,
      'BAD_OPTION',
    );
    for (const k of ['maxStored', 'maxKeys'] as const) {
      check(
        Number.isInteger(o[k]) && o[k] >= 1,
        () => `PradaMonitor: ${k} must be a positive integer, got ${o[k]}`,
        'BAD_OPTION',
      );
    }
  }

  /**
   * Adds the `rows` queries in `x` (`rowSize` values each) of `keyId`, whose predicted classes are
   * `labels` (null: abstained), and tests the key's distances.
   */
  observe(
    keyId: string,
    x: Float32Array,
    rows: number,
    labels: readonly (number | null)[],
  ): PradaVerdict {
    check(
      x.length === rows * this.rowSize && labels.length === rows,
      () =>
        `PradaMonitor: ${x.length} values and ${labels.length} labels are not ${rows} rows of ${this.rowSize}`,
      'INTERNAL',
    );
    const s = this.state(keyId);
    for (let r = 0; r < rows; r++) {
      this.add(s, x.subarray(r * this.rowSize, (r + 1) * this.rowSize), labels[r] ?? ABSTAINED);
    }
    s.last = this.test(s);
    return s.last;
  }

  /** The last verdict for `keyId` (undefined for a key never seen or forgotten). */
  verdict(keyId: string): PradaVerdict | undefined {
    return this.keys.get(keyId)?.last;
  }

  stats(keyId: string): PradaKeyStats | undefined {
    const s = this.keys.get(keyId);
    if (s === undefined) return undefined;
    const thresholds: Record<number, number> = {};
    for (const [c, set] of s.classes) thresholds[c] = set.threshold;
    return {
      distances: s.size,
      stored: s.stored,
      classes: s.classes.size,
      thresholds,
      last: s.last,
    };
  }

  /** The distances D of `keyId`, oldest first (a copy). */
  distances(keyId: string): Float64Array {
    const s = this.keys.get(keyId);
    if (s === undefined) return new Float64Array(0);
    const out = new Float64Array(s.size);
    const cap = s.distances.length;
    const start = (s.next - s.size + cap) % cap;
    for (let i = 0; i < s.size; i++) out[i] = s.distances[(start + i) % cap];
    return out;
  }

  get trackedKeys(): number {
    return this.keys.size;
  }

  dispose(): void {
    this.keys.clear();
  }

  /** The key's state, marked most recently used; the least recently used key goes if too many. */
  private state(keyId: string): KeyState {
    let s = this.keys.get(keyId);
    if (s !== undefined) {
      this.keys.delete(keyId);
    } else {
      s = {
        classes: new Map(),
        stored: 0,
        distances: new Float64Array(this.o.maxDistances),
        next: 0,
        size: 0,
      };
      if (this.keys.size >= this.o.maxKeys) this.keys.delete(this.keys.keys().next().value!);
    }
    this.keys.set(keyId, s);
    return s;
  }

  private add(s: KeyState, q: Float32Array, label: number): void {
    const set = s.classes.get(label);
    if (set === undefined) {
      if (s.stored >= this.o.maxStored) return; // nothing to compare with, no room to start
      s.classes.set(label, {
        rows: Float32Array.from(q),
        count: 1,
        joined: [0],
        threshold: 0,
      });
      s.stored++;
      return;
    }
    const d = minDistance(set, q, this.rowSize);
    s.distances[s.next] = d;
    s.next = (s.next + 1) % s.distances.length;
    s.size = Math.min(s.size + 1, s.distances.length);
    if (d > set.threshold && s.stored < this.o.maxStored) {
      append(set, q, this.rowSize);
      s.stored++;
      set.joined.push(d);
      set.threshold = Math.max(set.threshold, meanMinusStd(set.joined));
    }
  }

  private test(s: KeyState): PradaVerdict {
    if (s.size < this.o.minQueries) return { alarm: false };
    const kept = withoutOutliers(s.distances.subarray(0, s.size), 3);
    if (kept.length < 3) return { alarm: true, statistic: 0 };
    let lo = kept[0];
    let hi = kept[0];
    for (const v of kept) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (hi === lo) return { alarm: true, statistic: 0 };
    const { w } = shapiroWilk(kept);
    return { alarm: w < this.o.delta, statistic: w };
  }
}

/** min over the set's rows of the L2 distance to q, in float64. */
function minDistance(set: ClassSet, q: Float32Array, size: number): number {
  let best = Number.POSITIVE_INFINITY;
  const rows = set.rows;
  for (let r = 0; r < set.count; r++) {
    const o = r * size;
    let sum = 0;
    for (let i = 0; i < size && sum < best; i++) {
      const d = rows[o + i] - q[i];
      sum += d * d;
    }
    if (sum < best) best = sum;
  }
  return Math.sqrt(best);
}

function append(set: ClassSet, q: Float32Array, size: number): void {
  if ((set.count + 1) * size > set.rows.length) {
    const grown = new Float32Array(Math.max(2 * set.rows.length, (set.count + 1) * size));
    grown.set(set.rows.subarray(0, set.count * size));
    set.rows = grown;
  }
  set.rows.set(q, set.count * size);
  set.count++;
}

/** Mean minus population standard deviation. */
export function meanMinusStd(values: readonly number[]): number {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v;
  mean /= n;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return mean - Math.sqrt(ss / n);
}

/** The values within `k` population standard deviations of the mean (all of them when std = 0). */
export function withoutOutliers(values: ArrayLike<number>, k: number): Float64Array {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  const limit = k * Math.sqrt(ss / n);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (Math.abs(values[i] - mean) <= limit) out.push(values[i]);
  return Float64Array.from(out);
}
