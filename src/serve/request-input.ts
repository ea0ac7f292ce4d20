/**
 * The input of a predict request, checked and turned into one Float32Array of `[batch,
 * ...inputShape]` values: JSON (`{ "inputs": [example, ...] }`, each example nested to the
 * model's input shape or flat) or one PNG / JPEG image decoded to the model's `[h, w, c]`.
 * Every refusal is an HttpError naming the offending place (`inputs[2][5][3][0]`) and value.
 *
 * Images: pixel bytes map linearly onto the model's bounds (0 → low, 255 → high). A one-channel
 * model takes grey images as they are and colour images through their luma (ITU-R BT.601:
 * 0.299 R + 0.587 G + 0.114 B); alpha is ignored. The image size is checked from the header
 * before any pixel is decoded, so a small file cannot unpack into a huge buffer.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { showValue } from './guard-config.js';
import { HttpError } from './http-error.js';

export interface ModelInput {
  readonly inputShape: readonly number[];
  readonly bounds: readonly [number, number];
}

export interface DecodedInput {
  x: Float32Array;
  rows: number;
}

const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;
const pathOf = (indices: readonly number[]) => `inputs${indices.map((i) => `[${i}]`).join('')}`;

/** Checks one value and stores it; `at` builds its path only when there is a problem. */
function put(
  v: unknown,
  out: Float32Array,
  i: number,
  [lo, hi]: readonly [number, number],
  at: () => string,
): void {
  if (typeof v !== 'number') {
    throw new HttpError(400, 'bad_value', `${at()}: expected a number, got ${showValue(v)}`);
  }
  if (!Number.isFinite(v)) {
    throw new HttpError(400, 'not_finite', `${at()}: ${v} is not a finite number`);
  }
  if (v < lo || v > hi) {
    throw new HttpError(
      400,
      'out_of_range',
      `${at()}: ${v} is outside the model's bounds [${lo}, ${hi}]`,
    );
  }
  out[i] = v;
}

/**
 * `body.inputs` (already checked to be a non-empty array of at most maxBatch arrays) as values.
 * Each example is nested to `inputShape` or given flat (its product of values).
 */
export function decodeJsonInputs(inputs: readonly unknown[], model: ModelInput): DecodedInput {
  const shape = model.inputShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(inputs.length * size);
  const indices: number[] = [];
  const shapeError = (what: string) =>
    new HttpError(
      400,
      'bad_shape',
      `${pathOf(indices.slice(0, 1))}: expected shape ${fmt(shape)} (nested, or ${size} values flat); ${what}`,
    );
  let pos = 0;
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      put(v, out, pos++, model.bounds, () => pathOf(indices));
      return;
    }
    if (!Array.isArray(v)) {
      throw shapeError(`${pathOf(indices)} is ${showValue(v)}, not an array of ${shape[depth]}`);
    }
    if (v.length !== shape[depth]) {
      throw shapeError(`${pathOf(indices)} has ${v.length} items, expected ${shape[depth]}`);
    }
    for (let i = 0; i < v.length; i++) {
      indices.push(i);
      walk(v[i], depth + 1);
      indices.pop();
    }
  };
  for (let e = 0; e < inputs.length; e++) {
    const example = inputs[e];
    indices.push(e);
    if (
      shape.length > 1 &&
      Array.isArray(example) &&
      example.length === size &&
      !Array.isArray(example[0])
    ) {
      for (let j = 0; j < size; j++) {
        indices.push(j);
        put(example[j], out, pos++, model.bounds, () => pathOf(indices));
        indices.pop();
      }
    } else {
      walk(example, 0);
    }
    indices.pop();
  }
  return { x: out, rows: inputs.length };
}

export type ImageType = 'png' | 'jpeg';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function imageShape(model: ModelInput, type: ImageType): [number, number, number] {
  const s = model.inputShape;
  if (s.length !== 3 || (s[2] !== 1 && s[2] !== 3)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `image/${type}: this model takes inputs of shape ${fmt(s)}, not images [h, w, 1 or 3]; send JSON`,
    );
  }
  return [s[0], s[1], s[2]];
}

