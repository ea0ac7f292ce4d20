/**
 * `parry serve --model DIR|model.onnx [--guard guard.yaml] [--port 8080] [--host 127.0.0.1]
 * [--redis redis://…]`: the model as an HTTP service behind the guards of a guard file (src/serve);
 * with --redis the quotas live in Redis, shared by every instance on it. Prints the URL once
 * listening; SIGINT / SIGTERM stop it gracefully (requests in flight are answered first; a
 * second signal exits at once). `parry serve --hash-key [KEY]` prints the digest guard.yaml
 * stores for an API key (read from stdin when not given, so it stays out of shell history).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadClassifier } from '../models/index.js';
import { hashApiKey, loadGuardConfig, parseGuardConfig } from '../serve/guard-config.js';
import {
  checkRedisUrl,
  DEFAULT_QUOTA_PREFIX,
  RedisQuotaStore,
  redactUrl,
} from '../serve/redis-quota.js';
import { createService } from '../serve/server.js';
import {
  badOption,
  type CommonOptions,
  emit,
  log,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface ServeOptions extends CommonOptions {
  model?: string;
  guard?: string;
  redis?: string;
  redisPrefix: string;
  page: boolean;
  port: number;
  host: string;
  hashKey?: string | true;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n > 65535) {
    throw new InvalidArgumentError(`must be a port number in [0, 65535], got '${value}'`);
  }
  return n;
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('serve a model over HTTP behind guards (API keys, quotas, input checks, defences)')
    .option(
      '--model <path>',
      'TF.js LayersModel or GraphModel directory, or an ONNX file (model.onnx)',
    )
    .option(
      '--guard <file>',
      'guard file (YAML; docs/serve.md); default: built-in limits, no API keys',
    )
    .option('--port <n>', 'TCP port (0: any free port)', parsePort, 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--redis <url>',
      'keep quotas in Redis (redis://host:port) so that several instances share them; default: in memory',
    )
    .option(
      '--redis-prefix <prefix>',
      'prefix of the quota keys in Redis (instances sharing quotas use the same one)',
      DEFAULT_QUOTA_PREFIX,
    )
    .option('--no-page', 'do not serve the browser page at /')
    .option(
      '--hash-key [key]',
      'print the sha256 digest guard.yaml stores for an API key (read from stdin if omitted), then exit',
    );
  return withCommonOptions(cmd).action((opts: ServeOptions) => runServe(opts));
}

async function runServe(opts: ServeOptions): Promise<void> {
  if (opts.hashKey !== undefined) {
    const key =
      opts.hashKey === true ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : opts.hashKey;
    if (key === '') throw badOption('--hash-key: the key is empty');
    const sha256 = hashApiKey(key);
    emit({ command: 'serve', sha256 }, opts, () => sha256);
    return;
  }
  if (opts.model === undefined) throw badOption('serve: --model is required (or --hash-key)');
  if (opts.workers !== undefined) {
    throw badOption('serve: --workers is not used: the service runs one model in this process');
  }
  if (opts.redis !== undefined) checkRedisUrl(opts.redis);
  const guard = opts.guard ? loadGuardConfig(opts.guard) : parseGuardConfig({});
  const backend = await setUpBackend(opts);
  const quotaStore = opts.redis
    ? await RedisQuotaStore.connect(opts.redis, guard.guards.quota, { prefix: opts.redisPrefix })
    : undefined;
  let model: Awaited<ReturnType<typeof loadClassifier>> | undefined;
  let app: Awaited<ReturnType<typeof createService>>;
  try {
    model = await loadClassifier(opts.model);
    app = await createService({
      model,
      guard,
      modelName: path.basename(path.resolve(opts.model)),
      seed: opts.seed,
      quotaStore,
      page: opts.page,
      onInternalError: (e) => log(`parry serve: internal error: ${(e as Error)?.stack ?? e}`),
    });
  } catch (e) {
    model?.dispose();
    await quotaStore?.close();
    throw e;
  }
  let url: string;
  try {
    url = await app.listen({ port: opts.port, host: opts.host });
  } catch (e) {
    await app.close();
    model.dispose();
    throw badOption(`serve: cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`);
  }
  const g = guard.guards;
  log(
    `parry serve: ${opts.model} on ${backend}; ${g.apiKeys.length > 0 ? `${g.apiKeys.length} API key(s)` : 'open (no API keys)'}, ` +
      `quota ${g.quota.rate}/s burst ${g.quota.burst}, ${g.quota.perDay}/day per key${opts.redis ? ` in Redis ${redactUrl(opts.redis)}` : ''}` +
      `${g.preprocess ? `; preprocess ${g.preprocess}` : ''}${g.smoothing ? `; smoothing sigma=${g.smoothing.sigma}` : ''}` +
      `${g.detector ? `; detector ${g.detector.action} (${g.detector.path})` : ''}` +
      `${g.output ? `; output ${g.output}` : ''}` +
      `${g.extractionMonitor ? `; extraction monitor ${g.extractionMonitor.method} (delta ${g.extractionMonitor.delta}, on alarm ${g.extractionMonitor.onAlarm})` : ''}` +
      `${guard.audit.path ? `; audit log ${guard.audit.path}` : ''}`,
  );
  emit({ command: 'serve', url, model: opts.model, backend }, opts, () => `listening on ${url}`);
  const signal = await stopSignal();
  log(`parry serve: ${signal}: finishing requests in flight`);
  await app.close();
  model.dispose();
  log('parry serve: stopped');
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const first = (signal: string) => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      const force = () => process.exit(130);
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(signal);
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}
