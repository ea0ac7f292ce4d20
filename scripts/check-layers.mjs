#!/usr/bin/env node
/**
 * Import-direction lint for parry's layers (docs/architecture.md). Each folder of src/ sits in one
 * layer; a file may import from its own folder and from layers strictly below its own, never from
 * above or from a sibling folder of the same layer. Also refused: import cycles between files
 * (type-only imports count: they are how cycles start), a folder of src/ that no layer names, and
 * one file name in two layers (index.ts and registry.ts excepted: every family has its own).
 *
 *   node scripts/check-layers.mjs [srcDir]     exit 0 when clean, 1 with one line per problem
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Lowest first. Root files (src/*.ts) are listed by name. */
export const LAYERS = [
  ['errors.ts'],
  ['options.ts'],
  ['engine'],
  ['models', 'data'],
  ['objectives'],
  ['train'],
  ['attacks'],
  ['defenses'],
  ['adaptive'],
  ['certify', 'explain'],
  ['evaluate'],
  ['report'],
  ['serve'],
  ['cli'],
  ['index.ts'],
];
const SHARED_NAMES = new Set(['index.ts', 'registry.ts']);

const rankOf = new Map(LAYERS.flatMap((names, rank) => names.map((n) => [n, rank])));

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a file: static, dynamic and re-exports, comments stripped. */
function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs = [];
  for (const m of code.matchAll(
    /(?:\bimport\s+(?:type\s+)?[^'"`;]*?\bfrom\s*|\bexport\s+(?:type\s+)?[^'"`;]*?\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g,
  )) {
    specs.push(m[2]);
  }
  return specs;
}

function resolve(from, spec) {
  const abs = path.normalize(path.join(path.dirname(from), spec));
  const candidates = [abs.replace(/\.js$/, '.ts'), abs, `${abs}.ts`, path.join(abs, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

/** The layer key of a file: its top folder under src/, or its own name for root files. */
const unitOf = (srcDir, file) => path.relative(srcDir, file).split(path.sep)[0];

export function checkLayers(srcDir) {
  const problems = [];
  const files = sourceFiles(srcDir);
  const graph = new Map();
  const rel = (f) => path.relative(srcDir, f);
  for (const unit of new Set(files.map((f) => unitOf(srcDir, f)))) {
    if (!rankOf.has(unit))
      problems.push(`${unit}: not in any layer (add it to LAYERS in scripts/check-layers.mjs)`);
  }
  for (const file of files) {
    const from = unitOf(srcDir, file);
    const edges = [];
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(file, spec);
      if (target === null) {
        problems.push(`${rel(file)}: import '${spec}' does not resolve to a file`);
        continue;
      }
      if (!target.startsWith(srcDir + path.sep)) {
        problems.push(`${rel(file)}: import '${spec}' leaves src/`);
        continue;
      }
      edges.push(target);
      const to = unitOf(srcDir, target);
      if (to === from || !rankOf.has(from) || !rankOf.has(to)) continue;
      if (rankOf.get(to) >= rankOf.get(from)) {
        const how =
          rankOf.get(to) === rankOf.get(from) ? 'a sibling of the same layer' : 'a layer above';
        problems.push(`${rel(file)}: imports ${rel(target)} from ${how} (${from} → ${to})`);
      }
    }
    graph.set(file, edges);
  }
  problems.push(...cycles(graph).map((c) => `import cycle: ${c.map(rel).join(' → ')}`));
  const byName = new Map();
  for (const file of files) {
    const name = path.basename(file);
    if (SHARED_NAMES.has(name) || path.dirname(file) === srcDir) continue;
    const units = byName.get(name) ?? new Set();
    units.add(unitOf(srcDir, file));
    byName.set(name, units);
  }
  for (const [name, units] of byName) {
    if (units.size > 1) problems.push(`${name}: one file name in ${[...units].sort().join(', ')}`);
  }
  return [...new Set(problems)];
}

/** Every elementary cycle found by a depth-first search, each reported once (by its first file). */
function cycles(graph) {
  const found = [];
  const state = new Map(); // 1 = on the stack, 2 = done
  const stack = [];
  const visit = (node) => {
    state.set(node, 1);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 1) {
        const cycle = stack.slice(stack.indexOf(next));
        const first = cycle.indexOf([...cycle].sort()[0]);
        found.push([...cycle.slice(first), ...cycle.slice(0, first), cycle[first]]);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 2);
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

const invoked =
  process.argv[1] != null &&
  path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (invoked) {
  const srcDir = path.resolve(process.argv[2] ?? 'src');
  const problems = checkLayers(srcDir);
  for (const p of problems) console.error(`check-layers: ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log(`check-layers: ${sourceFiles(srcDir).length} files, imports point down, no cycles`);
}
