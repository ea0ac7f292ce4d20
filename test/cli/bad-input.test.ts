/**
 * Bad input, table-driven, through the real CLI: every case must exit 2 with nothing on stdout
 * (all run with --json), one line on stderr naming the culprit, and no output file left behind.
 * Cases cover model folders and files (TF.js and ONNX), data sets, option values, configs,
 * output paths and poisoning recipes. (Cases run four at a time.)
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { saveLayersModel } from '../../src/models/index.js';
import { tempDir } from '../models/tmp.js';

const root = packageRoot();
const tmp = await tempDir('bad-input');
afterAll(() => tmp.cleanup());
const at = (...p: string[]) => path.join(tmp.root, ...p);

// Fixtures: broken models, configs and files.
const MLP = 'models/fmnist-mlp';
mkdirSync(at('empty'));
mkdirSync(at('bad-json'));
writeFileSync(at('bad-json', 'model.json'), '{ not json');
cpSync(path.join(root, MLP), at('nan'), { recursive: true });
const shard = readFileSync(at('nan', 'group1-shard1of1.bin'));
shard.writeUInt32LE(0xffffffff, 0);
writeFileSync(at('nan', 'group1-shard1of1.bin'), shard);
cpSync(path.join(root, MLP), at('no-shard'), { recursive: true });
writeFileSync(at('no-shard', 'group1-shard1of1.bin'), Buffer.alloc(0));
writeFileSync(at('bad.onnx'), Uint8Array.from([0x08, 0xff, 0xff, 0xff]));
writeFileSync(at('a-file'), 'x');
symlinkSync(at('loop-b'), at('loop-a'));
symlinkSync(at('loop-a'), at('loop-b'));
const config = (name: string, value: unknown) => {
  writeFileSync(at(name), typeof value === 'string' ? value : JSON.stringify(value));
  return at(name);
};
const base = { n: 10, models: [{ path: path.join(root, MLP) }], attacks: [{ attack: 'fgsm' }] };
writeFileSync(at('not-a-manifest.json'), JSON.stringify({ format: 'something else' }));
// Finite weights whose logits overflow to infinity on every input.
{
  const dense = tfl.layers.dense({ units: 10, inputShape: [784], name: 'huge' });
  const overflow = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: [28, 28, 1] }), dense],
  });
  dense.setWeights([tf.fill([784, 10], 3e37), tf.zeros([10])]);
  await saveLayersModel(overflow, at('overflow'));
  overflow.dispose();
}

/** [name, args, pattern the one stderr line must match, a path that must not exist after]. */
type Case = [string, string[], RegExp, string?];

const attack = (...more: string[]) => [
  'attack',
  '--model',
  MLP,
  '--attack',
  'fgsm',
  '--n',
  '8',
  ...more,
];

