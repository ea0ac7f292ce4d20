/** The progress bar's time text: rounded before it is split, '?' while the rate is unknown. */
import { describe, expect, it } from 'vitest';
import { formatSeconds } from '../../src/cli/progress.js';

describe('formatSeconds', () => {
  it('rounds the whole time before splitting it into minutes and seconds', () => {
    // cli-progress 3.12 prints 1259.6 s, rounded to 5 s, as "20m60s".
    expect(formatSeconds(1259.6, {}, 5)).toBe('21m00s');
    expect(formatSeconds(1257.4, {}, 5)).toBe('20m55s');
    expect(formatSeconds(59.9, {}, 5)).toBe('1m00s');
    expect(formatSeconds(3599, {}, 5)).toBe('1h00m');
    expect(formatSeconds(2 * 3600 + 29 * 60 + 40, {}, 5)).toBe('2h30m');
    expect(formatSeconds(42.4, {}, 1)).toBe('42s');
    expect(formatSeconds(7.4, {}, 5)).toBe('7s');
    expect(formatSeconds(0, {}, 5)).toBe('0s');
  });

  it("prints '?' for cli-progress's placeholders of an unknown rate", () => {
    for (const t of ['0', 'NULL', 'INF', Number.NaN, Number.POSITIVE_INFINITY, -3]) {
      expect(formatSeconds(t, {}, 5)).toBe('?');
    }
  });
});
