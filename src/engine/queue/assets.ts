/**
 * Models (and any other files a job reads) reach workers by content hash. The coordinator replaces
 * each path in a job's input by `{$asset: sha256, path, kind}` and stores the files in Redis under
 * that hash; a worker uses, in this order, its own cache (`cacheDir/<sha256>`), the same path if
 * it can read it there with the same hash (a shared disk), or the copy in Redis, which it writes
 * to its cache once and checks. A path whose content differs from the hash and no copy to fall back
 * on refuses the job, naming both hashes.
 *
 * The hash covers every file's relative name, length and bytes, in name order: a directory is
 * all the files under it; a file is itself plus its sidecars that exist (e.g. an ONNX model's
 * `parry.json`), under their base names.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { ParryError } from '../../errors.js';

/** An asset as a job carries it. */
export interface AssetRef {
  $asset: string;
  /** Where the coordinator read it (a worker on a shared disk may read it there). */
  path: string;
  kind: 'dir' | 'file';
}

export const isAssetRef = (v: unknown): v is AssetRef =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as AssetRef).$asset === 'string' &&
  typeof (v as AssetRef).path === 'string';

/** Files an asset is made of: `root` plus sorted relative names. */
interface FileSet {
  root: string;
  files: string[];
  kind: 'dir' | 'file';
  /** The asset's own name inside its root (a file asset), '' for a directory. */
  name: string;
}

/** How long Redis keeps an asset after its last upload (a week). */
const ASSET_TTL_SECONDS = 7 * 24 * 3600;

export const assetKey = (prefix: string, hash: string) => `${prefix}:asset:${hash}`;

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => {
      const rel = path.posix.join(prefix, e.name);
      return e.isDirectory() ? filesUnder(dir, rel) : [rel];
    })
    .sort();
}

function fileSet(p: string, sidecars: readonly string[]): FileSet {
  if (!existsSync(p)) throw new ParryError('BAD_FILE', `queue: ${p} does not exist`);
  if (statSync(p).isDirectory()) return { root: p, files: filesUnder(p), kind: 'dir', name: '' };
  const root = path.dirname(p);
  const name = path.basename(p);
  const extra = sidecars.filter((s) => s !== name && existsSync(path.join(root, s)));
  return { root, files: [name, ...extra].sort(), kind: 'file', name };
}

/** sha256 (hex) of named contents, in the order given (callers sort the names). */
export function hashContents(entries: Iterable<[string, Uint8Array]>): string {
  const h = createHash('sha256');
  for (const [name, bytes] of entries) {
    h.update(`${name}\0${bytes.byteLength}\0`);
    h.update(bytes);
  }
  return h.digest('hex');
}

function* readSet(set: FileSet): Generator<[string, Uint8Array]> {
  for (const rel of set.files) yield [rel, readFileSync(path.join(set.root, rel))];
}

