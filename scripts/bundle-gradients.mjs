// Build step: bundles tfjs-core's gradient registrations into dist/vendor/tfjs-gradients.js.
//
// tfjs-core registers its gradients only from the side-effect module
// `dist/register_all_gradients.js`, an ES module tree whose imports lack file extensions, so plain
// Node cannot load it (bundlers can). Bundled, it registers into the same global gradient registry
// and engine as the tfjs-core parry imports (tfjs keeps both on the global object), so
// `initBackend` imports the bundle once per thread. Run by `npm run build`.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const coreDir = dirname(require.resolve('@tensorflow/tfjs-core/package.json'));
mkdirSync(join(root, 'dist', 'vendor'), { recursive: true });
await build({
  entryPoints: [join(coreDir, 'dist', 'register_all_gradients.js')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'inline',
  outfile: join(root, 'dist', 'vendor', 'tfjs-gradients.js'),
  logLevel: 'warning',
});
