/**
 * The service's audit log: one JSON object per line, appended (the file is opened in append
 * mode and never rewritten). When a line would take the file past `maxBytes`, the file is
 * rotated first: `log.{keep-1}` → `log.{keep}` (the oldest, `log.{keep}`, is dropped), ...,
 * `log` → `log.1`, and a fresh `log` is started. A single line longer than `maxBytes` still goes
 * into a file of its own.
 *
 * Writes are synchronous: a line is on disk (in the OS's hands) before the response is sent.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { check } from '../errors.js';

export interface AuditLogOptions {
  /** Rotate before a line would take the file past this size. */
  maxBytes: number;
  /** Rotated files kept besides the live one. */
  keep: number;
}

export class AuditLog {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly file: string,
    private readonly opts: AuditLogOptions,
  ) {
    check(
      Number.isInteger(opts.maxBytes) && opts.maxBytes >= 1,
      () => `AuditLog: maxBytes must be a positive integer, got ${opts.maxBytes}`,
      'BAD_OPTION',
    );
    check(
      Number.isInteger(opts.keep) && opts.keep >= 1,
      () => `AuditLog: keep must be a positive integer, got ${opts.keep}`,
      'BAD_OPTION',
    );
    mkdirSync(path.dirname(file), { recursive: true });
    this.open();
  }

  /** Appends `record` as one line. */
  write(record: Record<string, unknown>): void {
    check(this.fd !== undefined, () => `AuditLog: ${this.file} is closed`, 'INTERNAL');
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    if (this.size > 0 && this.size + line.length > this.opts.maxBytes) this.rotate();
    writeSync(this.fd!, line);
    this.size += line.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    this.fd = openSync(this.file, 'a');
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    this.close();
    const { keep } = this.opts;
    rmSync(`${this.file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    }
    renameSync(this.file, `${this.file}.1`);
    this.open();
  }
}
