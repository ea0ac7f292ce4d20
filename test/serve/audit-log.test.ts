import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/serve/audit-log.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'parry-audit-'));
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

describe('AuditLog', () => {
  it('appends one JSON object per line, keeping what was there', () => {
    const file = path.join(tmp(), 'sub', 'audit.log');
    const a = new AuditLog(file, { maxBytes: 1 << 20, keep: 2 });
    a.write({ n: 1, text: 'line\nbreak' });
    a.close();
    const b = new AuditLog(file, { maxBytes: 1 << 20, keep: 2 });
    b.write({ n: 2 });
    b.close();
    expect(lines(file)).toEqual([{ n: 1, text: 'line\nbreak' }, { n: 2 }]);
  });

  it('rotates by size and keeps `keep` old files', () => {
    const file = path.join(tmp(), 'audit.log');
    // Each record {"n":k} is 8 bytes with its newline for k < 10: two fit in 16 bytes.
    const log = new AuditLog(file, { maxBytes: 16, keep: 2 });
    for (let n = 0; n < 7; n++) log.write({ n });
    log.close();
    // Files of two lines each, newest in audit.log: [6], [4,5] in .1, [2,3] in .2; [0,1] dropped.
    expect(lines(file)).toEqual([{ n: 6 }]);
    expect(lines(`${file}.1`)).toEqual([{ n: 4 }, { n: 5 }]);
    expect(lines(`${file}.2`)).toEqual([{ n: 2 }, { n: 3 }]);
    expect(existsSync(`${file}.3`)).toBe(false);
    for (const f of [file, `${file}.1`, `${file}.2`]) {
      expect(statSync(f).size).toBeLessThanOrEqual(16);
    }
  });

  it('rotates a file it finds already full', () => {
    const file = path.join(tmp(), 'audit.log');
    writeFileSync(file, `${JSON.stringify({ old: true })}\n`);
    const log = new AuditLog(file, { maxBytes: 20, keep: 1 });
    log.write({ fresh: 1 });
    log.close();
    expect(lines(`${file}.1`)).toEqual([{ old: true }]);
    expect(lines(file)).toEqual([{ fresh: 1 }]);
  });

  it('writes a line longer than maxBytes into a file of its own', () => {
    const file = path.join(tmp(), 'audit.log');
    const log = new AuditLog(file, { maxBytes: 10, keep: 3 });
    log.write({ long: 'x'.repeat(30) });
    log.write({ n: 1 });
    log.close();
    expect(lines(`${file}.1`)).toEqual([{ long: 'x'.repeat(30) }]);
    expect(lines(file)).toEqual([{ n: 1 }]);
  });

  it('refuses bad sizes and writes after close', () => {
    const file = path.join(tmp(), 'audit.log');
    expect(() => new AuditLog(file, { maxBytes: 0, keep: 1 })).toThrow(/maxBytes/);
    expect(() => new AuditLog(file, { maxBytes: 10, keep: 0 })).toThrow(/keep/);
    const log = new AuditLog(file, { maxBytes: 10, keep: 1 });
    log.close();
    expect(() => log.write({})).toThrow(/closed/);
  });
});
