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

/** One problem with an option or config value: where (`['attacks', 1, 'params', 'steps']`) and what. */
export interface OptionIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export class ParryError extends Error {
  readonly code: ParryErrorCode;
  /** Every problem found when options or a config were refused (the message names them all). */
  readonly issues: readonly OptionIssue[];

  constructor(
    code: ParryErrorCode,
    message: string,
    options?: { cause?: unknown; issues?: readonly OptionIssue[] },
  ) {
    super(message, options);
    this.name = 'ParryError';
    this.code = code;
    this.issues = options?.issues ?? [];
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
