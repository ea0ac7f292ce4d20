/**
 * Total-variation minimisation (Guo, Rana, Cissé & van der Maaten 2018). The paper drops pixels
 * at random and reconstructs the image by TV minimisation over the kept ones; parry implements the
 * deterministic core without dropout: per image and channel, gradient descent on
 *   ½‖x' − x‖² + λ·TV_ε(x'),  TV_ε(x') = Σ √((∂_h x')² + (∂_w x')² + ε²)
 * (forward differences, ε = 1e-3 smoothing the kink at 0), `steps` steps of `stepSize` from x,
 * then clipped to bounds. λ is in units of the bounds' range. Computed on the values in JS:
 * non-differentiable; BPDA surrogate: identity (Athalye et al. 2018 attack it so).
 */
import { z } from 'zod';
import { definePreprocessor, FILTER, fromValues, identity } from './preprocessor.js';

export const tvSchema = z
  .object({
    lambda: z.number().min(0).default(0.05),
    steps: z.number().int().min(1).max(1000).default(40),
    stepSize: z.number().positive().max(1).default(0.01),
  })
  .strict();

const EPS = 1e-3;

/** TV denoising of NHWC data `[b, h, w, c]`; see the file comment. */
export function tvDenoise(
  data: Float32Array,
  shape: readonly number[],
  bounds: readonly [number, number],
  cfg: { lambda: number; steps: number; stepSize: number },
): Float32Array {
  const [b, h, w, c] = shape;
  const range = bounds[1] - bounds[0];
  const lambda = cfg.lambda * range;
  const out = new Float32Array(data.length);
  const u = new Float64Array(h * w);
  const f = new Float64Array(h * w);
  const px = new Float64Array(h * w);
  const py = new Float64Array(h * w);
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      const at = (p: number) => (n * h * w + p) * c + ch;
      for (let p = 0; p < h * w; p++) f[p] = u[p] = data[at(p)];
      for (let s = 0; s < cfg.steps; s++) {
        // p = ∇u / |∇u|_ε; the TV gradient is −div p.
        for (let i = 0; i < h; i++) {
          for (let j = 0; j < w; j++) {
            const p = i * w + j;
            const dh = i + 1 < h ? u[p + w] - u[p] : 0;
            const dw = j + 1 < w ? u[p + 1] - u[p] : 0;
            const norm = Math.sqrt(dh * dh + dw * dw + EPS * EPS);
            px[p] = dh / norm;
            py[p] = dw / norm;
          }
        }
        for (let i = 0; i < h; i++) {
          for (let j = 0; j < w; j++) {
            const p = i * w + j;
            const div = px[p] - (i > 0 ? px[p - w] : 0) + py[p] - (j > 0 ? py[p - 1] : 0);
            u[p] -= cfg.stepSize * (u[p] - f[p] - lambda * div);
          }
        }
      }
      for (let p = 0; p < h * w; p++) {
        out[at(p)] = Math.min(bounds[1], Math.max(bounds[0], u[p]));
      }
    }
  }
  return out;
}

export const createTv = definePreprocessor('tv', tvSchema, FILTER, (c) => ({
  apply: (x, bounds) => fromValues(x, (d) => tvDenoise(d, x.shape, bounds, c)),
  surrogate: identity,
}));
