/**
 * The preprocessor and detector registries, table-driven: every entry has the shared shape,
 * parses its defaults, and refuses an unknown option and one it does not read, naming both.
 */
import { describe, expect, it } from 'vitest';
import { DETECTORS, detectorFromOptions } from '../../src/defenses/detection/registry.js';
import { PREPROCESSORS } from '../../src/defenses/preprocess/spec.js';
import { ParryError } from '../../src/errors.js';

async function refusal(make: () => unknown): Promise<ParryError> {
  let error: unknown;
  try {
    await make();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ParryError);
  return error as ParryError;
}

describe('preprocessor registry', () => {
  const keys = [...new Set(PREPROCESSORS.flatMap((p) => Object.keys(p.schema.shape)))];
  for (const p of PREPROCESSORS) {
    const required = 'model' in p.schema.shape ? { model: 'models/fmnist-denoiser' } : {};
    it(`${p.name} parses its defaults and refuses unknown and unread options`, async () => {
      expect(p.schema.safeParse(required).success).toBe(true);
      expect(Array.isArray(p.requires)).toBe(true);
      const unknown = await refusal(() => p.create({ ...required, qualty: 1 }));
      expect(unknown.message).toContain(`does not read 'qualty'`);
      expect(unknown.issues[0].path).toEqual(['qualty']);
      const unread = keys.find((k) => !(k in p.schema.shape))!;
      const e = await refusal(() => p.create({ ...required, [unread]: 1 }));
      expect(e.message).toContain(`does not read '${unread}'`);
    });
  }
});

describe('detector registry', () => {
  for (const d of DETECTORS) {
    it(`${d.name} parses its defaults and refuses an unknown option`, async () => {
      expect(d.schema.parse({}).seed).toBe(1);
      expect(d.requires).toContain('training-data');
      const e = await refusal(() => detectorFromOptions(d.name, { fpr: 0.1 }));
      expect(e.message).toBe(
        `${d.name}: fpr: unknown option: ${d.name} does not read 'fpr' (it reads: seed)`,
      );
      const detector = detectorFromOptions(d.name, { seed: 3 });
      expect(detector.name).toBeTypeOf('string');
      detector.dispose();
    });
  }
});
