/**
 * The browser page's script: src/serve/page/app.ts bundled by esbuild into one browser file,
 * `dist/page/app.js`, at build time (esbuild is a build tool, not a runtime dependency). Run as
 * a script after tsc: `node dist/src/serve/page-bundle.js`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../engine/paths.js';

/** Where the built page script lives (the service reads it from there). */
export function pageBundlePath(): string {
  return path.join(packageRoot(), 'dist', 'page', 'app.js');
}

/** Bundles the page's source into `outfile` (default `pageBundlePath()`); returns the path. */
export async function bundlePage(outfile = pageBundlePath()): Promise<string> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(packageRoot(), 'src', 'serve', 'page', 'app.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await bundlePage();
}
