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
import { renderAuditReport } from '../serve/audit-report.js';
import { adapterSchema } from '../serve/endpoint-adapter.js';
import { AUDIT_STAGES, type AuditStage, planAudit, runAudit } from '../serve/endpoint-audit.js';
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
  const headers = Object.fromEntries(
    opts.header.map((h) => {
      const i = h.indexOf(':');
      return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()];
    }),
  );
  const adapter = opts.adapter ? readAdapter(opts.adapter) : undefined;
  await setUpBackend(opts);
  const test = firstExamples(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.n, '--n');
  const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const endpoint = await HttpQueryClassifier.connect(opts.url, {
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
  const results = await runAudit(
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
  const shown = redact(opts.url);
  const record = {
    command: 'audit',
    url: shown,
    endpoint: {
      outputs: endpoint.outputs ?? null,
      adapter: opts.adapter ?? null,
      guards: endpoint.info.guards ?? null,
      requests: endpoint.requests,
      waitedSeconds: endpoint.waitedSeconds,
      abstentions: endpoint.abstentions,
    },
    ...results,
  };
  await writeFolder(opts.out, async (dir) => {
    writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(record, null, 2)}\n`);
    writeFileSync(
      path.join(dir, 'report.html'),
      renderAuditReport(results, {
        url: shown,
        outputs: endpoint.outputs,
        guards: endpoint.info.guards,
        requests: endpoint.requests,
        waitedSeconds: endpoint.waitedSeconds,
      }),
    );
  });
  emit(record, opts, () =>
    [
      `clean accuracy ${pct(results.clean.accuracy)} on ${results.dataset.n} examples`,
      ...results.stages.map((s) => {
        const m = s.metrics ?? {};
        const v = m.robustAccuracy ?? m.agreement ?? m.auc;
        const what =
          'robustAccuracy' in m ? 'robust accuracy' : 'agreement' in m ? 'agreement' : 'AUC';
        return `${s.stage}: ${s.status}${typeof v === 'number' ? `, ${what} ${what === 'AUC' ? v.toFixed(3) : pct(v)}` : ''} (${s.queries} queries)`;
      }),
      `${results.queries} of ${opts.budget} queries; wrote results.json and report.html to ${opts.out}`,
    ].join('\n'),
  );
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

/** The URL without user or password (they stay out of files and logs). */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
