/** Progress bars on stderr (stdout stays clean for --json), with an ETA that reads right. */
import cliProgress from 'cli-progress';

/** A progress bar on stderr; plain periodic lines when stderr is not a terminal (CI logs). */
export function progressBar(format: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format,
      stream: process.stderr,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      formatTime: formatSeconds,
    },
    cliProgress.Presets.shades_classic,
  );
}

/**
 * The bar's ETA and duration text. cli-progress's own formatter rounds the seconds part after
 * splitting off the minutes, so 1259.6 s prints as "20m60s", and it prints its placeholder for an
 * unknown rate ('0' before the first rate, 'NULL', 'INF') as if it were a time. This one rounds to
 * `multiple` seconds first (cli-progress passes 5 for the ETA) and prints '?' for an unknown time.
 */
export function formatSeconds(t: unknown, _options?: unknown, multiple = 1): string {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) return '?';
  if (t <= 10) return `${Math.round(t)}s`;
  const s = Math.max(multiple, 1) * Math.round(t / Math.max(multiple, 1));
  const pad = (v: number) => String(v).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${pad(m % 60)}m`;
}
