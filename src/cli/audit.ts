/**
 * `parry audit --url URL [--header 'Authorization: Bearer …'] [--adapter FILE] --dataset D --n N
 * --budget Q --out DIR`: a black-box audit of a prediction endpoint (src/serve/endpoint-audit.ts)
 * that speaks parry's predict API, or any JSON API an adapter file describes. At most Q examples
 * are sent; 429 answers are waited out (Retry-After up to --max-wait seconds). Writes
 * results.json and report.html (marked black-box) to DIR.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { firstExamples, loadDataset } from '../data/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { ParryError } from '../errors.js';
import { ARCHITECTURES } from '../models/architectures.js';
import { parseWith } from '../options.js';
import { REPORT_FILE, renderReport } from '../report/index.js';
import { auditResults } from '../serve/audit-report.js';
import { adapterSchema } from '../serve/endpoint-adapter.js';
import {
  AUDIT_STAGES,
  type AuditResults,
  type AuditStage,
  planAudit,
  runAudit,
} from '../serve/endpoint-audit.js';
import { HttpQueryClassifier } from '../serve/http-classifier.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  log,
  parseNonNegativeNumber,
  parsePositiveInt,
  parsePositiveNumber,
  pct,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface AuditOptions extends CommonOptions {
  url: string;
  header: string[];
  adapter?: string;
  dataset: string;
  n: number;
  budget: number;
  eps: number;
  norm: 'linf' | 'l2';
  stages: AuditStage[];
  thiefArch: string;
  thiefEpochs: number;
  sigma: number;
  maxWait: number;
  out: string;
}

/** 'Name: value' → [name, value]; repeated flags collect. */
function parseHeader(value: string, previous: string[] = []): string[] {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+:\s*\S/.test(value)) {
    throw new InvalidArgumentError(`must be 'Name: value', got '${value.split(':')[0]}…'`);
  }
  return [...previous, value];
}

function parseStages(value: string): AuditStage[] {
  const parts = value.split(',').map((s) => s.trim());
  const bad = parts.find((p) => !(AUDIT_STAGES as readonly string[]).includes(p));
  if (bad !== undefined) {
    throw new InvalidArgumentError(`unknown stage '${bad}' (stages: ${AUDIT_STAGES.join(', ')})`);
  }
  return parts as AuditStage[];
}

export function auditCommand(): Command {
  const cmd = new Command('audit')
    .description(
      'black-box audit of a prediction endpoint within a query budget; writes results.json and report.html',
    )
    .requiredOption('--url <url>', "the endpoint's base URL (parry serve's, or the adapter's host)")
    .option(
      '--header <header>',
      "request header 'Name: value' (repeatable), e.g. 'Authorization: Bearer KEY'",
      parseHeader,
      [],
    )
    .option('--adapter <file>', 'JSON file describing a non-parry endpoint (docs/serve.md)')
    .option(
      '--dataset <name>',
      `labelled data of the task. ${DATASET_HELP}`,
      'fashion-mnist-subset',
    )
    .option('--n <n>', 'test examples audited', parsePositiveInt, 100)
    .requiredOption('--budget <q>', 'examples the audit may send in all', parsePositiveInt)
    .option('--eps <e>', 'perturbation radius of the evasion attacks', parseNonNegativeNumber, 0.1)
    .addOption(
      new Option('--norm <norm>', 'norm of the radius').choices(['linf', 'l2']).default('linf'),
    )
    .option('--stages <list>', `comma-separated subset of ${AUDIT_STAGES.join(',')}`, parseStages, [
      ...AUDIT_STAGES,
    ])
    .addOption(
      new Option('--thief-arch <name>', 'architecture of the stealing thief')
        .choices(ARCHITECTURES.map((a) => a.name))
        .default('cnn-small'),
    )
    .option('--thief-epochs <k>', 'thief training epochs', parsePositiveInt, 10)
    .option('--sigma <s>', 'membership: std of the noise signal', parsePositiveNumber, 0.1)
    .option(
      '--max-wait <s>',
      'longest Retry-After waited out; a longer one stops the stage',
      parseNonNegativeNumber,
      60,
    )
    .requiredOption('--out <dir>', 'output folder (results.json, report.html)');
  return withCommonOptions(cmd).action((opts: AuditOptions) => audit(opts));
}

