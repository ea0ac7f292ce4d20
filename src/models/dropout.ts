/**
 * Reproducible dropout masks. tfjs-layers' Dropout draws its mask from `tf.randomUniform` with
 * the layer's `seed` field: unset, the draw comes from `Math.random` (not reproducible); set, every
 * call with the same shape draws the same mask. parry therefore sets a fresh seed before each
 * training step (or MC-dropout sample), drawn from the run's seeded Rng, and puts the layers'
 * own seeds back afterwards, so a saved topology carries none of parry's.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../engine/rng.js';

type Layer = tfl.layers.Layer;
// `seed` is read at every call of Dropout.call (tfjs-layers core.js); its typings hide it.
type Seeded = { seed?: number };

/** Seeds the Dropout layers among `layers` (nested models are not searched). */
export class DropoutSeeder {
  private readonly layers: Seeded[];
  private readonly original: (number | undefined)[];

  constructor(layers: readonly Layer[]) {
    this.layers = layers
      .filter((l) => l.getClassName() === 'Dropout')
      .map((l) => l as unknown as Seeded);
    this.original = this.layers.map((l) => l.seed);
  }

  get size(): number {
    return this.layers.length;
  }

  /**
   * Gives each layer its own seed derived from `seed`: the next forward passes with
   * `training: true` draw reproducible masks (the same for the same input shape until reseeded).
   */
  seed(seed: number): void {
    const rng = new Rng(seed >>> 0);
    for (const layer of this.layers) layer.seed = rng.nextSeed();
  }

  /** Puts back the seeds the layers had when this seeder was made. */
  restore(): void {
    this.layers.forEach((l, i) => {
      l.seed = this.original[i];
    });
  }
}
