/** Parsing `unknown` configs once at the boundary into typed values (zod), with one error shape. */
import type { z } from 'zod';
import { ParryError } from './errors.js';

/** Parses `config` with `schema`; a failure is a BAD_OPTION naming the path (`pgd: steps: ...`). */
export function parseWith<S extends z.ZodType>(
  fn: string,
  schema: S,
  config: unknown,
): z.output<S> {
  const r = schema.safeParse(config ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ParryError(
      'BAD_OPTION',
      `${fn}: ${issue.path.join('.') || 'config'}: ${issue.message}`,
    );
  }
  return r.data;
}
