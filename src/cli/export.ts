/**
 * `parry export --model DIR --format onnx --out model.onnx`: a tfjs LayersModel as an ONNX file
 * (src/models/onnx/export.ts) whose logits equal the model's; parry's metadata travels in the
 * file. The file is written under a temporary name and renamed into place.
 */
import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Option } from 'commander';
import { loadClassifier } from '../models/index.js';
import { exportOnnx } from '../models/onnx/from-layers.js';
import { writeOnnx } from '../models/onnx/graph.js';
import {
  badOption,
  type CommonOptions,
  emit,
  modelCommand,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface ExportOptions extends CommonOptions {
  model: string;
  format: 'onnx';
  out: string;
}

export function exportCommand() {
  const cmd = modelCommand('export', 'write a TF.js LayersModel as an ONNX file')
    .addOption(new Option('--format <format>', 'file format').choices(['onnx']).default('onnx'))
    .requiredOption('--out <file>', 'the file to write (model.onnx)');
  return withCommonOptions(cmd).action((opts: ExportOptions) => runExport(opts));
}

async function runExport(opts: ExportOptions): Promise<void> {
  const out = path.resolve(opts.out);
  if (!out.endsWith('.onnx')) throw badOption(`--out ${opts.out}: an ONNX file name ends in .onnx`);
  const parent = path.dirname(out);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) {
    throw badOption(`--out ${opts.out}: ${parent} is not a directory`);
  }
  if (existsSync(out) && statSync(out).isDirectory()) {
    throw badOption(`--out ${opts.out} is a directory`);
  }
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  let bytes: Uint8Array;
  try {
    bytes = writeOnnx(exportOnnx(model));
  } finally {
    model.dispose();
  }
  const temporary = `${out}.${process.pid}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, out);
  const result = {
    command: 'export',
    model: opts.model,
    format: opts.format,
    out: opts.out,
    bytes: bytes.length,
    backend,
  };
  emit(result, opts, () => `wrote ${opts.out} (${bytes.length} bytes, ONNX opset 13)`);
}
