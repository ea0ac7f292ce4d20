/**
 * Models by content hash (a redis-server started here): a shared path with the right content is
 * used as it is; otherwise the copy in Redis is fetched once and checked; a damaged copy or a
 * missing one refuses the job, naming the hashes.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/engine/paths.js';
import {
  AssetHasher,
  assetKey,
  resolveAsset,
  uploadAsset,
} from '../../../src/engine/queue/assets.js';
import { sha256 } from '../../../src/engine/queue/codec.js';
import { type RedisServer, startRedis } from './redis-server.js';

let server: RedisServer;
let redis: Redis;
let dir: string;
const prefix = 'test';

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  dir = mkdtempSync(path.join(tmpdir(), 'parry-assets-test-'));
});
afterAll(async () => {
  redis?.disconnect();
  await server?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('assets', () => {
  it('uses a shared path with the right content, else fetches and checks the copy in Redis', async () => {
    const model = path.join(dir, 'model');
    cpSync(path.join(packageRoot(), 'models', 'fmnist-mlp'), model, { recursive: true });
    const hasher = new AssetHasher();
    const { ref, set } = hasher.describe(model);
    await uploadAsset(redis, prefix, ref, set);
    const cacheDir = path.join(dir, 'cache-1');
    expect(await resolveAsset(redis, prefix, ref, new AssetHasher(), { cacheDir })).toBe(model);
    // The path changes under the same name: the worker takes the copy in Redis instead.
    writeFileSync(path.join(model, 'model.json'), '{}');
    const fetched = await resolveAsset(redis, prefix, ref, new AssetHasher(), { cacheDir });
    expect(fetched).toBe(path.join(cacheDir, ref.$asset));
    const original = readFileSync(path.join(packageRoot(), 'models', 'fmnist-mlp', 'model.json'));
    expect(readFileSync(path.join(fetched, 'model.json'))).toEqual(original);
    // A damaged copy in Redis is refused (nothing cached for this worker).
    await redis.hset(assetKey(prefix, ref.$asset), 'model.json', '{"damaged":true}');
    await expect(
      resolveAsset(redis, prefix, ref, new AssetHasher(), { cacheDir: path.join(dir, 'cache-2') }),
    ).rejects.toThrow(
      new RegExp(
        `refused: the copy of ${model} in Redis has content [0-9a-f]{12}…, not the ${ref.$asset.slice(0, 12)}… the job asks for`,
      ),
    );
  });

  it('sends a single-file model with its sidecar, under the hash of both', async () => {
    const folder = path.join(dir, 'onnx');
    cpSync(path.join(packageRoot(), 'models', 'fmnist-mlp'), folder, { recursive: true });
    writeFileSync(path.join(folder, 'model.onnx'), 'weights');
    writeFileSync(path.join(folder, 'parry.json'), '{"bounds":[0,1]}');
    const { ref, set } = new AssetHasher().describe(path.join(folder, 'model.onnx'));
    // Independently: names sorted, each "name NUL length NUL" and its bytes.
    const text = 'model.onnx\u00007\u0000weights' + 'parry.json\u000016\u0000{"bounds":[0,1]}';
    expect(ref).toEqual({
      $asset: sha256(text),
      path: path.join(folder, 'model.onnx'),
      kind: 'file',
    });
    await uploadAsset(redis, prefix, ref, set);
    const cacheDir = path.join(dir, 'cache-3');
    const local = await resolveAsset(redis, prefix, ref, new AssetHasher(), {
      cacheDir,
      sharedPaths: false,
    });
    expect(local).toBe(path.join(cacheDir, ref.$asset, 'model.onnx'));
    expect(readFileSync(path.join(path.dirname(local), 'parry.json'), 'utf8')).toBe(
      '{"bounds":[0,1]}',
    );
  });
});
