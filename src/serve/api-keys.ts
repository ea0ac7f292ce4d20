/**
 * API-key authentication. A client sends its key as `Authorization: Bearer KEY` or
 * `X-API-Key: KEY`; the service keeps only sha256 digests and compares the digest of what it
 * got against every stored one in constant time (a failed guess learns nothing from timing).
 * No keys configured: the service is open and every client is 'anonymous'.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-error.js';

export interface ApiKeyEntry {
  readonly id: string;
  readonly sha256: string;
}

export const ANONYMOUS = 'anonymous';

/** The key a request carries, or undefined. */
export function presentedKey(
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const header = headers['x-api-key'];
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined;
}

/** Checks API keys against a list of stored digests. */
export class ApiKeyGuard {
  private readonly digests: { id: string; digest: Buffer }[];

  constructor(keys: readonly ApiKeyEntry[]) {
    this.digests = keys.map((k) => ({ id: k.id, digest: Buffer.from(k.sha256, 'hex') }));
  }

  /** Whether any key is configured (else the service is open). */
  get required(): boolean {
    return this.digests.length > 0;
  }

  /** The id of the request's key; 401 when keys are configured and it is missing or unknown. */
  authenticate(headers: Record<string, string | string[] | undefined>): string {
    if (!this.required) return ANONYMOUS;
    const key = presentedKey(headers);
    if (key === undefined) {
      throw new HttpError(
        401,
        'missing_key',
        'an API key is required: send it as "Authorization: Bearer KEY" or "X-API-Key: KEY"',
        { 'www-authenticate': 'Bearer' },
      );
    }
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let found: string | undefined;
    for (const k of this.digests) {
      if (timingSafeEqual(digest, k.digest) && found === undefined) found = k.id;
    }
    if (found === undefined) {
      throw new HttpError(401, 'invalid_key', 'the API key is not valid', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    }
    return found;
  }
}
