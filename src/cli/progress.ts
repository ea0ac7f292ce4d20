/** Progress bars on stderr (stdout stays clean for --json), with an ETA that reads right. */
import cliProgress from 'cli-progress';

/** What commands use of a progress bar. */
export interface ProgressBar {
  start(total: number, value: number, payload?: object): void;
  update(value: number, payload?: object): void;
  setTotal(total: number): void;
  stop(): void;
}

/** How long a started bar waits for its first update before it draws. */
const FIRST_DRAW_MS = 1000;

/**
 * A progress bar on stderr; plain periodic lines when stderr is not a terminal (CI logs). It
 * draws at its first update, or a second after `start`: a command refused by a check that runs
 * after `start` prints its one error line and no bar.
 */
export function progressBar(format: string): ProgressBar {
  const bar = new cliProgress.SingleBar(
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
  let pending: [number, number, object | undefined] | undefined;
  let drawn = false;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    clearTimeout(timer);
    if (drawn || pending === undefined) return;
    drawn = true;
    bar.start(...pending);
  };
  return {
    start(total, value, payload) {
      pending = [total, value, payload];
      timer = setTimeout(draw, FIRST_DRAW_MS);
      timer.unref();
    },
    update(value, payload) {
      draw();
      bar.update(value, payload);
    },
    setTotal(total) {
      if (drawn) bar.setTotal(total);
      else if (pending !== undefined) pending[0] = total;
    },
    stop() {
      clearTimeout(timer);
      if (drawn) bar.stop();
      drawn = false;
      pending = undefined;
    },
  };
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
