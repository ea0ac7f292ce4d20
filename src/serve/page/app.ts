/// <reference lib="dom" />
/**
 * The browser page `parry serve` shows at `/` (bundled by esbuild into one inline script; no
 * CDN, no request outside the page's origin). A person draws or drops an image, asks the service
 * for its prediction and sees each guard's verdict, then runs a small black-box attack against
 * the service itself and watches the prediction (and the guards) react.
 *
 * The attack is FGSM (one step) or PGD (several) in L∞ on a gradient the page estimates from the
 * service's probabilities alone (NES: antithetic Gaussian directions u, ĝ = Σ [L(x + σu) −
 * L(x − σu)]·u / 2σk with L the cross-entropy of the first prediction): the page never sees the
 * model's weights, so what it shows is what any client of the service could do. Its noise comes
 * from a small seeded generator (the seed is on the page).
 */

interface ModelInfo {
  name?: string;
  inputShape: number[];
  numClasses: number;
  classNames?: string[];
  bounds: [number, number];
  guards: { input?: { maxBatch?: number }; [k: string]: unknown };
}
interface Prediction {
  label: number | null;
  className?: string;
  probabilities?: number[];
  abstained?: boolean;
}
interface Answer {
  predictions: Prediction[];
  guards: Record<string, string>;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const SCALE = 10;

let info: ModelInfo;
let h = 28;
let w = 28;
let ch = 1;

function headers(): Record<string, string> {
  const key = $<HTMLInputElement>('key').value.trim();
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = text;
  $('log').prepend(li);
}

/** POST /v1/predict; throws the service's error message (a guard's refusal shows as it is). */
async function predict(rows: Float32Array[]): Promise<Answer> {
  const res = await fetch('/v1/predict', {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ inputs: rows.map((r) => Array.from(r)) }),
  });
  const body = await res.json();
  if (!res.ok) {
    const retry = res.headers.get('retry-after');
    throw new Error(
      `${res.status} ${body.error?.code}: ${body.error?.message}${retry ? ` (retry after ${retry} s)` : ''}`,
    );
  }
  return body as Answer;
}

/** The canvas drawing as the model's input: h·w·ch values in the bounds. */
function readCanvas(canvas: HTMLCanvasElement): Float32Array {
  const small = document.createElement('canvas');
  small.width = w;
  small.height = h;
  const c = small.getContext('2d')!;
  c.drawImage(canvas, 0, 0, w, h);
  const px = c.getImageData(0, 0, w, h).data;
  const [lo, hi] = info.bounds;
  const out = new Float32Array(h * w * ch);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < ch; k++) {
      const v =
        ch === 1
          ? 0.299 * px[4 * p] + 0.587 * px[4 * p + 1] + 0.114 * px[4 * p + 2]
          : px[4 * p + k];
      out[p * ch + k] = lo + ((hi - lo) * v) / 255;
    }
  }
  return out;
}

function drawValues(canvas: HTMLCanvasElement, x: Float32Array): void {
  const c = canvas.getContext('2d')!;
  const img = c.createImageData(w, h);
  const [lo, hi] = info.bounds;
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = x[p * ch + (ch === 1 ? 0 : k)];
      img.data[4 * p + k] = Math.round((255 * (v - lo)) / (hi - lo));
    }
    img.data[4 * p + 3] = 255;
  }
  const small = document.createElement('canvas');
  small.width = w;
  small.height = h;
  small.getContext('2d')!.putImageData(img, 0, 0);
  c.imageSmoothingEnabled = false;
  c.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function show(where: string, a: Answer): void {
  const p = a.predictions[0];
  const name = p.label === null ? 'abstained' : (p.className ?? `class ${p.label}`);
  const conf =
    p.probabilities && p.label !== null ? ` (${(100 * p.probabilities[p.label]).toFixed(1)}%)` : '';
  $(where).textContent = `${name}${conf}`;
  const verdicts = $(`${where}-guards`);
  verdicts.textContent = '';
  for (const [g, v] of Object.entries(a.guards)) {
    const span = document.createElement('span');
    span.className = `verdict ${v === 'pass' || v === 'applied' ? 'ok' : 'bad'}`;
    span.textContent = `${g}: ${v}`;
    verdicts.append(span);
  }
}

