/**
 * Errors parry raises on purpose. `code` tells the CLI how to exit:
 * bad input or options -> 2, everything else -> 1.
 */
export type ParryErrorCode =
  | 'BAD_OPTION' // an option or config value out of range or unknown
  | 'BAD_INPUT' // a tensor of the wrong shape, NaN, values outside bounds
  | 'BAD_FILE' // a missing, truncated or malformed file
  | 'UNSUPPORTED' // a valid request parry cannot serve (unknown layer, backend)
  | 'INTERNAL';

export class ParryError extends Error {
  readonly code: ParryErrorCode;

  constructor(code: ParryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ParryError';
    this.code = code;
  }

  /** Exit status of the CLI for this error: 2 for anything the user can fix, 1 otherwise. */
  get exitCode(): number {
    return this.code === 'INTERNAL' ? 1 : 2;
  }
}

export function isParryError(e: unknown): e is ParryError {
  return e instanceof ParryError;
}

/** Throws a BAD_OPTION/BAD_INPUT error built lazily, as tfjs-core's asserts do. */
export function check(
  condition: unknown,
  message: () => string,
  code: ParryErrorCode = 'BAD_INPUT',
): asserts condition {
  if (!condition) throw new ParryError(code, message());
}
