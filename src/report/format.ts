/**
 * Text helpers of the HTML report: escaping (every string from results.json comes from a user's
 * config or data set, so none reaches the page unescaped) and number formats.
 */
import type { EvaluationResults, Norm } from '../evaluate/results.js';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for an HTML element or a quoted attribute value. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>` and `&` become `\u003c`-style
 * escapes, so no string inside can close the script element or open a comment.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** `0.8123` → `81.2%`; null or non-finite → an em dash. */
export function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`;
}

/** A gap between two accuracies, in percentage points: `0.231` → `23.1 pts`. */
export function points(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)} pts`;
}

/** A ratio with two decimals, or an em dash. */
export function ratio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(2);
}

/** An integer with thousands separators: `1234567` → `1,234,567`. */
export function count(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return Math.round(x)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Seconds as `0.42 s`, `12.3 s`, `4.2 min` or `1.5 h`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** An eps or radius: 4 significant digits, or `k/255` when it is one (the usual image budgets). */
export function formatEps(eps: number): string {
  const short = String(Number(eps.toPrecision(4)));
  const k = Math.round(eps * 255);
  if (eps > 0 && eps < 1 && short.length > 6 && Math.abs(eps * 255 - k) < 1e-6) return `${k}/255`;
  return short;
}

const NORM_NAMES: Record<Norm, string> = { linf: 'L∞', l2: 'L2', l1: 'L1' };

export function normName(norm: Norm): string {
  return NORM_NAMES[norm] ?? norm;
}

/** Norms in a fixed order (L∞, L2, L1), each with its sorted eps grid, over every target. */
export function epsGrid(results: EvaluationResults): { norm: Norm; eps: number[] }[] {
  const grid = new Map<Norm, Set<number>>();
  for (const t of results.targets) {
    for (const c of [...t.worstCase, ...t.attacks]) {
      if (!grid.has(c.norm)) grid.set(c.norm, new Set());
      grid.get(c.norm)!.add(c.eps);
    }
  }
  return (['linf', 'l2', 'l1'] as Norm[])
    .filter((n) => grid.has(n))
    .map((norm) => ({ norm, eps: [...grid.get(norm)!].sort((a, b) => a - b) }));
}

/** The attacks in the order they first appear (config order). */
export function attackNames(results: EvaluationResults): string[] {
  const names: string[] = [];
  for (const t of results.targets) {
    for (const c of t.attacks) if (!names.includes(c.attack)) names.push(c.attack);
  }
  return names;
}

/** A class name for a label, `#k` when the data set names none, `abstained` for -1. */
export function className(results: EvaluationResults, label: number): string {
  if (label === -1) return 'abstained';
  return results.dataset.classNames[label] ?? `#${label}`;
}

/** The fairness key `${norm}:${eps}` in words: `clean` or `L∞ ε=0.1`. */
export function keyName(key: string): string {
  const [norm, eps] = key.split(':');
  if (eps === undefined) return key;
  return `${normName(norm as Norm)} ε=${formatEps(Number(eps))}`;
}
