import { mkdir, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParryError } from '../../src/errors.js';
import {
  ARCHITECTURES,
  buildArchitecture,
  fileHandler,
  loadClassifier,
  saveLayersModel,
  TfjsClassifier,
} from '../../src/models/index.js';
import { caught, tempDir } from './tmp.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir('io');
});
afterAll(() => tmp.cleanup());

function batchFor(shape: number[], n = 3, seed = 11): tf.Tensor {
  return tf.randomUniform([n, ...shape], 0, 1, 'float32', seed);
}

describe('save / load round trip', () => {
  for (const arch of ARCHITECTURES) {
    it(`${arch.name}: float32 gives identical logits, float16 close logits`, async () => {
      const model = buildArchitecture(arch.name, { seed: 5 });
      const original = new TfjsClassifier(model);
      const x = batchFor(arch.defaultInputShape);
      const expected = await original.logits(x).array();

      const dir32 = tmp.next();
      await saveLayersModel(model, dir32);
      // tfjs: the round trip itself is under test, bit for bit.
      const loaded32 = await loadClassifier(dir32, { engine: 'tfjs' });
      expect(await loaded32.logits(x).array()).toEqual(expected);
      expect(loaded32.outputWasSoftmax).toBe(false);

      const dir16 = tmp.next();
      await saveLayersModel(model, dir16, { float16: true });
      const loaded16 = await loadClassifier(dir16, { engine: 'tfjs' });
      // Weights within half precision: relative 2^-11 for normals, 2^-25 absolute below them.
      const w = model.getWeights();
      const w16 = loaded16.layersModel!.getWeights();
      expect(w16.map((t) => t.shape)).toEqual(w.map((t) => t.shape));
      for (let i = 0; i < w.length; i++) {
        const a = w[i].dataSync();
        const b = w16[i].dataSync();
        let bad = 0;
        for (let j = 0; j < a.length; j++) {
          if (Math.abs(a[j] - b[j]) > Math.abs(a[j]) * 2 ** -11 + 2 ** -25) bad++;
        }
        expect(bad).toBe(0);
      }
      const got = (await loaded16.logits(x).array()) as number[][];
      const scale = Math.max(...expected.flat().map(Math.abs));
      for (let r = 0; r < got.length; r++) {
        for (let c = 0; c < got[r].length; c++) {
          expect(Math.abs(got[r][c] - expected[r][c])).toBeLessThan(5e-3 * scale);
        }
      }
      // float16 storage is half the bytes (biases and kernels alike)
      const size = async (d: string) =>
        (await readFile(path.join(d, 'group1-shard1of1.bin'))).length;
      expect(await size(dir16)).toBe((await size(dir32)) / 2);
      const json = JSON.parse(await readFile(path.join(dir16, 'model.json'), 'utf8'));
      for (const spec of json.weightsManifest[0].weights) {
        expect(spec.quantization).toEqual({ dtype: 'float16', original_dtype: 'float32' });
      }

      x.dispose();
      original.dispose();
      loaded32.dispose();
      loaded16.dispose();
    });
  }

  it('round-trips parry metadata, keeps the architecture entry, lets options override', async () => {
    const model = buildArchitecture('mlp', { seed: 2 });
    const dir = tmp.next();
    const classNames = Array.from({ length: 10 }, (_, i) => `class ${i}`);
    await saveLayersModel(model, dir, {
      metadata: { bounds: [-1, 1], mean: [0.5], std: [0.25], classNames, dataset: 'demo' },
    });
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    expect(json.userDefinedMetadata.parry).toEqual({
      arch: 'mlp',
      seed: 2,
      bounds: [-1, 1],
      mean: [0.5],
      std: [0.25],
      classNames,
      dataset: 'demo',
    });
    const c = await loadClassifier(dir);
    expect(c.bounds).toEqual([-1, 1]);
    expect(c.mean).toEqual([0.5]);
    expect(c.std).toEqual([0.25]);
    expect(c.classNames).toEqual(classNames);
    expect(c.inputShape).toEqual([28, 28, 1]);
    expect(c.numClasses).toBe(10);
    c.dispose();
    const o = await loadClassifier(dir, { bounds: [0, 255], std: [2] });
    expect(o.bounds).toEqual([0, 255]);
    expect(o.std).toEqual([2]);
    expect(o.mean).toEqual([0.5]);
    o.dispose();
    model.dispose();
  });

  it('fileHandler round-trips artifacts of any topology (save then load)', async () => {
    const dir = tmp.next();
    const weightData = new Float32Array([1, 2, 3, 4, 5, 6]).buffer;
    const artifacts: tf.io.ModelArtifacts = {
      modelTopology: { node: [] },
      format: 'graph-model',
      generatedBy: 'test',
      convertedBy: 'hand',
      weightSpecs: [
        { name: 'a', shape: [2, 2], dtype: 'float32' },
        { name: 'b', shape: [2], dtype: 'int32' },
      ],
      weightData,
      signature: { inputs: {} },
      userDefinedMetadata: { parry: { bounds: [0, 1] } },
    };
    await fileHandler(dir).save(artifacts);
    const back = await fileHandler(dir).load();
    expect(back.modelTopology).toEqual(artifacts.modelTopology);
    expect(back.format).toBe('graph-model');
    expect(back.convertedBy).toBe('hand');
    expect(back.weightSpecs).toEqual(artifacts.weightSpecs);
    expect(back.signature).toEqual(artifacts.signature);
    expect(back.userDefinedMetadata).toEqual(artifacts.userDefinedMetadata);
    expect(new Uint8Array(back.weightData as ArrayBuffer)).toEqual(new Uint8Array(weightData));
  });
});

