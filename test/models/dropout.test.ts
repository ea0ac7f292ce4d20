import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { DropoutSeeder } from '../../src/models/dropout.js';

describe('DropoutSeeder', () => {
  const mask = (layer: tfl.layers.Layer) =>
    tf.tidy(() =>
      Array.from((layer.apply(tf.ones([4, 32]), { training: true }) as tf.Tensor).dataSync()),
    );

  it('a seed fixes the masks, another seed changes them, restore puts back the layer seeds', () => {
    const own = tfl.layers.dropout({ rate: 0.5, seed: 42 });
    const unseeded = tfl.layers.dropout({ rate: 0.5 });
    const dense = tfl.layers.dense({ units: 2 });
    const seeder = new DropoutSeeder([own, dense, unseeded]);
    expect(seeder.size).toBe(2);
    seeder.seed(7);
    const a = [mask(own), mask(unseeded)];
    expect(a[0]).not.toEqual(a[1]); // each layer its own seed
    seeder.seed(7);
    expect([mask(own), mask(unseeded)]).toEqual(a);
    seeder.seed(8);
    expect(mask(own)).not.toEqual(a[0]);
    // Inverted dropout: kept units are scaled by 1 / (1 - rate).
    expect(new Set(a[0])).toEqual(new Set([0, 2]));
    seeder.restore();
    expect(own.getConfig().seed).toBe(42);
    expect(unseeded.getConfig().seed).toBeUndefined();
  });
});
