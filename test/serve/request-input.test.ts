import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/serve/http-error.js';
import { decodeImageInput, decodeJsonInputs } from '../../src/serve/request-input.js';
import { expectClose } from './helpers.js';

const model = { inputShape: [2, 3, 1], bounds: [0, 1] as [number, number] };

function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HttpError);
    return e as HttpError;
  }
  throw new Error('expected a refusal');
}

/** A width×height RGBA PNG whose pixel p has bytes rgba(p). */
function png(width: number, height: number, rgba: (p: number) => number[]): Buffer {
  const img = new PNG({ width, height });
  for (let p = 0; p < width * height; p++) img.data.set(rgba(p), 4 * p);
  return PNG.sync.write(img);
}

describe('decodeJsonInputs', () => {
  it('reads nested and flat examples into one row-major array', () => {
    const nested = [
      [[0], [0.5], [1]],
      [[0.25], [0.75], [0.125]],
    ];
    const flat = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    const { x, rows } = decodeJsonInputs([nested, flat], model);
    expect(rows).toBe(2);
    expect(Array.from(x)).toEqual(
      [0, 0.5, 1, 0.25, 0.75, 0.125, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map(Math.fround),
    );
  });

  it('names the place of a shape problem', () => {
    const e = refusal(() =>
      decodeJsonInputs(
        [
          [
            [[0], [0]],
            [[0], [0], [0]],
          ],
        ],
        model,
      ),
    );
    expect(e.statusCode).toBe(400);
    expect(e.code).toBe('bad_shape');
    expect(e.message).toBe(
      'inputs[0]: expected shape [2,3,1] (nested, or 6 values flat); inputs[0][0] has 2 items, expected 3',
    );
    const notArray = refusal(() => decodeJsonInputs([[[0, 0, 0], 7]], model));
    expect(notArray.message).toMatch(/inputs\[0\]\[0\]\[0\] is 0, not an array of 1/);
    const wrongFlat = refusal(() => decodeJsonInputs([[0, 0, 0, 0, 0]], model));
    expect(wrongFlat.message).toMatch(/inputs\[0\] has 5 items, expected 2/);
  });

  it('refuses non-numbers, infinities and values outside the bounds, by index', () => {
    const base = () => [
      [[0], [0], [0]],
      [[0], [0], [0]],
    ];
    const withValue = (v: unknown) => {
      const ex = base() as unknown[][][];
      ex[1][2][0] = v;
      return [base(), ex];
    };
    const nul = refusal(() => decodeJsonInputs(withValue(null), model));
    expect([nul.code, nul.message]).toEqual([
      'bad_value',
      'inputs[1][1][2][0]: expected a number, got null',
    ]);
    const str = refusal(() => decodeJsonInputs(withValue('NaN'), model));
    expect(str.message).toBe('inputs[1][1][2][0]: expected a number, got "NaN"');
    // JSON.parse turns 1e999 into Infinity.
    const inf = refusal(() =>
      decodeJsonInputs(JSON.parse(`[${JSON.stringify(base())}, [0,0,0,0,0,1e999]]`), model),
    );
    expect([inf.code, inf.message]).toEqual([
      'not_finite',
      'inputs[1][5]: Infinity is not a finite number',
    ]);
    const nan = refusal(() => decodeJsonInputs(withValue(Number.NaN), model));
    expect(nan.code).toBe('not_finite');
    const high = refusal(() => decodeJsonInputs(withValue(1.5), model));
    expect([high.code, high.message]).toEqual([
      'out_of_range',
      "inputs[1][1][2][0]: 1.5 is outside the model's bounds [0, 1]",
    ]);
    const low = refusal(() => decodeJsonInputs(withValue(-1e-6), model));
    expect(low.code).toBe('out_of_range');
  });
});

describe('decodeImageInput', () => {
  it('maps grey PNG bytes linearly onto the bounds', () => {
    const bytes = [0, 51, 102, 153, 204, 255];
    const body = png(3, 2, (p) => [bytes[p], bytes[p], bytes[p], 255]);
    const { x, rows } = decodeImageInput(body, 'png', { inputShape: [2, 3, 1], bounds: [-1, 1] });
    expect(rows).toBe(1);
    const expected = bytes.map((b) => -1 + (2 * b) / 255);
    expectClose(x, expected);
  });

  it('turns colour into luma for a one-channel model and keeps RGB for three', () => {
    const body = png(1, 1, () => [200, 100, 50, 128]);
    const grey = decodeImageInput(body, 'png', { inputShape: [1, 1, 1], bounds: [0, 1] });
    // BT.601 luma, computed here in float64.
    expect(grey.x[0]).toBeCloseTo((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, 6);
    const rgb = decodeImageInput(body, 'png', { inputShape: [1, 1, 3], bounds: [0, 255] });
    expect(Array.from(rgb.x)).toEqual([200, 100, 50]);
  });

  it('checks the size from the header and refuses truncated or foreign bodies', () => {
    const body = png(4, 4, () => [0, 0, 0, 255]);
    const size = refusal(() => decodeImageInput(body, 'png', model));
    expect([size.code, size.message]).toEqual([
      'bad_shape',
      'image/png: the image is 4×4 pixels, the model takes 3×2',
    ]);
    const good = png(3, 2, (p) => [p, p, p, 255]);
    const truncated = refusal(() =>
      decodeImageInput(good.subarray(0, good.length - 20), 'png', model),
    );
    expect(truncated.code).toBe('bad_image');
    expect(truncated.message).toMatch(/^image\/png: cannot decode the image/);
    const text = refusal(() =>
      decodeImageInput(Buffer.from('hello, this is not a png at all'), 'png', model),
    );
    expect(text.message).toBe('image/png: the body is not a PNG (no PNG signature)');
  });

  it('decodes JPEG and refuses a truncated one', () => {
    const w = 8;
    const h = 8;
    const data = Buffer.alloc(w * h * 4, 255);
    for (let p = 0; p < w * h; p++) data.fill(128, 4 * p, 4 * p + 3);
    const body = jpeg.encode({ data, width: w, height: h }, 95).data;
    const { x } = decodeImageInput(body, 'jpeg', { inputShape: [8, 8, 1], bounds: [0, 1] });
    // A flat grey block survives JPEG almost exactly.
    for (const v of x) expect(Math.abs(v - 128 / 255)).toBeLessThan(2 / 255);
    const cut = refusal(() =>
      decodeImageInput(body.subarray(0, Math.floor(body.length / 2)), 'jpeg', {
        inputShape: [8, 8, 1],
        bounds: [0, 1],
      }),
    );
    expect(cut.code).toBe('bad_image');
    const wrong = refusal(() => decodeImageInput(body, 'jpeg', model));
    expect(wrong.message).toBe('image/jpeg: the image is 8×8 pixels, the model takes 3×2');
  });

  it('refuses images for a model whose input is not an image', () => {
    const e = refusal(() =>
      decodeImageInput(
        png(1, 1, () => [0, 0, 0, 255]),
        'png',
        { inputShape: [784], bounds: [0, 1] },
      ),
    );
    expect([e.statusCode, e.code]).toEqual([415, 'unsupported_media_type']);
    expect(e.message).toMatch(/inputs of shape \[784\], not images/);
  });
});
