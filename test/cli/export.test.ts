/**
 * `parry export` and ONNX models on the command line: the exported file answers `parry attack`
 * exactly as the TF.js model does, `parry info` reads it, and bad paths or files are one-line
 * errors with exit 2. Runs the compiled CLI (`npm run build` first).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { readOnnx, writeOnnx } from '../../src/models/onnx/graph.js';
import { expectBadInput, parry } from './helpers.js';

const root = packageRoot();
const MLP = join(root, 'models', 'fmnist-mlp');
const dir = mkdtempSync(join(tmpdir(), 'parry-export-'));

describe('parry export', () => {
  it('writes an ONNX file that parry attacks exactly as the TF.js model', () => {
    const out = join(dir, 'mlp.onnx');
    const r = parry('export', '--model', MLP, '--format', 'onnx', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).bytes).toBeGreaterThan(1000);
    const info = JSON.parse(parry('info', '--model', out, '--json').stdout);
    expect([info.format, info.numClasses, info.inputShape]).toEqual(['onnx', 10, [28, 28, 1]]);
    const attack = ['attack', '--attack', 'pgd', '--eps', '0.05', '--steps', '5', '--n', '64'];
    const [tfjs, onnx] = [MLP, out].map((m) =>
      JSON.parse(parry(...attack, '--model', m, '--json').stdout),
    );
    expect(onnx.clean_accuracy).toBe(tfjs.clean_accuracy);
    expect(onnx.robust_accuracy).toBe(tfjs.robust_accuracy);
  });

  it('refuses a bad output path before loading anything, and a malformed ONNX file', () => {
    expectBadInput(
      parry('export', '--model', MLP, '--out', join(dir, 'no', 'm.onnx')),
      /is not a directory/,
    );
    expectBadInput(parry('export', '--model', MLP, '--out', join(dir, 'm.txt')), /ends in \.onnx/);
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, 'not a protobuf at all');
    expectBadInput(parry('info', '--model', bad), /bad\.onnx is not an ONNX model/);
  });

  it('an operator without a gradient rule: --engine ort refuses it by name, auto runs tfjs', () => {
    const out = join(dir, 'mlp-cast.onnx');
    expect(parry('export', '--model', MLP, '--format', 'onnx', '--out', out).code).toBe(0);
    const model = readOnnx(readFileSync(out), out);
    // A float-to-float Cast in place of the first Relu: tfjs runs it, ORT has no gradient rule.
    const relu = model.graph.nodes.find((n) => n.opType === 'Relu')!;
    relu.opType = 'Cast';
    relu.attributes = { to: 1 };
    writeFileSync(out, writeOnnx(model));
    const predict = ['predict', '--model', out, '--n', '16'];
    expectBadInput(parry(...predict, '--engine', 'ort'), /mlp-cast\.onnx.*Cast/);
    const r = parry(...predict, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).engine).toBe('tfjs');
  });

  it('the PyTorch ResNet: attacked on ONNX Runtime as on tfjs, and the run records its engine', () => {
    const resnet = join(root, 'models', 'fmnist-resnet');
    const attack = [
      'attack',
      '--model',
      resnet,
      '--attack',
      'pgd',
      '--eps',
      '0.02',
      '--steps',
      '5',
    ];
    const run = (...more: string[]) => parry(...attack, '--n', '64', '--json', ...more);
    const [tfjs, ort] = [run('--engine', 'tfjs'), run()].map((r) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    });
    expect(ort.engine).toBe('ort');
    expect(tfjs.engine).toBe('tfjs');
    expect(ort.clean_accuracy).toBe(tfjs.clean_accuracy);
    expect(Math.abs(ort.robust_accuracy - tfjs.robust_accuracy)).toBeLessThanOrEqual(1 / 64);
    expect(tfjs.robust_accuracy).toBeLessThan(tfjs.clean_accuracy);
  });
});
