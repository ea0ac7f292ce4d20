/**
 * `npm run bench -- NAME [--backend B]`: runs one benchmark and prints one JSON object.
 * Benchmarks measure speed; they are not tests and assert nothing.
 */
const BENCHMARKS: Record<string, (backend?: string) => Promise<Record<string, unknown>>> = {
  engine: async (backend) => (await import('./engine.js')).benchEngine(backend),
  attacks: async (backend) => (await import('./attacks.js')).benchAttacks(backend),
  table: async (backend) => (await import('./table.js')).benchTable(backend),
  certify: async (backend) => (await import('./certify.js')).benchCertify(backend),
  training: async (backend) => (await import('./training.js')).benchTraining(backend),
};

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('--')) ?? 'engine';
const bi = args.indexOf('--backend');
const backend = bi >= 0 ? args[bi + 1] : undefined;
const run = BENCHMARKS[name];
if (!run) {
  process.stderr.write(
    `bench: unknown benchmark '${name}' (known: ${Object.keys(BENCHMARKS).join(', ')})\n`,
  );
  process.exit(2);
}
const result = await run(backend);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
