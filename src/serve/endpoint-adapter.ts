/**
 * How parry talks to a prediction endpoint that is not a parry service: the adapter file (a JSON
 * request template with "$inputs" where the batch goes, and the path of the answers in the
 * response), the path and template helpers, and the reading of refusals (Retry-After, error
 * bodies). docs/serve.md shows an adapter for a TF-Serving-like API.
 */
import { z } from 'zod';
import { check } from '../errors.js';

/** What an adapter file holds (JSON): the model's facts, where to send, where to read. */
export const adapterSchema = z.strictObject({
  inputShape: z.array(z.number().int().positive()).min(1),
  numClasses: z.number().int().min(2),
  bounds: z.tuple([z.number(), z.number()]).default([0, 1]),
  /** Examples per request. */
  maxBatch: z.number().int().positive().default(32),
  request: z.strictObject({
    /** Appended to --url. */
    path: z.string().default(''),
    /** The JSON body; the string "$inputs" (exactly once) is replaced by the batch. */
    body: z.unknown(),
    /** Each example nested to inputShape, or flat. */
    layout: z.enum(['nested', 'flat']).default('nested'),
  }),
  response: z
    .strictObject({
      /** Path to the rows of probabilities, e.g. "predictions" or "outputs[*].scores". */
      probabilities: z.string().optional(),
      /** Path to the labels, e.g. "predictions[*].class". */
      labels: z.string().optional(),
    })
    .refine((r) => (r.probabilities === undefined) !== (r.labels === undefined), {
      message: 'give exactly one of probabilities or labels',
    }),
});
export type Adapter = z.output<typeof adapterSchema>;

/** Reads `path` ("a.b", "a[*].b", "[*]") out of `value`; `[*]` maps over an array. */
export function readPath(value: unknown, path: string): unknown {
  const tokens = path
    .replace(/\[\*\]/g, '.*')
    .split('.')
    .filter((t) => t !== '');
  const walk = (v: unknown, i: number): unknown => {
    if (i === tokens.length) return v;
    const t = tokens[i];
    if (t === '*') {
      if (!Array.isArray(v)) throw new Error(`'${tokens.slice(0, i).join('.')}' is not an array`);
      return v.map((e) => walk(e, i + 1));
    }
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, t)) {
      throw new Error(`no '${t}' at '${tokens.slice(0, i).join('.') || '(root)'}'`);
    }
    return walk((v as Record<string, unknown>)[t], i + 1);
  };
  return walk(value, 0);
}

/** `template` with the (single) string "$inputs" replaced by `inputs`. */
export function fillTemplate(template: unknown, inputs: unknown): unknown {
  let found = 0;
  const fill = (v: unknown): unknown => {
    if (v === '$inputs') {
      found++;
      return inputs;
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, fill(e)]));
    }
    return v;
  };
  const out = fill(template);
  check(
    found === 1,
    () => `adapter: request.body must hold "$inputs" exactly once, found ${found}`,
    'BAD_OPTION',
  );
  return out;
}

/** One example's values nested to `shape` (numbers printed with float32's 9 significant digits). */
export function nestRow(row: Float32Array, shape: readonly number[]): unknown {
  const num = (v: number) => Number(v.toPrecision(9));
  if (shape.length <= 1) return Array.from(row, num);
  const inner = shape.slice(1);
  const size = inner.reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0] }, (_, i) =>
    nestRow(row.subarray(i * size, (i + 1) * size), inner),
  );
}

/** Seconds from a Retry-After header (delta seconds or an HTTP date); undefined when absent. */
export function retryAfterSeconds(header: string | null, nowMs = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(header)) return Number(header);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** parry's `{ error: { code, message } }`, or the start of whatever else came back. */
export function errorOf(text: string, status: number): { code: string; message: string } {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e && typeof e.code === 'string') return { code: e.code, message: String(e.message ?? '') };
  } catch {
    // not JSON
  }
  return { code: `http_${status}`, message: text.slice(0, 200) };
}
