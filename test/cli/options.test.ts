/**
 * The options `parry attack` offers and the evaluate config's JSON Schema are generated from the
 * attack registry's schemas: every option an attack reads is a flag and a config param of that
 * attack, and nothing else is.
 */
import { describe, expect, it } from 'vitest';
import { ATTACKS } from '../../src/attacks/registry.js';
import { attackCommand } from '../../src/cli/attack.js';
import { kebab } from '../../src/cli/options.js';
import { evaluateConfigJsonSchema } from '../../src/evaluate/config.js';

/** Flags of `parry attack` that are the command's own, not an attack's option. */
const COMMAND_FLAGS = [
  'model',
  'dataset',
  'attack',
  'norm',
  'n',
  'offset',
  'batch-size',
  'fit-examples',
  'save-examples',
  'examples',
  'backend',
  'engine',
  'json',
  'verbose',
  'seed',
  'workers',
  'queue',
  'attempts',
];

interface Variant {
  properties: {
    attack: { const: string };
    params: { properties: Record<string, unknown>; additionalProperties: boolean };
  };
}

describe('generated options', () => {
  it("parry attack's flags are exactly the attacks' options", () => {
    const flags = attackCommand()
      .options.map((o) => o.long!.replace(/^--(no-)?/, ''))
      .filter((f) => !COMMAND_FLAGS.includes(f));
    const options = new Set(
      ATTACKS.flatMap((a) => Object.keys(a.schema.shape))
        .filter((k) => !['norm', 'seed'].includes(k))
        .map(kebab),
    );
    expect(new Set(flags)).toEqual(options);
  });

  it("the config's JSON Schema lists each attack's own options as its params", () => {
    const schema = evaluateConfigJsonSchema() as {
      properties: { attacks: { items: { oneOf: Variant[] } } };
    };
    const variants = schema.properties.attacks.items.oneOf;
    expect(variants.map((v) => v.properties.attack.const)).toEqual(ATTACKS.map((a) => a.name));
    for (const [i, attack] of ATTACKS.entries()) {
      const params = variants[i].properties.params;
      const own = Object.keys(attack.schema.shape).filter(
        (k) => !['norm', 'eps', 'seed'].includes(k),
      );
      expect(Object.keys(params.properties).sort(), attack.name).toEqual(own.sort());
      expect(params.additionalProperties).toBe(false);
    }
  });
});
