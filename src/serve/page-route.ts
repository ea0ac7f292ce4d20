/**
 * GET /: the browser page (src/serve/page/app.ts, bundled at build time). One self-contained
 * HTML document: style and script inline, and a Content-Security-Policy that allows that script
 * (by its hash) and requests to the page's own origin only: no CDN, no third party, works
 * offline. The page itself needs no API key; the person types one in for its requests.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { HttpError } from './http-error.js';

const STYLE = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2329; }
main { max-width: 980px; margin: 0 auto; padding: 20px; }
h1 { font-size: 24px; margin: 0 0 4px; }
.muted { color: #5f6b76; }
.row { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
canvas { border: 1px solid #c9d0d7; width: 280px; height: 280px; image-rendering: pixelated; touch-action: none; }
fieldset { border: 1px solid #dfe3e8; border-radius: 6px; margin: 12px 0; }
label { margin-right: 12px; }
input[type=number] { width: 5em; }
button { margin: 6px 6px 6px 0; }
.result { font-size: 20px; font-weight: 600; min-height: 1.5em; }
.verdict { display: inline-block; font-size: 12px; padding: 2px 6px; margin: 2px; border-radius: 4px; }
.verdict.ok { background: #eef8f1; color: #124d26; }
.verdict.bad { background: #fff4ec; color: #5c2408; }
#log { font-size: 13px; color: #5f6b76; }
`;

const BODY = `
<main>
<h1>parry serve</h1>
<p class="muted" id="model">connecting…</p>
<span id="ready" data-ready="false"></span>
<fieldset><legend>API key</legend>
<input id="key" type="password" placeholder="Bearer key (if the service asks for one)" size="40" autocomplete="off">
<button id="connect">connect</button></fieldset>
<div class="row">
<div><h3>Draw or drop an image</h3><canvas id="draw"></canvas><br>
<button id="clear">clear</button><input id="file" type="file" accept="image/png,image/jpeg">
<br><button id="predict">predict</button>
<div class="result" id="result"></div><div id="result-guards"></div></div>
<div><h3>Attack it (black-box FGSM / PGD)</h3><canvas id="adv"></canvas>
<fieldset><label>ε <input id="eps" type="number" value="0.1" step="0.01" min="0"></label>
<label>steps <input id="steps" type="number" value="1" min="1"></label>
<label>samples <input id="samples" type="number" value="20" min="1"></label>
<label>seed <input id="seed" type="number" value="1" min="0"></label></fieldset>
<button id="attack">attack</button> <span id="attack-status" class="muted"></span>
<div class="result" id="adv-result"></div><div id="adv-result-guards"></div></div>
</div>
<p class="muted">The attack estimates the gradient from the service's probabilities (antithetic Gaussian
directions) and steps along its sign: it uses nothing but the API, so the guards see every query.</p>
<ul id="log"></ul>
</main>`;

/** The page around `script`, and the CSP that admits exactly that script. */
export function pageHtml(script: string): { html: string; csp: string } {
  const safe = script.replace(/<\/script/gi, '<\\/script');
  const hash = createHash('sha256').update(safe, 'utf8').digest('base64');
  const csp =
    `default-src 'none'; script-src 'sha256-${hash}'; style-src 'unsafe-inline'; ` +
    "img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'";
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>parry serve</title>
<style>${STYLE}</style>
</head>
<body>${BODY}
<script>${safe}</script>
</body>
</html>
`;
  return { html, csp };
}

export function registerPageRoute(app: FastifyInstance, bundleFile: string): void {
  let page: { html: string; csp: string } | undefined;
  app.get('/', async (_req, reply) => {
    if (page === undefined) {
      if (!existsSync(bundleFile)) {
        throw new HttpError(
          404,
          'page_not_built',
          'the page is not built: npm run build bundles src/serve/page with esbuild',
        );
      }
      page = pageHtml(readFileSync(bundleFile, 'utf8'));
    }
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', page.csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    return page.html;
  });
}
