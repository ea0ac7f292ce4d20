/**
 * POST /v1/predict. After the per-address limit and the API key (route hooks), in order: the
 * input check (JSON or image → values of the model's shape, finite, in bounds), the key's quota,
 * the extraction monitor's admission, the micro-batcher and the guarded model (with the detector
 * guard's verdict), then the extraction monitor's verdict on the answered queries. Each step's
 * verdict goes into the response and the audit line.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { detectorVerdict, type RowAnswer } from './guarded-predictor.js';
import { HttpError, unsupportedMediaType } from './http-error.js';
import { type DecodedInput, decodeImageInput, decodeJsonInputs } from './request-input.js';
import { IMAGE_CONTENT, predictSchema } from './routes.js';
import type { ServiceContext } from './service-context.js';
import { createDetectorMetrics, observeDetector } from './service-metrics.js';

export function registerPredictRoute(app: FastifyInstance, ctx: ServiceContext): void {
  const { model, predictor, metrics, guard } = ctx;
  const detector = predictor.detector;
  const detectorMetrics = detector && createDetectorMetrics(metrics.registry, detector.buckets);
  app.post(
    '/v1/predict',
    {
      schema: predictSchema(guard.guards.input.maxBatch),
      config: { doc: { summary: 'Predict classes', secured: true, content: IMAGE_CONTENT } },
      // After the per-address limit (onRequest), so key guessing is limited too; before the
      // body is read, so an unknown client's body is never parsed.
      preParsing: ctx.authenticate,
    },
    async (req) => {
      const s = ctx.state(req);
      const input = await ctx.step(req, 'input', () => decodeBody(req, model));
      s.rows = input.rows;
      s.inputSha256 = createHash('sha256')
        .update(Buffer.from(input.x.buffer, input.x.byteOffset, input.x.byteLength))
        .digest('hex');
      if (guard.audit.includeInputs) s.inputs = Array.from(input.x);
      const keyId = s.keyId!;
      // An open service has no keys: each client address gets its own quota.
      const bucket = ctx.keys.required ? keyId : `address:${req.ip}`;
      await ctx.step(req, 'quota', () => chargeQuota(ctx, bucket, keyId, input.rows));
      // A blocked or throttled key is refused before the model runs.
      if (ctx.extraction) {
        await ctx.step(req, 'extractionMonitor', () => ctx.extraction!.admit(bucket, ctx.now()));
      }
      // The connection names the client for the batcher's 'busy' wait.
      const answers = await ctx.batcher.submit(input.x, input.rows, req.raw.socket);
      for (const g of predictor.applied) s.verdicts[g] = 'applied';
      if (detector && detectorMetrics) {
        s.verdicts.detector = detectorVerdict(answers, detector);
        observeDetector(detectorMetrics, detector, answers);
      }
      await watchExtraction(ctx, req, bucket, keyId, input, answers);
      metrics.queries.inc({ key: keyId }, input.rows);
      // Smoothing's abstentions; the detector's are counted as flags.
      const abstained = answers.filter((a) => a.abstained && !a.flagged).length;
      if (abstained > 0) metrics.abstentions.inc(abstained);
      s.predictions = answers.map((a) => a.label);
      return {
        // The score is shown only under action 'flag': a withheld answer tells nothing more.
        predictions: answers.map(({ detectorScore, ...a }) => ({
          ...a,
          ...(a.label !== null && model.classNames ? { className: model.classNames[a.label] } : {}),
          ...(detector?.action === 'flag' ? { detectorScore } : {}),
        })),
        guards: s.verdicts,
      };
    },
  );
}

/** The request body as values: an image by its content type, else the JSON `inputs`. */
function decodeBody(
  req: FastifyRequest,
  model: { inputShape: readonly number[]; bounds: readonly [number, number] },
): DecodedInput {
  const sent = req.headers['content-type'];
  const type = String(sent ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  if (type === 'image/png' || type === 'image/jpeg') {
    return decodeImageInput(req.body as Buffer, type === 'image/png' ? 'png' : 'jpeg', model);
  }
  if (type !== 'application/json') throw unsupportedMediaType(sent);
  return decodeJsonInputs((req.body as { inputs: unknown[] }).inputs, model);
}

/** Charges `rows` examples to the bucket, or refuses with 429 and Retry-After. */
async function chargeQuota(ctx: ServiceContext, bucket: string, keyId: string, rows: number) {
  const d = await ctx.quota.take(bucket, rows, ctx.now());
  if (d.allowed) return;
  const what =
    d.reason === 'daily'
      ? 'the daily quota (guards.quota.perDay)'
      : 'the rate limit (guards.quota.rate, burst)';
  throw new HttpError(
    429,
    d.reason === 'daily' ? 'quota_exceeded' : 'rate_limited',
    `${rows} example(s) would exceed ${what} of key '${keyId}'; retry in ${d.retryAfterSeconds} s`,
    { 'retry-after': String(d.retryAfterSeconds) },
  );
}

/**
 * Shows the answered queries and their predicted classes to the extraction monitor (per bucket:
 * the key, or the client address of an open service); on alarm the policy answers, or withholds
 * the answer with 429 / 403, as the guard file says.
 */
async function watchExtraction(
  ctx: ServiceContext,
  req: FastifyRequest,
  bucket: string,
  keyId: string,
  input: DecodedInput,
  answers: readonly RowAnswer[],
) {
  if (ctx.extraction === undefined) return;
  const verdicts = ctx.state(req).verdicts;
  const labels = answers.map((a) => a.label);
  try {
    const v = await ctx.extraction.judge(bucket, input.x, input.rows, labels, ctx.now());
    verdicts.extractionMonitor = v.alarm ? 'alarm' : 'pass';
    if (v.alarm) ctx.metrics.extractionAlarms.inc({ key: keyId });
  } catch (e) {
    if (e instanceof HttpError) {
      verdicts.extractionMonitor = e.code;
      ctx.metrics.extractionAlarms.inc({ key: keyId });
    }
    throw e;
  }
}
