/**
 * The malformed-request table of `parry serve`: every case of bench/serve-malformed-cases.ts sent
 * once over a real loopback connection to the service (in this process, on the bundled MLP, with
 * an API key and an audit log), and what it answered: status, error code, message. Then whether
 * the service is still healthy and correct, whether tensors leaked, and what the audit log holds.
 * test/serve/malformed.test.ts asserts all of this; this prints it.
 *
 *   npm run build && node dist/bench/serve-malformed.js [--model DIR] [--markdown]
 *
 * Prints one JSON object (stdout), or with --markdown the table as Markdown.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { loadClassifier } from '../src/models/index.js';
import { parseGuardConfig } from '../src/serve/guard-config.js';
import { createService } from '../src/serve/server.js';
import { malformedCases, malformedGuard } from './serve-malformed-cases.js';
import { send, sendRaw } from './serve-malformed-send.js';

export interface MalformedRow {
  case: string;
  kind: string;
  status: number;
  code: string | null;
  message: string | null;
  /** Status and code as the case expects, and the message names the problem as it says. */
  as_expected: boolean;
}

export async function benchServeMalformed(model = 'models/fmnist-mlp') {
  await initBackend();
  const classifier = await loadClassifier(model);
  const dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-malformed-'));
  const file = path.join(dir, 'audit.log');
  const internal: string[] = [];
  const app = await createService({
    model: classifier,
    guard: parseGuardConfig(malformedGuard(file)),
    page: false,
    onInternalError: (e) => internal.push(String((e as Error)?.message ?? e)),
  });
  let closed = false;
  try {
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const tensorsBefore = tf.memory().numTensors;
    const rows: MalformedRow[] = [];
    const cases = malformedCases();
    for (const c of cases) {
      const res = await send(url, c.request);
      let error: { code?: string; message?: string } = {};
      try {
        error = JSON.parse(res.body).error ?? {};
      } catch {
        // not JSON: code and message stay null
      }
      rows.push({
        case: c.name,
        kind: c.kind,
        status: res.status,
        code: error.code ?? null,
        message: error.message ?? null,
        as_expected:
          res.status === c.status && error.code === c.code && c.message.test(error.message ?? ''),
      });
    }
    const tensorsAfter = tf.memory().numTensors;
    const health = await sendRaw(url, { method: 'GET', url: '/healthz', headers: {} });
    const ready = await sendRaw(url, { method: 'GET', url: '/readyz', headers: {} });
    await app.close(); // writes the lines of requests whose connection closes last
    closed = true;
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: number | null; error?: string; inputs?: unknown });
    return {
      benchmark: 'serve-malformed',
      model,
      cases: rows.length,
      as_expected: rows.filter((r) => r.as_expected).length,
      statuses_4xx: rows.filter((r) => r.status >= 400 && r.status < 500).length,
      healthz_after: health.status,
      readyz_after: ready.status,
      tensors_before: tensorsBefore,
      tensors_after: tensorsAfter,
      internal_errors: internal,
      audit_lines: lines.length,
      audit_rejection_lines: lines.filter((l) => l.status !== 200 && l.error !== undefined).length,
      audit_lines_with_inputs: lines.filter((l) => l.inputs !== undefined).length,
      rows,
    };
  } finally {
    if (!closed) await app.close();
    classifier.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rows as a Markdown table (case, status, code, message). */
export function markdownTable(rows: readonly MalformedRow[]): string {
  // Pipes and underscores escaped (`__proto__` is not bold), control characters (a PNG quoted
  // by the JSON parser) written as \xNN.
  const cell = (s: string) =>
    Array.from(s, (ch) => {
      const code = ch.charCodeAt(0);
      if (code < 32) return `\\x${code.toString(16).padStart(2, '0')}`;
      return ch === '|' || ch === '_' ? `\\${ch}` : ch;
    }).join('');
  const out = ['| # | case | status | code | message |', '|---|---|---|---|---|'];
  rows.forEach((r, i) => {
    out.push(
      `| ${i + 1} | ${cell(r.case)} | ${r.status} | \`${r.code}\` | ${cell(r.message ?? '')} |`,
    );
  });
  return out.join('\n');
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const mi = args.indexOf('--model');
  const result = await benchServeMalformed(mi >= 0 ? args[mi + 1] : undefined);
  process.stdout.write(
    args.includes('--markdown') ? `${markdownTable(result.rows)}\n` : `${JSON.stringify(result)}\n`,
  );
  process.exit(0);
}
