/**
 * The evaluate config: strict (unknown keys are errors naming their path), the same from JSON and
 * YAML, bad values rejected with their path, defaults filled in, relative paths resolved against
 * the config file, and the shipped examples valid.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { packageRoot } from '../../src/engine/paths.js';
import { configHash, loadEvaluateConfig, parseEvaluateConfig } from '../../src/evaluate/config.js';
import { EXAMPLE_CONFIG } from '../../src/evaluate/example-config.js';
import { caught } from '../models/tmp.js';

const root = packageRoot();
const base = { models: [{ path: 'models/fmnist-mlp' }] };
const parse = (raw: unknown) => parseEvaluateConfig(raw, root);
const message = async (raw: unknown) => (await caught(() => parse(raw))).message;

describe('evaluate config', () => {
  it('rejects unknown keys, naming their path', async () => {
    expect(
      await message({ ...base, attacks: [{ attack: 'pgd' }, { attack: 'fgsm', parms: {} }] }),
    ).toMatch(/attacks\[1\]\.parms: unknown key/);
    expect(await message({ ...base, atacks: [] })).toMatch(/: atacks: unknown key/);
    expect(await message({ ...base, certify: { crown: { epss: [0.1] } } })).toMatch(
      /certify\.crown\.epss: unknown key/,
    );
    expect(await message({ models: [{ path: 'm', defense: { preproces: 'jpeg' } }] })).toMatch(
      /models\[0\]\.defense\.preproces: unknown key/,
    );
    const e = await caught(() => parse({ ...base, honesty: { moreSteps: { factr: 2 } } }));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch(/honesty\.moreSteps\.factr: unknown key/);
  });

  it('rejects bad values with their path', async () => {
    expect(await message({ ...base, n: -3 })).toMatch(/: n: .*>=\s?1/);
    // One rule for an option wherever it is given: the attack's own (pgd runs 0 steps, not -1).
    expect(await message({ ...base, attacks: [{ attack: 'pgd', params: { steps: -1 } }] })).toMatch(
      /attacks\[0\]\.params\.steps: /,
    );
    expect(
      await message({ ...base, attacks: [{ attack: 'square', params: { steps: 5 } }] }),
    ).toMatch(/attacks\[0\]\.params\.steps: unknown option: square does not read 'steps'/);
    expect(await message({ ...base, attacks: [{ attack: 'pgdx' }] })).toMatch(
      /attacks\[0\]\.attack: unknown attack 'pgdx' \(known: .*apgd-ce/,
    );
    expect(await message({ ...base, eps: { linf: [-0.1] } })).toMatch(/eps\.linf\[0\]: /);
    expect(await message({ models: [] })).toMatch(/models: /);
    expect(await message({ ...base, attacks: [{ attack: 'cw' }] })).toMatch(
      /attacks\[0\]: cw runs on l2, but eps has grids for linf/,
    );
    expect(await message({ ...base, attacks: [{ attack: 'pgd' }, { attack: 'pgd' }] })).toMatch(
      /attacks\[1\]\.id: 'pgd' is also attacks\[0\]/,
    );
    expect(await message({ models: [{ path: 'a/m' }, { path: 'b/m' }] })).toMatch(
      /models\[1\]: target 'm' is also models\[0\]; give it a name/,
    );
    expect(
      await message({ models: [{ path: 'm', defense: { preprocess: 'jpeg:quality=3' } }] }),
    ).toMatch(/models\[0\]\.defense\.preprocess: .*jpeg/);
    expect(await message({ ...base, groups: {} })).toMatch(/groups: give exactly one/);
    expect(await message({ ...base, eps: { l2: [1] }, certify: { ibp: true } })).toMatch(
      /certify\.ibp: no L-inf budgets/,
    );
  });

  it('fills in defaults and resolves paths against the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-config-'));
    const file = path.join(dir, 'eval.json');
    writeFileSync(
      file,
      JSON.stringify({
        models: [{ path: 'm', defense: { preprocess: 'denoiser:model=ae,squeeze-bits:bits=3' } }],
        attacks: [{ attack: 'fgsm' }],
        groups: { file: 'groups.txt' },
        eps: { linf: [0.1, 0.05, 0.1] },
        certify: { ibp: true },
      }),
    );
    const c = loadEvaluateConfig(file);
    expect(c.models[0].path).toBe(path.join(dir, 'm'));
    expect(c.models[0].defense?.preprocess).toBe(
      `denoiser:model=${path.join(dir, 'ae')},squeeze-bits:bits=3`,
    );
    expect(c.models[0].defense?.adaptive).toBe('bpda');
    expect(c.groups?.file).toBe(path.join(dir, 'groups.txt'));
    expect(c.eps.linf).toEqual([0.05, 0.1]);
    expect(c.certify.ibp).toEqual({});
    // Only what the config gave: the attack's own defaults apply to the rest.
    expect(c.attacks[0].params).toEqual({});
    expect(c).toMatchObject({
      dataset: 'fashion-mnist-subset',
      n: 100,
      seed: 0,
      gallery: { examples: 3, zoom: 4 },
      honesty: { enabled: true, examples: 100, moreSteps: { factor: 5, restarts: 2 } },
    });
  });

  it('reads the same config from YAML and JSON', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-config-'));
    const raw = YAML.parse(EXAMPLE_CONFIG);
    writeFileSync(path.join(dir, 'eval.yaml'), EXAMPLE_CONFIG);
    writeFileSync(path.join(dir, 'eval.json'), JSON.stringify(raw, null, 2));
    const fromYaml = loadEvaluateConfig(path.join(dir, 'eval.yaml'));
    const fromJson = loadEvaluateConfig(path.join(dir, 'eval.json'));
    expect(fromYaml).toEqual(fromJson);
    expect(configHash(fromYaml)).toBe(configHash(fromJson));
    expect(fromYaml.models[2].defense?.preprocess).toBe('squeeze-bits:bits=2');
    // workers does not change the numbers, so it does not change the hash; n does.
    expect(configHash({ ...fromYaml, workers: 1 })).toBe(configHash(fromYaml));
    expect(configHash({ ...fromYaml, n: 7 })).not.toBe(configHash(fromYaml));
  });

  it('reports unparsable files as BAD_FILE', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-config-'));
    writeFileSync(path.join(dir, 'bad.json'), '{"models": [');
    const e = await caught(() => loadEvaluateConfig(path.join(dir, 'bad.json')));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/bad\.json is not valid JSON/);
  });

  it('accepts the shipped examples', () => {
    for (const name of ['quick.json', 'full.json']) {
      const file = path.join(root, 'examples', name);
      const c = loadEvaluateConfig(file);
      expect(c.models.length).toBeGreaterThan(1);
      expect(JSON.parse(readFileSync(file, 'utf8')).models[0].path).toMatch(/^\.\.\/models\//);
    }
  });
});
