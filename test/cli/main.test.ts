import { describe, expect, it } from 'vitest';
import { buildProgram, COMMAND_NAMES } from '../../src/cli/main.js';

describe('the parry program', () => {
  it('lists every sub-command under the name its loader gives, in help order', async () => {
    const all = await buildProgram();
    expect(all.commands.map((c) => c.name())).toEqual(COMMAND_NAMES);
    expect(COMMAND_NAMES).toContain('dp-epsilon');
    expect(new Set(COMMAND_NAMES).size).toBe(COMMAND_NAMES.length);
  }, 60_000);

  it('loads only the command a run names; all of them for help or an unknown name', async () => {
    const one = await buildProgram('dp-epsilon');
    expect(one.commands.map((c) => c.name())).toEqual(['dp-epsilon']);
    for (const other of [undefined, 'help', 'atack']) {
      expect((await buildProgram(other)).commands).toHaveLength(COMMAND_NAMES.length);
    }
  }, 60_000);
});