/** xorshift32 with Box–Muller: the page's seeded noise. */
function gaussian(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** FGSM / PGD (L∞) on an NES gradient estimate from the service's probabilities. */
async function attack(): Promise<void> {
  const x = readCanvas($<HTMLCanvasElement>('draw'));
  const eps = Number($<HTMLInputElement>('eps').value);
  const steps = Math.max(1, Number($<HTMLInputElement>('steps').value));
  const k = Math.max(1, Number($<HTMLInputElement>('samples').value));
  const normal = gaussian(Number($<HTMLInputElement>('seed').value));
  const sigma = 0.01;
  const [lo, hi] = info.bounds;
  const first = await predict([x]);
  const label = first.predictions[0].label;
  if (label === null || !first.predictions[0].probabilities) {
    throw new Error(
      'the service answers labels only (or abstained): the page needs probabilities to estimate a gradient',
    );
  }
  const d = x.length;
  const stepSize = steps === 1 ? eps : (2.5 * eps) / steps;
  let adv = Float32Array.from(x);
  let queries = 1;
  const maxBatch = Number(info.guards.input?.maxBatch ?? 64);
  for (let t = 0; t < steps; t++) {
    const dirs = Array.from({ length: k }, () => Float32Array.from({ length: d }, normal));
    const rows = dirs.flatMap((u) =>
      [-1, 1].map((s) => adv.map((v, i) => Math.min(hi, Math.max(lo, v + s * sigma * u[i])))),
    );
    const probs: number[][] = [];
    for (let s = 0; s < rows.length; s += maxBatch) {
      const a = await predict(rows.slice(s, s + maxBatch));
      probs.push(...a.predictions.map((p) => p.probabilities ?? []));
    }
    queries += rows.length;
    const grad = new Float32Array(d);
    dirs.forEach((u, j) => {
      const loss = (p: number[]) => -Math.log(Math.max(p[label] ?? 0, 1e-12));
      const diff = (loss(probs[2 * j + 1]) - loss(probs[2 * j])) / (2 * sigma * k);
      for (let i = 0; i < d; i++) grad[i] += diff * u[i];
    });
    adv = adv.map((v, i) => {
      const moved = v + stepSize * Math.sign(grad[i]);
      return Math.min(hi, Math.max(lo, Math.min(x[i] + eps, Math.max(x[i] - eps, moved))));
    });
    const now = await predict([adv]);
    queries++;
    drawValues($<HTMLCanvasElement>('adv'), adv);
    show('adv-result', now);
    const flipped = now.predictions[0].label !== label;
    $('attack-status').textContent =
      `step ${t + 1}/${steps}, ${queries} queries${flipped ? ': the prediction flipped' : ''}`;
    if (flipped) break;
  }
}

function setUpDrawing(canvas: HTMLCanvasElement): void {
  const c = canvas.getContext('2d')!;
  const clear = () => {
    c.fillStyle = '#000';
    c.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let down = false;
  const at = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) * canvas.width) / r.width,
      ((e.clientY - r.top) * canvas.height) / r.height,
    ];
  };
  canvas.addEventListener('pointerdown', (e) => {
    down = true;
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointerup', () => {
    down = false;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!down) return;
    const [px, py] = at(e);
    c.fillStyle = '#fff';
    c.beginPath();
    c.arc(px, py, 1.4 * SCALE, 0, 2 * Math.PI);
    c.fill();
  });
  $('clear').addEventListener('click', clear);
  const load = (file: File) => {
    const img = new Image();
    img.onload = () => {
      c.imageSmoothingEnabled = false;
      c.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(img.src);
      log(`loaded ${file.name}`);
    };
    img.src = URL.createObjectURL(file);
  };
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) load(f);
  });
  canvas.addEventListener('dragover', (e) => e.preventDefault());
  canvas.addEventListener('drop', (e) => {
    e.preventDefault();
    const f = e.dataTransfer?.files[0];
    if (f) load(f);
  });
}

/** Runs `fn`, showing its failure in the log instead of throwing. */
function guarded(button: string, fn: () => Promise<void>): void {
  $(button).addEventListener('click', () => {
    const b = $<HTMLButtonElement>(button);
    b.disabled = true;
    fn()
      .catch((e) => log(`${button}: ${(e as Error).message}`))
      .finally(() => {
        b.disabled = false;
      });
  });
}

async function start(): Promise<void> {
  const res = await fetch('/v1/model', { headers: headers() });
  if (!res.ok) {
    const body = await res.json();
    throw new Error(`GET /v1/model: ${res.status} ${body.error?.code}: ${body.error?.message}`);
  }
  info = (await res.json()) as ModelInfo;
  [h, w, ch] = info.inputShape.length === 3 ? info.inputShape : [info.inputShape[0], 1, 1];
  for (const id of ['draw', 'adv']) {
    const c = $<HTMLCanvasElement>(id);
    c.width = w * SCALE;
    c.height = h * SCALE;
  }
  $('model').textContent =
    `${info.name ?? 'model'}: input [${info.inputShape}], ${info.numClasses} classes, guards ${JSON.stringify(info.guards.applied ?? [])}`;
  $('ready').dataset.ready = 'true';
}

setUpDrawing($<HTMLCanvasElement>('draw'));
guarded('connect', start);
guarded('predict', async () =>
  show('result', await predict([readCanvas($<HTMLCanvasElement>('draw'))])),
);
guarded('attack', attack);
start().catch((e) => log((e as Error).message));