/** A cheap fingerprint of a set's files (names, sizes, modification times) for memoising. */
function statSignature(set: FileSet): string {
  return set.files
    .map((rel) => {
      const s = statSync(path.join(set.root, rel));
      return `${rel}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
}

/**
 * Content hashes of paths, memoised on the files' sizes and modification times, so a model
 * sent with every job of a run is read once.
 */
export class AssetHasher {
  private readonly memo = new Map<string, { signature: string; hash: string }>();

  constructor(private readonly sidecars: readonly string[] = ['parry.json']) {}

  /** The reference a job carries for `p`, and the files behind it. */
  describe(p: string): { ref: AssetRef; set: FileSet } {
    const abs = path.resolve(p);
    const set = fileSet(abs, this.sidecars);
    const signature = statSignature(set);
    let known = this.memo.get(abs);
    if (known?.signature !== signature) {
      known = { signature, hash: hashContents(readSet(set)) };
      this.memo.set(abs, known);
    }
    return { ref: { $asset: known.hash, path: abs, kind: set.kind }, set };
  }

  /** The hash of `p` as it is now, or null when it cannot be read. */
  hashOf(p: string): string | null {
    try {
      return this.describe(p).ref.$asset;
    } catch {
      return null;
    }
  }
}

/** Stores an asset's files in Redis (once: an existing copy only has its expiry renewed). */
export async function uploadAsset(
  redis: Redis,
  prefix: string,
  ref: AssetRef,
  set: FileSet,
): Promise<void> {
  const key = assetKey(prefix, ref.$asset);
  if ((await redis.expire(key, ASSET_TTL_SECONDS)) === 1) return;
  // Written under a temporary key and renamed, so a reader never sees half an asset.
  const tmp = `${key}:upload:${process.pid}:${Date.now()}`;
  const fields: (string | Buffer)[] = [];
  for (const [rel, bytes] of readSet(set)) fields.push(rel, Buffer.from(bytes));
  await redis
    .multi()
    .hset(tmp, ...fields)
    .rename(tmp, key)
    .expire(key, ASSET_TTL_SECONDS)
    .exec();
}

export interface ResolveOptions {
  /** Where fetched assets are kept, one directory per hash. */
  cacheDir: string;
  /** Use the coordinator's path when it exists here with the same content (default true). */
  sharedPaths?: boolean;
}

/**
 * The local path of an asset for a worker: its cache, the shared path, or a copy fetched from
 * Redis (then checked against the hash). Refuses, naming path and hashes, when none matches.
 */
export async function resolveAsset(
  redis: Redis,
  prefix: string,
  ref: AssetRef,
  hasher: AssetHasher,
  opts: ResolveOptions,
): Promise<string> {
  if (!/^[0-9a-f]{64}$/.test(ref.$asset)) {
    throw new ParryError('BAD_INPUT', `queue: '${ref.$asset}' is not a sha256 content hash`);
  }
  const dir = path.join(opts.cacheDir, ref.$asset);
  const local = (root: string) =>
    ref.kind === 'file' ? path.join(root, path.basename(ref.path)) : root;
  const damaged = existsSync(dir);
  if (damaged && hasher.hashOf(local(dir)) === ref.$asset) return local(dir);
  let shared: string | null = null;
  if (opts.sharedPaths !== false && existsSync(ref.path)) {
    shared = hasher.hashOf(ref.path);
    if (shared === ref.$asset) return ref.path;
  }
  const stored = await redis.hgetallBuffer(assetKey(prefix, ref.$asset));
  const names = Object.keys(stored).sort();
  if (names.length === 0) {
    const here =
      shared === null
        ? `${ref.path} is not readable here`
        : `${ref.path} here has content ${shared.slice(0, 12)}…`;
    throw new ParryError(
      'BAD_FILE',
      `queue: refused: the job needs ${ref.kind === 'dir' ? 'directory' : 'file'} ${ref.path} with content ${ref.$asset.slice(0, 12)}…, ` +
        `but ${here} and Redis holds no copy of it`,
    );
  }
  const got = hashContents(names.map((n) => [n, stored[n]] as [string, Uint8Array]));
  if (got !== ref.$asset) {
    throw new ParryError(
      'BAD_FILE',
      `queue: refused: the copy of ${ref.path} in Redis has content ${got.slice(0, 12)}…, ` +
        `not the ${ref.$asset.slice(0, 12)}… the job asks for`,
    );
  }
  for (const n of names) {
    if (n.split('/').some((part) => part === '..' || part === '') || path.isAbsolute(n)) {
      throw new ParryError('BAD_FILE', `queue: refused: asset file name '${n}' leaves its folder`);
    }
  }
  // Written to a private folder, then renamed into place: concurrent workers never see a half.
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  for (const n of names) {
    await mkdir(path.dirname(path.join(tmp, n)), { recursive: true });
    await writeFile(path.join(tmp, n), stored[n]);
  }
  await mkdir(opts.cacheDir, { recursive: true });
  if (damaged) await rm(dir, { recursive: true, force: true });
  try {
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (hasher.hashOf(local(dir)) !== ref.$asset) throw e; // another worker put it there first
  }
  return local(dir);
}
