/**
 * `parry serve` as a user runs it: the compiled CLI on a free loopback port, real HTTP requests,
 * SIGTERM for a graceful stop. Also `--hash-key` and bad options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { hashApiKey } from '../../src/serve/guard-config.js';
import { nested, testImages } from '../serve/helpers.js';
import { freePort, startRedis } from '../serve/redis-server.js';
import { expectBadInput, parry } from './helpers.js';

const root = packageRoot();
const started: ChildProcess[] = [];
afterAll(() => {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
});

/** Starts `parry serve ...args`; resolves with the URL it prints once listening. */
function serve(args: string[]) {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'parry.mjs'), 'serve', ...args], {
    cwd: root,
    env: { ...process.env, PARRY_BACKEND: 'wasm' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) resolve(m[1]);
    });
    exited.then((code) => reject(new Error(`parry serve exited ${code}: ${stderr}`)));
  });
  return { child, url, exited, output: () => ({ stdout, stderr }) };
}

describe('parry serve', () => {
  it('serves predictions on a free port and stops on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-cli-'));
    const guardFile = path.join(dir, 'guard.yaml');
    writeFileSync(
      guardFile,
      [
        'guards:',
        '  apiKeys:',
        `    - { id: ci, sha256: ${hashApiKey('ci-key')} }`,
        'audit:',
        '  path: audit.log',
        '',
      ].join('\n'),
    );
    const s = serve([
      '--model',
      'models/fmnist-mlp',
      '--guard',
      guardFile,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    const url = await s.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready' });
    const images = testImages(1);
    const request = (headers: Record<string, string>) =>
      fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ inputs: [nested(images.x, 0)] }),
      });
    const denied = await request({});
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('missing_key');
    const ok = await request({ authorization: 'Bearer ci-key' });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as {
      predictions: { label: number; probabilities: number[] }[];
    };
    expect(body.predictions).toHaveLength(1);
    expect(body.predictions[0].label).toBe(images.labels[0]);
    expect(body.predictions[0].probabilities).toHaveLength(10);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.output().stderr).toMatch(
      /SIGTERM: finishing requests in flight\nparry serve: stopped/,
    );
    expect(s.output().stdout.trim().split('\n')).toEqual([`listening on ${url}`]);
  });

  it('--redis: two instances share one quota; the guard summary names the monitor', async () => {
    const redis = await startRedis();
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-cli-'));
      const guardFile = path.join(dir, 'guard.yaml');
      writeFileSync(
        guardFile,
        [
          'guards:',
          '  quota: { rate: 100, burst: 64, perDay: 3 }',
          '  extractionMonitor: { method: prada, onAlarm: throttle }',
          '',
        ].join('\n'),
      );
      const args = ['--model', 'models/fmnist-mlp', '--guard', guardFile, '--port', '0'];
      const a = serve([...args, '--redis', redis.url, '--redis-prefix', 'cli-test:']);
      const b = serve([...args, '--redis', redis.url, '--redis-prefix', 'cli-test:']);
      const urls = [await a.url, await b.url];
      expect(a.output().stderr).toMatch(
        /in Redis redis:\/\/127\.0\.0\.1:\d+.*extraction monitor prada \(delta 0\.9, on alarm throttle\)/,
      );
      const images = testImages(1);
      const ask = (url: string) =>
        fetch(`${url}/v1/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [nested(images.x, 0)] }),
        });
      const statuses: number[] = [];
      for (const i of [0, 1, 0, 1]) statuses.push((await ask(urls[i])).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const refused = await ask(urls[0]);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      for (const s of [a, b]) s.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('--hash-key prints the digest guard.yaml stores', () => {
    const r = parry('serve', '--hash-key', 'abc');
    expect(r.code).toBe(0);
    // FIPS 180-2 test vector: sha256("abc").
    expect(r.stdout.trim()).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('names a Redis that does not answer, exit 2', async () => {
    const port = await freePort();
    expectBadInput(
      parry('serve', '--model', 'models/fmnist-mlp', '--redis', `redis://127.0.0.1:${port}`),
      new RegExp(`--redis: cannot reach Redis at redis://127.0.0.1:${port}`),
    );
  });

  it('refuses bad options and guard files with one line, exit 2', () => {
    expectBadInput(parry('serve'), /serve: --model is required/);
    expectBadInput(
      parry('serve', '--model', 'models/fmnist-mlp', '--workers', '2'),
      /--workers is not used/,
    );
    expectBadInput(
      parry('serve', '--model', 'models/fmnist-mlp', '--port', '70000'),
      /port number in \[0, 65535\]/,
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-cli-'));
    const bad = path.join(dir, 'guard.yaml');
    expectBadInput(
      parry('serve', '--model', 'models/fmnist-mlp', '--redis', 'http://127.0.0.1:6379'),
      /--redis: .http:\/\/127.0.0.1:6379. is not a redis:\/\/HOST:PORT or rediss:\/\/HOST:PORT URL/,
    );
    writeFileSync(bad, 'guards:\n  quota:\n    perDay: -3\n');
    expectBadInput(
      parry('serve', '--model', 'models/fmnist-mlp', '--guard', bad),
      /guards\.quota\.perDay: expected a positive integer, got -3/,
    );
  });
});
