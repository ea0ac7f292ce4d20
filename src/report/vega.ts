/**
 * Vega-Lite → Vega, in Node. The report ships compiled Vega specs plus vega's own browser build,
 * inlined, so the page draws its charts (as SVG) without network access and without vega-lite.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { LoggerInterface } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { packageRoot } from '../engine/paths.js';
import { ParryError } from '../errors.js';

/** A chart of the report: a compiled Vega spec and the words around it. */
export interface Chart {
  title: string;
  /** One sentence under the chart: how to read it. */
  caption: string;
  /** A Vega spec (JSON), drawn in the page by vega's svg renderer. */
  vega: unknown;
  /** What vega-lite warned about while compiling (the library never prints). */
  warnings: string[];
}

/** Facet by ε: one panel per budget, in ascending order (rows carry `panel` and `eps`). */
export const EPS_PANELS = {
  column: {
    field: 'panel',
    type: 'ordinal' as const,
    title: null,
    sort: { field: 'eps', order: 'ascending' as const },
  },
};

/** Facet by target along `axis`, in the report's target order. */
export function targetPanels(targetIds: string[], axis: 'row' | 'column') {
  const facet = { field: 'target', type: 'nominal' as const, title: null, sort: targetIds };
  const header = { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top' };
  return { [axis]: axis === 'row' ? { ...facet, header } : facet };
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

/** One look for every chart: the page's font, quiet grids, titles left-aligned. */
export const CHART_CONFIG = {
  font: FONT,
  background: 'white',
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 600,
    titleColor: '#333',
    labelColor: '#444',
    gridColor: '#eee',
    domainColor: '#999',
    tickColor: '#999',
  },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 240, titleLimit: 240 },
  header: { labelFontSize: 12, labelFontWeight: 600, labelLimit: 280, titleFontSize: 12 },
  title: { fontSize: 14, fontWeight: 600, anchor: 'start', offset: 12, color: '#222' },
  view: { stroke: '#ddd' },
  point: { size: 45, filled: true },
  line: { strokeWidth: 1.8 },
} as const;

/** A vega logger that keeps warnings instead of printing them and turns errors into throws. */
function collectingLogger(warnings: string[]): LoggerInterface {
  let level = 1;
  const logger = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    warn(...args: unknown[]) {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
    error(...args: unknown[]): never {
      throw new Error(args.map(String).join(' '));
    },
  };
  return logger as LoggerInterface;
}

/** A chart from its title, its caption and its Vega-Lite spec (compiled with the report's config). */
export function chart(title: string, caption: string, spec: TopLevelSpec): Chart {
  const warnings: string[] = [];
  try {
    const { spec: vega } = compile({ ...spec, title, config: CHART_CONFIG } as TopLevelSpec, {
      logger: collectingLogger(warnings),
    });
    return { title, caption, vega, warnings };
  } catch (e) {
    throw new ParryError('INTERNAL', `report: vega-lite could not compile '${title}': ${e}`, {
      cause: e,
    });
  }
}

let runtime: string | undefined;

/**
 * vega's UMD browser build (`vega.min.js`), read from the `vega` package that parry's own
 * package.json resolves (its `exports` hide the file, so go through the module entry's folder).
 */
export function vegaRuntime(): string {
  if (runtime !== undefined) return runtime;
  const require = createRequire(join(packageRoot(), 'package.json'));
  let file: string;
  try {
    file = join(dirname(require.resolve('vega')), 'vega.min.js');
    runtime = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ParryError('INTERNAL', `report: cannot read vega's browser build: ${e}`, {
      cause: e,
    });
  }
  // Inlined in a <script> element: nothing inside may close it.
  runtime = runtime.replace(/<\/script/gi, '<\\/script');
  return runtime;
}