async function audit(opts: AuditOptions): Promise<void> {
  if (opts.workers !== undefined) {
    throw new ParryError(
      'BAD_OPTION',
      'audit: --workers is not used: the audit queries one endpoint',
    );
  }
  checkOutputDir(opts.out, '--out');
  planAudit(opts.budget, opts.n, opts.stages);
  const headers: Record<string, string> = Object.fromEntries(
    opts.header.map((h) => {
      const i = h.indexOf(':');
      return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()];
    }),
  );
  // fetch refuses a URL with credentials: they travel as Basic authorization instead (unless
  // --header gives one), and the URL goes on without them.
  const basic = credentialsOf(opts.url);
  if (basic !== undefined) headers.authorization ??= `Basic ${basic}`;
  const url = redact(opts.url, false);
  const adapter = opts.adapter ? readAdapter(opts.adapter) : undefined;
  await setUpBackend(opts);
  const test = firstExamples(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.n, '--n');
  const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const endpoint = await HttpQueryClassifier.connect(url, {
    headers,
    adapter,
    maxWaitSeconds: opts.maxWait,
  });
  const shape = test.shape.slice(1);
  if (shape.join(',') !== endpoint.inputShape.join(',')) {
    throw new ParryError(
      'BAD_INPUT',
      `audit: ${test.name} holds examples of shape [${shape}], the endpoint takes [${endpoint.inputShape}]`,
    );
  }
  const audited = await runAudit(
    endpoint,
    { test, train },
    {
      n: opts.n,
      budget: opts.budget,
      eps: opts.eps,
      norm: opts.norm,
      stages: opts.stages,
      seed: opts.seed,
      thiefArch: opts.thiefArch,
      thiefEpochs: opts.thiefEpochs,
      sigma: opts.sigma,
    },
    (r) =>
      log(
        `audit: ${r.stage} ${r.status} (${r.queries} of ${r.share} queries)${r.note ? `: ${r.note}` : ''}`,
      ),
  );
  const results = auditResults(audited, test, {
    url: redact(opts.url, true),
    outputs: endpoint.outputs,
    adapter: opts.adapter ?? null,
    guards: endpoint.info.guards,
    classNames: endpoint.info.classNames,
    requests: endpoint.requests,
    waitedSeconds: endpoint.waitedSeconds,
    abstentions: endpoint.abstentions,
  });
  await writeFolder(opts.out, async (dir) => {
    writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(results)}\n`);
    writeFileSync(path.join(dir, REPORT_FILE), renderReport(results));
  });
  const summary = {
    command: 'audit',
    url: results.access.url,
    outputs: results.access.outputs,
    budget: opts.budget,
    queries: results.access.queries,
    clean: audited.clean.accuracy,
    stages: audited.stages.map((s) => ({
      stage: s.stage,
      status: s.status,
      queries: s.queries,
      share: s.share,
      ...(s.metrics ? { metrics: s.metrics } : {}),
      ...(s.note ? { note: s.note } : {}),
    })),
    results: path.join(opts.out, 'results.json'),
    report: path.join(opts.out, REPORT_FILE),
  };
  emit(summary, opts, () => humanSummary(audited, opts));
}

/** The lines printed without --json: clean accuracy, each stage's headline number, the spend. */
function humanSummary(r: AuditResults, opts: AuditOptions): string {
  const headline = (m: Record<string, number | null | string>): string => {
    if (typeof m.robustAccuracy === 'number') return `, robust accuracy ${pct(m.robustAccuracy)}`;
    if (typeof m.agreement === 'number') return `, agreement ${pct(m.agreement)}`;
    if (typeof m.auc === 'number') return `, AUC ${m.auc.toFixed(3)}`;
    return '';
  };
  return [
    `clean accuracy ${pct(r.clean.accuracy)} on ${r.dataset.n} examples`,
    ...r.stages.map(
      (s) =>
        `${s.stage}: ${s.status}${s.metrics ? headline(s.metrics) : ''} (${s.queries} queries)`,
    ),
    `${r.queries} of ${opts.budget} queries; wrote results.json and ${REPORT_FILE} to ${opts.out}`,
  ].join('\n');
}

function readAdapter(file: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `--adapter: cannot read ${file} as JSON: ${(e as Error).message}`,
    );
  }
  return parseWith(`--adapter ${file}`, adapterSchema, raw);
}

/** `user:password` of a URL, base64, or undefined when it has none (or is no URL). */
function credentialsOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return undefined;
    const raw = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    return Buffer.from(raw).toString('base64');
  } catch {
    return undefined;
  }
}

/**
 * The URL without user or password; with `query`, the values of its query masked too (what goes
 * into files and logs).
 */
function redact(url: string, query: boolean): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    if (query) for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, 'redacted');
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
