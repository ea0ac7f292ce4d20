/**
 * Kernel benchmark on wasm: cnn-small's second conv layer at batch 128 (x 128x26x26x32, filter
 * 3x3x32x64, valid, stride 1; dy 128x24x24x64), forward against both gradients and against wasm's
 * original Conv2DBackpropInput; a depthwise layer; then the other kernels parry replaced (pooling
 * and dense-layer gradients, bias-gradient sum, compare, select, slice) against their forward op
 * and wasm's original kernel, all measured in the same run. Median ms over 5 runs after
 * warm-up. Conv FLOPs = 2*B*H'*W'*kh*kw*Cin*Cout for the forward and each gradient.
 * Run standalone (`node dist/bench/kernels.js`) it prints one JSON object.
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { originalKernel } from '../src/engine/kernels/index.js';

const REPS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms of `f` (which returns what it made, freed here) after `warmup` runs. */
function timeMs(f: () => tf.TensorInfo | tf.Tensor, warmup = 2, reps = REPS): number {
  const free = (r: tf.TensorInfo | tf.Tensor) => {
    if (r instanceof tf.Tensor) r.dispose();
    else tf.backend().disposeData(r.dataId);
  };
  for (let i = 0; i < warmup; i++) free(f());
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = f();
    times.push(performance.now() - t0);
    free(r);
  }
  return median(times);
}

/**
 * Median ms of each function, timed round-robin (one run of each per round) so that load from
 * other processes on this 2-core machine falls on all of them alike.
 */
function timeRoundRobin<K extends string>(
  fns: Record<K, () => tf.TensorInfo | tf.Tensor>,
  warmup = 2,
  reps = REPS,
): Record<K, number> {
  const times = {} as Record<K, number[]>;
  const keys = Object.keys(fns) as K[];
  for (const k of keys) {
    for (let i = 0; i < warmup; i++) timeMs(fns[k], 0, 1);
    times[k] = [];
  }
  for (let i = 0; i < reps; i++) for (const k of keys) times[k].push(timeMs(fns[k], 0, 1));
  return Object.fromEntries(keys.map((k) => [k, median(times[k])])) as Record<K, number>;
}

