/** The pads of an ONNX 2-D window operator (Conv, pooling), with its `auto_pad` resolved. */
import type { OnnxNode } from './ir.js';

/**
 * [top, left, bottom, right] for node `n` on an input of spatial size `size` ([H, W]): its `pads`
 * (auto_pad NOTSET), none (VALID), or what SAME_UPPER / SAME_LOWER add so the output is
 * ⌈size / stride⌉ (the odd pixel after, or before).
 */
export function windowPads(
  n: OnnxNode,
  size: readonly number[],
  kernel: readonly number[],
  strides: readonly number[],
): number[] {
  const autoPad = (n.attributes.auto_pad as string | undefined) ?? 'NOTSET';
  if (autoPad === 'NOTSET') return (n.attributes.pads as number[] | undefined) ?? [0, 0, 0, 0];
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  const dilations = (n.attributes.dilations as number[] | undefined) ?? [1, 1];
  const pads = [0, 0, 0, 0];
  for (let d = 0; d < 2; d++) {
    const out = Math.ceil(size[d] / strides[d]);
    const total = Math.max(
      0,
      (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - size[d],
    );
    const small = Math.floor(total / 2);
    pads[d] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[d + 2] = total - pads[d];
  }
  return pads;
}
