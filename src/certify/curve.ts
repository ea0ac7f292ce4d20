/**
 * The certified-accuracy curve: at each radius, the fraction of examples whose certified
 * prediction is the label with a certified radius at least that large (Cohen et al. 2019, Fig. 1).
 * One definition for `parry certify`, the evaluate runner and the report.
 */

/** L2 radii of the curve when none are given. */
export const DEFAULT_RADII: readonly number[] = [0, 0.25, 0.5, 0.75, 1.0];

export interface CurvePoint {
  radius: number;
  accuracy: number;
}

/**
 * Certified accuracy at each of `radii`. `predictions[i]` is the certified prediction (-1 when
 * abstaining), `certifiedRadii[i]` its radius. An empty set has accuracy 0.
 */
export function certifiedCurve(
  predictions: ArrayLike<number>,
  certifiedRadii: ArrayLike<number>,
  labels: ArrayLike<number>,
  radii: readonly number[] = DEFAULT_RADII,
): CurvePoint[] {
  const n = predictions.length;
  return radii.map((radius) => {
    let hits = 0;
    for (let i = 0; i < n; i++) {
      if (predictions[i] === labels[i] && certifiedRadii[i] >= radius) hits++;
    }
    return { radius, accuracy: n === 0 ? 0 : hits / n };
  });
}