/** wasm's own kernel `name`, called the way the engine would (raw TensorInfos in and out). */
function runOriginal(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: object,
): tf.TensorInfo {
  const fn = originalKernel(name);
  return fn({ inputs, backend: tf.backend(), attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

function benchConv(): Record<string, number> {
  const [b, h, w, cin, cout, k] = [128, 26, 26, 32, 64, 3];
  const x = tf.randomUniform([b, h, w, cin], -1, 1, 'float32', 1);
  const filter = tf.randomUniform([k, k, cin, cout], -1, 1, 'float32', 2);
  const dy = tf.randomUniform([b, h - k + 1, w - k + 1, cout], -1, 1, 'float32', 3);
  const gflop = (2 * b * (h - k + 1) * (w - k + 1) * k * k * cin * cout) / 1e9;
  const common = { strides: 1, pad: 'valid', dataFormat: 'NHWC' };
  const inputAttrs = { ...common, inputShape: x.shape };
  const {
    forward,
    input,
    filter: filterGrad,
    original,
  } = timeRoundRobin({
    forward: () => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'valid'),
    input: () => run('Conv2DBackpropInput', { dy, filter }, inputAttrs),
    filter: () => run('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: filter.shape }),
    original: () => runOriginal('Conv2DBackpropInput', { dy, filter }, inputAttrs),
  });
  tf.dispose([x, filter, dy]);
  const rate = (ms: number) => gflop / (ms / 1000);
  return {
    conv_forward_ms: round(forward),
    conv_backprop_input_ms: round(input),
    conv_backprop_filter_ms: round(filterGrad),
    conv_backprop_input_original_ms: round(original),
    conv_forward_gflops: round(rate(forward)),
    conv_backprop_input_gflops: round(rate(input)),
    conv_backprop_filter_gflops: round(rate(filterGrad)),
    conv_backprop_input_original_gflops: round(rate(original)),
    conv_backprop_input_vs_forward: round(forward / input),
    conv_backprop_filter_vs_forward: round(forward / filterGrad),
  };
}

/** Depthwise 3x3 (multiplier 1, stride 1, same) on 128x24x24x64: wasm has no gradients here. */
function benchDepthwise(): Record<string, number> {
  const x = tf.randomUniform([128, 24, 24, 64], -1, 1, 'float32', 11);
  const filter = tf.randomUniform([3, 3, 64, 1], -1, 1, 'float32', 12);
  const dy = tf.randomUniform([128, 24, 24, 64], -1, 1, 'float32', 13);
  const attrs = { strides: 1, pad: 'same', dilations: 1 };
  const out = timeRoundRobin({
    depthwise_forward_ms: () =>
      tf.depthwiseConv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same'),
    depthwise_backprop_input_ms: () =>
      run('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape }),
    depthwise_backprop_filter_ms: () =>
      run(
        'DepthwiseConv2dNativeBackpropFilter',
        { x, dy },
        { ...attrs, filterShape: filter.shape },
      ),
  });
  tf.dispose([x, filter, dy]);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round(v)]));
}

/** The other gradient kernels parry replaced, on cnn-small's shapes at batch 128. */
function benchOthers(): Record<string, number> {
  const act = tf.randomUniform([128, 24, 24, 64], -1, 1, 'float32', 4);
  const pooled = tf.maxPool(act as tf.Tensor4D, 2, 2, 'valid');
  const dyPool = tf.randomUniform(pooled.shape, -1, 1, 'float32', 5);
  const pool = { filterSize: 2, strides: 2, pad: 'valid' };
  const maxIn = { dy: dyPool, input: act, output: pooled };
  const flat = tf.randomUniform([128, 9216], -1, 1, 'float32', 6);
  const w = tf.randomUniform([9216, 128], -1, 1, 'float32', 7);
  const dyDense = tf.randomUniform([128, 128], -1, 1, 'float32', 8);
  const tB = { transposeA: false, transposeB: true };
  const tA = { transposeA: true, transposeB: false };
  const oneImage = { begin: [5, 0, 0, 0], size: [1, 24, 24, 64] };
  const bias = tf.randomUniform([64], -1, 1, 'float32', 9);
  const channelMax = tf.max(act, [1, 2], true);
  const positive = tf.greater(act, 0);
  const biasSum = { axis: [0, 1, 2], keepDims: false };
  const other = tf.randomUniform(act.shape, -1, 1, 'float32', 10);
  const out = timeRoundRobin({
    maxpool_forward_ms: () => tf.maxPool(act as tf.Tensor4D, 2, 2, 'valid'),
    maxpool_grad_ms: () => run('MaxPoolGrad', maxIn, pool),
    maxpool_grad_original_ms: () => runOriginal('MaxPoolGrad', maxIn, pool),
    avgpool_forward_ms: () => tf.avgPool(act as tf.Tensor4D, 2, 2, 'valid'),
    avgpool_grad_ms: () => run('AvgPoolGrad', { dy: dyPool, input: act }, pool),
    avgpool_grad_original_ms: () => runOriginal('AvgPoolGrad', { dy: dyPool, input: act }, pool),
    dense_forward_ms: () => tf.matMul(flat, w),
    dense_grad_input_ms: () => run('BatchMatMul', { a: dyDense, b: w }, tB),
    dense_grad_input_original_ms: () => runOriginal('BatchMatMul', { a: dyDense, b: w }, tB),
    dense_grad_weights_ms: () => run('BatchMatMul', { a: flat, b: dyDense }, tA),
    dense_grad_weights_original_ms: () => runOriginal('BatchMatMul', { a: flat, b: dyDense }, tA),
    bias_add_forward_ms: () => tf.add(act, bias),
    bias_grad_sum_ms: () => run('Sum', { x: act }, biasSum),
    bias_grad_sum_original_ms: () => runOriginal('Sum', { x: act }, biasSum),
    equal_broadcast_ms: () => run('Equal', { a: act, b: channelMax }, {}),
    equal_broadcast_original_ms: () => runOriginal('Equal', { a: act, b: channelMax }, {}),
    greater_ms: () => run('Greater', { a: act, b: other }, {}),
    greater_original_ms: () => runOriginal('Greater', { a: act, b: other }, {}),
    select_ms: () => run('Select', { condition: positive, t: act, e: other }, {}),
    select_original_ms: () => runOriginal('Select', { condition: positive, t: act, e: other }, {}),
    slice_one_image_ms: () => run('Slice', { x: act }, oneImage),
    slice_one_image_original_ms: () => runOriginal('Slice', { x: act }, oneImage),
  });
  tf.dispose([act, pooled, dyPool, flat, w, dyDense, bias, channelMax, positive, other]);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round(v)]));
}

export async function benchKernels(): Promise<Record<string, number>> {
  const previous = tf.getBackend();
  await initBackend('wasm');
  try {
    return { ...benchConv(), ...benchDepthwise(), ...benchOthers() };
  } finally {
    if (previous != null && previous !== 'wasm') await tf.setBackend(previous);
  }
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchKernels();
  process.stdout.write(`${JSON.stringify({ benchmark: 'kernels', backend: 'wasm', ...result })}\n`);
}
