/**
 * `OUT/partial.jsonl`: every finished cell of an evaluation, one JSON line each, appended as it
 * finishes, so that an interrupted run can resume where it stopped. The first line records the
 * config hash and the content hashes of every model and data set read; a resumed run with another
 * config, or after any of those changed, is refused. A torn last line (the process was killed
 * while writing) is ignored and recomputed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParryError } from '../errors.js';

/** Which cell: a target's stage (clean, attack, certify, honesty), attack or method, norm, eps. */
export interface CellKey {
  target: string;
  stage: string;
  attack: string | null;
  norm: string | null;
  eps: number | null;
}

/**
 * A cell left out of results.json (its `failed` list) because a job of it failed on the job queue
 * after its attempts, or a worker refused it; partial.jsonl lacks it, so a resumed run computes it.
 */
export interface FailedCell extends CellKey {
  /** The cell as progress and notes name it (`fmnist-mlp: pgd linf 0.1`). */
  label: string;
  /** What the failed job covers (`batch 2/4 (examples 5-9)`), and its content key in the queue. */
  job: string;
  jobId: string;
  attempts: number;
  /** The job's last error (or the worker's refusal). */
  error: string;
  refused: boolean;
}

export const keyString = (k: CellKey) =>
  JSON.stringify([k.target, k.stage, k.attack, k.norm, k.eps]);

export const PARTIAL_FILE = 'partial.jsonl';

export class PartialStore {
  private constructor(
    readonly file: string,
    private readonly cells: Map<string, unknown>,
  ) {}

  /**
   * Opens `outDir/partial.jsonl`. With `resume`, reads the cells a previous run finished: its
   * config hash must be `hash` and every input it read (`inputs`: name → content hash, see
   * fingerprint.ts) must be unchanged; without, starts a new file, refusing to overwrite cells of
   * an interrupted run.
   */
  static async open(
    outDir: string,
    hash: string,
    resume: boolean,
    inputs: Record<string, string> = {},
  ): Promise<PartialStore> {
    const file = path.join(outDir, PARTIAL_FILE);
    const cells = new Map<string, unknown>();
    if (existsSync(file)) {
      const lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '');
      const header = parseLine(lines[0]) as
        | { hash?: string; inputs?: Record<string, string> }
        | undefined;
      if (typeof header?.hash !== 'string') {
        throw new ParryError(
          'BAD_FILE',
          `evaluate: ${file} is not a partial-results file (its first line is not parry's header); remove it to start over`,
        );
      }
      if (!resume) {
        throw new ParryError(
          'BAD_OPTION',
          `evaluate: ${file} holds ${Math.max(lines.length - 1, 0)} finished cells of an interrupted run; ` +
            'set resume to continue it, or remove the file to start over',
        );
      }
      if (header.hash !== hash) {
        throw new ParryError(
          'BAD_OPTION',
          `evaluate: ${file} was written for another config (hash ${header.hash}, ` +
            `this config ${hash}); write to another outDir, or remove the file to start over`,
        );
      }
      const changed = Object.keys(inputs).filter((k) => header.inputs?.[k] !== inputs[k]);
      if (changed.length > 0) {
        throw new ParryError(
          'BAD_OPTION',
          `evaluate: cannot resume ${file}: ${changed.join('; ')} changed since the interrupted run ` +
            '(content hashes differ); remove the file to start over',
        );
      }
      for (const line of lines.slice(1)) {
        const cell = parseLine(line) as { key?: CellKey; value?: unknown } | undefined;
        if (cell?.key !== undefined) cells.set(keyString(cell.key), cell.value);
      }
      return new PartialStore(file, cells);
    }
    const header = { hash, inputs, started: new Date().toISOString() };
    await writeFile(file, `${JSON.stringify(header)}\n`);
    return new PartialStore(file, cells);
  }

  get size(): number {
    return this.cells.size;
  }

  get<T>(key: CellKey): T | undefined {
    return this.cells.get(keyString(key)) as T | undefined;
  }

  /** Records a cell; returns it as a resumed run will read it (through JSON). */
  async put<T>(key: CellKey, value: T): Promise<T> {
    const line = JSON.stringify({ key, value });
    const stored = (JSON.parse(line) as { value: T }).value;
    this.cells.set(keyString(key), stored);
    await appendFile(this.file, `${line}\n`);
    return stored;
  }

  /** Every recorded cell with its key. */
  *entries(): IterableIterator<[CellKey, unknown]> {
    for (const [k, value] of this.cells) {
      const [target, stage, attack, norm, eps] = JSON.parse(k);
      yield [{ target, stage, attack, norm, eps }, value];
    }
  }

  /** Deletes the file (once results.json is written). */
  async remove(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

function parseLine(line: string | undefined): unknown {
  if (line === undefined) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
