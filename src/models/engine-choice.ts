/**
 * Which engine runs a model's logits and gradients: 'ort' (ONNX Runtime, native kernels), 'tfjs'
 * (tfjs ops on the active backend; 'wasm' is its alias) or 'auto' (ORT when every op of the model
 * has a gradient rule, else tfjs). Commands pass the choice to worker threads through
 * $PARRY_ENGINE.
 */
import { ParryError } from '../errors.js';

export type EngineChoice = 'auto' | 'ort' | 'tfjs' | 'wasm';
export const ENGINE_CHOICES: readonly EngineChoice[] = ['auto', 'ort', 'tfjs', 'wasm'];

/** `choice` if it is one of ENGINE_CHOICES, else BAD_OPTION naming `what`. */
export function checkEngineChoice(choice: string, what: string): EngineChoice {
  if ((ENGINE_CHOICES as readonly string[]).includes(choice)) return choice as EngineChoice;
  throw new ParryError('BAD_OPTION', `${what} ${choice}: choose auto, ort or tfjs (alias wasm)`);
}

/** $PARRY_ENGINE; unset or empty: auto. */
export function engineFromEnvironment(): EngineChoice {
  const v = process.env.PARRY_ENGINE;
  return v === undefined || v === '' ? 'auto' : checkEngineChoice(v, 'PARRY_ENGINE=');
}
