/**
 * Output locations are checked before any work: an --out naming a file, a folder under a file,
 * or a symbolic link loop is one line and exit 2 at once, nothing written; the library checks
 * too. (Root ignores permission bits, so an unwritable folder is tested through the library's
 * check only when not running as root.)
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputDir, checkOutputFile, writeFolder } from '../../src/engine/output-path.js';
import { packageRoot } from '../../src/engine/paths.js';
import { caught, tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('out-paths');
afterAll(() => tmp.cleanup());

const file = path.join(tmp.root, 'a-file');
writeFileSync(file, 'not a folder');
const loop = path.join(tmp.root, 'loop');
symlinkSync(path.join(tmp.root, 'loop2'), loop);
symlinkSync(loop, path.join(tmp.root, 'loop2'));

describe('commands refuse a bad output location before they start', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'train --out naming a file',
      ['train', '--arch', 'mlp', '--epochs', '1', '--out', file, '--json'],
      /--out .*a-file exists and is not a folder/,
    ],
    [
      'train --out under a file',
      ['train', '--arch', 'mlp', '--epochs', '1', '--out', path.join(file, 'model'), '--json'],
      /--out .*a part of the path is a file, not a folder/,
    ],
    [
      'train --out through a symbolic link loop',
      ['train', '--arch', 'mlp', '--epochs', '1', '--out', path.join(loop, 'model'), '--json'],
      /--out .*a symbolic link loop/,
    ],
    [
      'train-denoiser --out naming a file',
      ['train-denoiser', '--out', file, '--json'],
      /--out .*exists and is not a folder/,
    ],
    [
      'evaluate --out naming a file',
      ['evaluate', '--config', 'examples/quick.json', '--out', file, '--json'],
      /--out .*exists and is not a folder/,
    ],
    [
      'attack --save-examples under a file',
      [
        'attack',
        '--model',
        'models/fmnist-mlp',
        '--attack',
        'fgsm',
        '--n',
        '8',
        '--save-examples',
        path.join(file, 'pngs'),
        '--json',
      ],
      /--save-examples .*a part of the path is a file/,
    ],
  ];
  it.each(cases)('%s: exit 2, one line, nothing written', (_, args, pattern) => {
    const before = readdirSync(tmp.root).sort();
    const started = performance.now();
    expectBadInput(parry(...args), pattern);
    // Refused at once: well under the time any training or attack would take.
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(readdirSync(tmp.root).sort()).toEqual(before);
  });
});

describe('checkOutputDir / checkOutputFile', () => {
  it('accept existing folders, creatable paths and files in folders', () => {
    const fresh = path.join(tmp.root, 'x', 'y', 'z');
    expect(() => checkOutputDir(tmp.root, 'out')).not.toThrow();
    expect(() => checkOutputDir(fresh, 'out')).not.toThrow();
    expect(() => checkOutputFile(path.join(tmp.root, 'm.onnx'), 'out')).not.toThrow();
    expect(() => checkOutputFile(file, 'out')).not.toThrow();
  });

  it('refuse files, folders under files, folders as files and link loops with BAD_OPTION', async () => {
    const folder = path.join(tmp.root, 'folder');
    mkdirSync(folder);
    const cases: [() => void, RegExp][] = [
      [() => checkOutputDir(file, 'out'), /^out .*a-file exists and is not a folder$/],
      [() => checkOutputDir(path.join(file, 'm'), 'out'), /a part of the path is a file/],
      [() => checkOutputFile(folder, 'out'), /^out .*folder is a folder, not a file$/],
      [() => checkOutputDir(path.join(loop, 'm'), 'out'), /a symbolic link loop/],
    ];
    for (const [f, pattern] of cases) {
      const e = await caught(f);
      expect(e.code).toBe('BAD_OPTION');
      expect(e.message).toMatch(pattern);
    }
  });

  it.skipIf(process.getuid?.() === 0)('refuse a folder that is not writable', async () => {
    const locked = path.join(tmp.root, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    expect((await caught(() => checkOutputDir(locked, 'out'))).message).toMatch(/not writable/);
    expect((await caught(() => checkOutputDir(path.join(locked, 'm'), 'out'))).message).toMatch(
      /cannot be created: .*locked is not writable/,
    );
  });
});

describe('writeFolder', () => {
  const fill = (files: Record<string, string>) => async (dir: string) => {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  };
  const contents = (dir: string) =>
    Object.fromEntries(
      readdirSync(dir)
        .sort()
        .map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]),
    );

  it('creates a folder whole, replaces files in an existing one (others kept), and leaves no temporary', async () => {
    const base = path.join(tmp.root, 'wf');
    mkdirSync(base);
    const dir = path.join(base, 'model');
    await writeFolder(dir, fill({ 'model.json': 'a', 'w.bin': '1' }), ['model.json']);
    expect(contents(dir)).toEqual({ 'model.json': 'a', 'w.bin': '1' });
    writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    await writeFolder(dir, fill({ 'model.json': 'b', 'w.bin': '2' }), ['model.json']);
    expect(contents(dir)).toEqual({ 'model.json': 'b', 'notes.txt': 'mine', 'w.bin': '2' });
    expect(readdirSync(base)).toEqual(['model']);
  });

  it('a failing fill leaves the previous contents and no temporary', async () => {
    const base = path.join(tmp.root, 'wf-fail');
    mkdirSync(base);
    const dir = path.join(base, 'model');
    await writeFolder(dir, fill({ 'model.json': 'old' }));
    const failing = async (d: string) => {
      writeFileSync(path.join(d, 'model.json'), 'half');
      throw new Error('disk full');
    };
    await expect(writeFolder(dir, failing)).rejects.toThrow('disk full');
    expect(contents(dir)).toEqual({ 'model.json': 'old' });
    expect(readdirSync(base)).toEqual(['model']);
  });

  it('parry train killed mid-run leaves no model folder', async () => {
    const out = path.join(tmp.root, 'killed', 'model');
    const root = packageRoot();
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bin', 'parry.mjs'),
        'train',
        '--dataset',
        'synthetic:16x16x1:3:3000',
        '--arch',
        'cnn-small',
        '--epochs',
        '50',
        '--workers',
        '1',
        '--out',
        out,
      ],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    // Kill once the first epoch has been logged (training is under way).
    const training = await new Promise<boolean>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        if (/epoch 1:/.test(String(d))) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    expect(training).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