const CASES: Case[] = [
  // Models: folders and files.
  ['missing model folder', ['attack', '--model', at('nowhere')], /nowhere/],
  ['model path is a plain file', ['predict', '--model', at('a-file')], /a-file/],
  ['empty model folder', ['predict', '--model', at('empty')], /empty/],
  ['model.json that is not JSON', ['predict', '--model', at('bad-json')], /bad-json/],
  [
    'NaN weights',
    ['predict', '--model', at('nan')],
    /weight 'dense1\/kernel' has .* NaN or infinite/,
  ],
  ['truncated weights file', ['predict', '--model', at('no-shard')], /no-shard/],
  [
    'logits that overflow (smoothing)',
    [
      'certify',
      '--model',
      at('overflow'),
      '--method',
      'smoothing',
      '--sigma',
      '0.25',
      '--n-examples',
      '2',
      '--n',
      '100',
      '--n0',
      '10',
    ],
    /logits are NaN or infinite on 2 of 2 examples/,
  ],
  [
    'logits that overflow (predict)',
    ['predict', '--model', at('overflow')],
    /logits are NaN or infinite on 256 of 256 examples/,
  ],
  [
    'logits that overflow (attack)',
    ['attack', '--model', at('overflow'), '--n', '8', '--workers', '1'],
    /attack pgd: the model's logits are NaN or infinite on 8 of 8/,
  ],
  ['malformed ONNX file', ['predict', '--model', at('bad.onnx')], /bad\.onnx is not an ONNX model/],
  ['ONNX file that does not exist', ['predict', '--model', at('none.onnx')], /none\.onnx/],
  [
    '--model through a symbolic link loop',
    ['predict', '--model', at('loop-a')],
    /loop-a is a symbolic link loop/,
  ],
  // Data sets.
  ['unknown data set', ['predict', '--model', MLP, '--dataset', 'imagenet'], /imagenet/],
  [
    'mnist folder that does not exist',
    ['predict', '--model', MLP, '--dataset', `mnist:${at('nowhere')}`],
    /nowhere/,
  ],
  [
    'cifar10 folder that does not exist',
    ['predict', '--model', MLP, '--dataset', `cifar10:${at('nowhere')}`],
    /nowhere/,
  ],
  [
    'synthetic spec without channels',
    ['predict', '--model', MLP, '--dataset', 'synthetic:28x28:10'],
    /synthetic/,
  ],
  [
    'synthetic set too large',
    ['predict', '--model', MLP, '--dataset', 'synthetic:100000x100000x3:10'],
    /exceeds/,
  ],
  [
    'synthetic set with one class',
    ['predict', '--model', MLP, '--dataset', 'synthetic:28x28x1:1'],
    /numClasses/,
  ],
  [
    'examples of the wrong shape',
    ['predict', '--model', MLP, '--dataset', 'synthetic:8x8x1:10:20'],
    /does not match the model's \[28,28,1\]/,
  ],
  [
    'labels the model has no class for',
    ['predict', '--model', MLP, '--dataset', 'synthetic:28x28x1:12:60'],
    /label 11/,
  ],
  // Option values.
  ['--n 0', attack('--n', '0'), /--n/],
  ['--n negative', attack('--n', '-3'), /--n/],
  ['--n not a number', attack('--n', 'abc'), /--n/],
  ['--n past the data set', attack('--n', '5000'), /--n 5000/],
  ['--offset past the data set', attack('--offset', '1000'), /--offset 1000/],
  ['--eps negative', attack('--eps', '-1'), /--eps/],
  ['--eps not a number', attack('--eps', 'big'), /--eps/],
  ['unknown --norm', attack('--norm', 'l3'), /--norm|l3/],
  ['unknown --attack', ['attack', '--model', MLP, '--attack', 'magic'], /magic/],
  ['--steps negative', ['attack', '--model', MLP, '--attack', 'pgd', '--steps', '-1'], /--steps/],
  ['--batch-size 0', attack('--batch-size', '0'), /--batch-size/],
  ['--workers negative', attack('--workers', '-1'), /--workers/],
  ['--workers far above the cores', attack('--workers', '1000'), /workers 1000/],
  ['--seed negative', attack('--seed', '-1'), /--seed/],
  ['--seed fractional', attack('--seed', '1.5'), /--seed/],
  [
    'a flag and its --no- form',
    ['attack', '--model', MLP, '--random-start', '--no-random-start'],
    /contradict/,
  ],
  [
    'an option the attack does not read',
    ['attack', '--model', MLP, '--attack', 'fgsm', '--decay', '0.5'],
    /decay/,
  ],
  ['unknown --backend', attack('--backend', 'gpu9'), /gpu9/],
  ['unknown --engine', attack('--engine', 'cuda'), /--engine|cuda/],
  ['predict --n past the data set', ['predict', '--model', MLP, '--n', '1001'], /--n 1001/],
  ['unknown certify --method', ['certify', '--model', MLP, '--method', 'magic'], /magic/],
  ['smoothing without --sigma', ['certify', '--model', MLP, '--method', 'smoothing'], /sigma/],
  [
    'smoothing --sigma 0',
    ['certify', '--model', MLP, '--method', 'smoothing', '--sigma', '0'],
    /sigma/,
  ],
  [
    'crown on a model it cannot bound',
    [
      'certify',
      '--model',
      'models/fmnist-resnet',
      '--method',
      'crown',
      '--eps',
      '0.01',
      '--n-examples',
      '2',
    ],
    /joins two branches/,
  ],
  [
    'detect --fpr 0',
    ['detect', '--model', MLP, '--detector', 'mahalanobis', '--fpr', '0'],
    /--fpr/,
  ],
  ['unknown detector', ['detect', '--model', MLP, '--detector', 'crystal-ball'], /crystal-ball/],
  ['unknown preprocessing step', ['defend', '--model', MLP, '--preprocess', 'magic:x=1'], /magic/],
  ['bad preprocessing parameter', ['defend', '--model', MLP, '--preprocess', 'jpeg:q=500'], /q/],
  [
    'unknown --arch',
    ['train', '--arch', 'transformer', '--out', at('t1')],
    /transformer/,
    at('t1'),
  ],
  [
    'train --epochs 0',
    ['train', '--arch', 'mlp', '--epochs', '0', '--out', at('t2')],
    /--epochs/,
    at('t2'),
  ],
  [
    'train --lr negative',
    ['train', '--arch', 'mlp', '--lr', '-1', '--out', at('t3')],
    /--lr/,
    at('t3'),
  ],
  [
    'unknown --defense',
    ['train', '--arch', 'mlp', '--defense', 'magic', '--out', at('t4')],
    /magic/,
    at('t4'),
  ],
  [
    'export --out without .onnx',
    ['export', '--model', MLP, '--out', at('m.bin')],
    /\.onnx/,
    at('m.bin'),
  ],
  ['export --out is a folder', ['export', '--model', MLP, '--out', at('empty')], /empty/],
  // Configs.
  [
    'config file that does not exist',
    ['evaluate', '--config', at('none.json'), '--out', at('e1')],
    /none\.json/,
    at('e1'),
  ],
  [
    'config that is not JSON',
    ['evaluate', '--config', config('c1.json', '{ nope'), '--out', at('e2')],
    /c1\.json/,
    at('e2'),
  ],
  [
    'config with an unknown key',
    ['evaluate', '--config', config('c2.json', { ...base, colour: 'red' }), '--out', at('e3')],
    /colour/,
    at('e3'),
  ],
  [
    'config with an unknown attack',
    [
      'evaluate',
      '--config',
      config('c3.json', { ...base, attacks: [{ attack: 'magic' }] }),
      '--out',
      at('e4'),
    ],
    /magic/,
    at('e4'),
  ],
  [
    'config with a negative eps',
    [
      'evaluate',
      '--config',
      config('c4.json', { ...base, eps: { linf: [-0.1] } }),
      '--out',
      at('e5'),
    ],
    /eps/,
    at('e5'),
  ],
  [
    'config naming a missing model',
    [
      'evaluate',
      '--config',
      config('c5.json', { ...base, models: [{ path: at('nowhere') }] }),
      '--out',
      at('e6'),
    ],
    /nowhere/,
    at('e6'),
  ],
  ['evaluate without --out', ['evaluate', '--config', config('c6.json', base)], /--out/],
  [
    'config with a detector fpr of 1',
    [
      'evaluate',
      '--config',
      config('c7.json', {
        ...base,
        models: [
          { path: path.join(root, MLP), defense: { detector: { name: 'mahalanobis', fpr: 1 } } },
        ],
      }),
      '--out',
      at('e7'),
    ],
    /fpr/,
    at('e7'),
  ],
  // Output paths.
  [
    'train --out naming a file',
    ['train', '--arch', 'mlp', '--out', at('a-file')],
    /a-file exists and is not a folder/,
  ],
  [
    'evaluate --out under a file',
    ['evaluate', '--config', config('c8.json', base), '--out', at('a-file', 'x')],
    /a part of the path is a file/,
  ],
  [
    'attack --save-examples under a file',
    attack('--save-examples', at('a-file', 'x')),
    /--save-examples/,
  ],
  [
    'poison --out through a link loop',
    ['poison', '--attack', 'badnets', '--out', at('loop-a', 'p')],
    /symbolic link loop/,
  ],
  // Poisoning.
  [
    'poison --rate above 1',
    ['poison', '--attack', 'badnets', '--rate', '2', '--out', at('p1')],
    /--rate/,
    at('p1'),
  ],
  [
    'poison without the model clean-label needs',
    ['poison', '--attack', 'clean-label', '--out', at('p2')],
    /--model/,
    at('p2'),
  ],
  [
    'poison trigger larger than the image',
    ['poison', '--attack', 'badnets', '--patch-size', '29', '--out', at('p3')],
    /29/,
    at('p3'),
  ],
  [
    'poison --apply-trigger with a missing manifest',
    ['poison', '--apply-trigger', at('none.json'), '--out', at('p4')],
    /none\.json/,
    at('p4'),
  ],
  [
    'poison --apply-trigger with something else',
    ['poison', '--apply-trigger', at('not-a-manifest.json'), '--out', at('p5')],
    /format|manifest/,
    at('p5'),
  ],
];

/** The CLI, asynchronously (cases run concurrently). */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(root, 'bin', 'parry.mjs'), ...args, '--json'],
      {
        cwd: root,
        env: { ...process.env, PARRY_BACKEND: 'wasm' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.concurrent('bad input: exit 2, one line naming the culprit, nothing on stdout or disk', () => {
  it('has at least 60 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
  });
  it.each(CASES)('%s', async (_, args, pattern, output) => {
    const r = await run(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^(parry: |error: )/);
    expect(lines[0]).toMatch(pattern);
    if (output !== undefined) expect(existsSync(output)).toBe(false);
  });
});