function checkSize(type: ImageType, width: number, height: number, [h, w]: number[]): void {
  if (width !== w || height !== h) {
    throw new HttpError(
      400,
      'bad_shape',
      `image/${type}: the image is ${width}×${height} pixels, the model takes ${w}×${h}`,
    );
  }
}

/** Width and height from a PNG's IHDR chunk, before decoding anything else. */
function pngSize(body: Buffer): { width: number; height: number } {
  if (body.length < 24 || !body.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new HttpError(400, 'bad_image', 'image/png: the body is not a PNG (no PNG signature)');
  }
  if (body.toString('latin1', 12, 16) !== 'IHDR') {
    throw new HttpError(400, 'bad_image', 'image/png: the PNG has no IHDR header chunk');
  }
  return { width: body.readUInt32BE(16), height: body.readUInt32BE(20) };
}

/** Width and height from a JPEG's first start-of-frame marker. */
function jpegSize(body: Buffer): { width: number; height: number } {
  if (body.length < 4 || body[0] !== 0xff || body[1] !== 0xd8) {
    throw new HttpError(400, 'bad_image', 'image/jpeg: the body is not a JPEG (no SOI marker)');
  }
  let i = 2;
  while (i + 9 < body.length) {
    if (body[i] !== 0xff) break;
    const marker = body[i + 1];
    const length = body.readUInt16BE(i + 2);
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: body.readUInt16BE(i + 5), width: body.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  throw new HttpError(
    400,
    'bad_image',
    'image/jpeg: no frame header found (truncated or not a JPEG)',
  );
}

/** One image as `[1, h, w, c]` values in the model's bounds. */
export function decodeImageInput(body: Buffer, type: ImageType, model: ModelInput): DecodedInput {
  const [h, w, c] = imageShape(model, type);
  if (body === undefined || body.length === 0) {
    throw new HttpError(400, 'bad_image', `image/${type}: the body is empty; send one image`);
  }
  const size = type === 'png' ? pngSize(body) : jpegSize(body);
  checkSize(type, size.width, size.height, [h, w]);
  let rgba: Uint8Array;
  try {
    rgba =
      type === 'png'
        ? PNG.sync.read(body).data
        : jpeg.decode(body, {
            useTArray: true,
            formatAsRGBA: true,
            tolerantDecoding: false,
            maxResolutionInMP: Math.max(1, Math.ceil((h * w) / 1e6)),
            maxMemoryUsageInMB: 64,
          }).data;
  } catch (e) {
    // The decoders' own messages rarely say what is wrong with the file ("There are some read
    // requests waitng on finished stream"); keep them, after what they almost always mean.
    const reason = String((e as Error)?.message ?? e)
      .split('\n')[0]
      .slice(0, 200);
    throw new HttpError(
      400,
      'bad_image',
      `image/${type}: cannot decode the image: its data is truncated or corrupt (decoder: ${reason})`,
    );
  }
  if (rgba.length !== h * w * 4) {
    throw new HttpError(
      400,
      'bad_image',
      `image/${type}: decoded ${rgba.length} bytes, expected ${h * w * 4}`,
    );
  }
  const [lo, hi] = model.bounds;
  const scale = (hi - lo) / 255;
  const out = new Float32Array(h * w * c);
  for (let p = 0; p < h * w; p++) {
    const r = rgba[4 * p];
    const g = rgba[4 * p + 1];
    const b = rgba[4 * p + 2];
    if (c === 3) {
      out[3 * p] = lo + scale * r;
      out[3 * p + 1] = lo + scale * g;
      out[3 * p + 2] = lo + scale * b;
    } else {
      const grey = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
      out[p] = lo + scale * grey;
    }
  }
  return { x: out, rows: 1 };
}