describe('file errors', () => {
  /** A saved mlp directory whose files a test may then damage. */
  async function savedMlp(): Promise<string> {
    const dir = tmp.next();
    const model = buildArchitecture('mlp', { seed: 1, inputShape: [4, 4, 1] });
    await saveLayersModel(model, dir);
    model.dispose();
    return dir;
  }
  const jsonOf = (dir: string) => path.join(dir, 'model.json');
  const shardOf = (dir: string) => path.join(dir, 'group1-shard1of1.bin');
  type Spec = { dtype?: string; quantization?: unknown; shape?: number[] };
  type ModelJson = {
    modelTopology?: { config: { layers: { class_name: string }[] } };
    weightsManifest?: { paths: string[]; weights?: Spec[] }[];
    userDefinedMetadata?: unknown;
  };
  async function editJson(dir: string, edit: (j: ModelJson) => void) {
    const j = JSON.parse(await readFile(jsonOf(dir), 'utf8'));
    edit(j);
    await writeFile(jsonOf(dir), JSON.stringify(j));
  }

  it('missing directory', async () => {
    const dir = path.join(tmp.root, 'nowhere');
    const e = await caught(() => loadClassifier(dir));
    expect(e).toBeInstanceOf(ParryError);
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(`fileHandler: model directory ${dir} does not exist`);
  });

  it('missing model.json', async () => {
    const dir = tmp.next();
    await mkdir(dir);
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(`fileHandler: ${jsonOf(dir)} not found`);
  });

  it('unreadable JSON', async () => {
    const dir = await savedMlp();
    await writeFile(jsonOf(dir), '{"modelTopology": ');
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(`fileHandler: ${jsonOf(dir)} is not valid JSON`);
    expect(e.message).not.toMatch('\n');
  });

  it('JSON without a topology or without a weights manifest', async () => {
    const dir = await savedMlp();
    await editJson(dir, (j) => delete j.weightsManifest);
    let e = await caught(() => loadClassifier(dir));
    expect([e.code, e.message]).toEqual([
      'BAD_FILE',
      `fileHandler: ${jsonOf(dir)} has no weightsManifest`,
    ]);
    await editJson(dir, (j) => {
      j.weightsManifest = [{ paths: ['group1-shard1of1.bin'] }];
    });
    e = await caught(() => loadClassifier(dir));
    expect(e.message).toBe(`fileHandler: ${jsonOf(dir)} weightsManifest[0] has no weights`);
    await editJson(dir, (j) => delete j.modelTopology);
    e = await caught(() => loadClassifier(dir));
    expect(e.message).toBe(`fileHandler: ${jsonOf(dir)} has no modelTopology`);
  });

  it('missing shard', async () => {
    const dir = await savedMlp();
    await unlink(shardOf(dir));
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(
      `fileHandler: weight shard ${shardOf(dir)} (listed in ${jsonOf(dir)}) not found`,
    );
  });

  it('shard of the wrong length', async () => {
    const dir = await savedMlp();
    const bytes = (await readFile(shardOf(dir))).length;
    await truncate(shardOf(dir), bytes - 4);
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(
      `fileHandler: ${shardOf(dir)} holds ${bytes - 4} bytes but the weight specs in ${jsonOf(dir)} require ${bytes}`,
    );
    // 16*256 + 256 + 256*256 + 256 + 256*10 + 10 float32 weights
    expect(bytes).toBe(4 * (16 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10));
  });

  it('a float16 shard must hold 2 bytes per value', async () => {
    const dir = tmp.next();
    const model = buildArchitecture('mlp', { seed: 1, inputShape: [4, 4, 1] });
    await saveLayersModel(model, dir, { float16: true });
    model.dispose();
    await editJson(dir, (j) => {
      for (const w of j.weightsManifest![0].weights!) delete w.quantization;
    });
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/holds \d+ bytes but the weight specs .* require \d+/);
  });

  it.each([
    [
      'unknown dtype',
      (w: Spec) => (w.dtype = 'float64'),
      `weight 'dense1/kernel' has unknown dtype "float64"`,
    ],
    [
      'unknown quantization',
      (w: Spec) => (w.quantization = { dtype: 'int4' }),
      `weight 'dense1/kernel' has unknown quantization dtype "int4"`,
    ],
    ['bad shape', (w: Spec) => (w.shape = [16, -1]), `weight 'dense1/kernel' has shape [16,-1]`],
  ])('%s', async (_, edit, problem) => {
    const dir = await savedMlp();
    await editJson(dir, (j) => edit(j.weightsManifest![0].weights![0]));
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(`fileHandler: ${jsonOf(dir)}: ${problem}`);
  });

  it('a manifest may not point outside its directory', async () => {
    const dir = await savedMlp();
    await editJson(dir, (j) => {
      j.weightsManifest![0].paths = ['../elsewhere.bin'];
    });
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch('outside');
  });

  it('malformed parry metadata', async () => {
    const dir = await savedMlp();
    await editJson(dir, (j) => {
      j.userDefinedMetadata = { parry: { bounds: [1, 0] } };
    });
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toBe(`readParryMetadata: ${jsonOf(dir)} has parry.bounds = [1,0]`);
  });

  it('an unknown layer class is UNSUPPORTED, naming the file', async () => {
    const dir = await savedMlp();
    await editJson(dir, (j) => {
      j.modelTopology!.config.layers[1].class_name = 'FancyDense';
    });
    const e = await caught(() => loadClassifier(dir));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toMatch(`loadClassifier: cannot build the model in ${jsonOf(dir)}: `);
    expect(e.message).toMatch('FancyDense');
  });
});
