/** The import-direction lint that `npm run lint` runs (scripts/check-layers.mjs), on fixtures. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers } from '../../scripts/check-layers.mjs';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name, 'src');
const check = (name: string): string[] => checkLayers(fixture(name));

describe('check-layers', () => {
  it("passes parry's own source tree", () => {
    expect(checkLayers(join(import.meta.dirname, '..', '..', 'src'))).toEqual([]);
  });

  it('passes a tree whose imports point down', () => {
    expect(check('clean')).toEqual([]);
  });

  it('fails a deliberate wrong-way import, naming the file and the layers', () => {
    expect(check('wrong-way')).toEqual([
      'engine/pool.ts: imports evaluate/score.ts from a layer above (engine → evaluate)',
    ]);
  });

  it('fails an import cycle, type-only imports included', () => {
    expect(check('cycle')).toEqual([
      'import cycle: attacks/square-l2.ts → attacks/square.ts → attacks/square-l2.ts',
    ]);
  });

  it('fails a folder that no layer names', () => {
    expect(check('stray')).toEqual([
      'widgets: not in any layer (add it to LAYERS in scripts/check-layers.mjs)',
    ]);
  });

  it('exits 1 from the command line on a wrong-way import', () => {
    const script = join(import.meta.dirname, '..', '..', 'scripts', 'check-layers.mjs');
    let status = 0;
    try {
      execFileSync(process.execPath, [script, fixture('wrong-way')], { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
    }
    expect(status).toBe(1);
  });
});
