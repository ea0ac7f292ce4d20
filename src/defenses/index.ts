/** Defences. Robust training plugs into `trainModel` as a `LossFn`. */
export {
  createIbpLoss,
  type IbpSchedule,
  type IbpTrainingConfig,
  type IbpTrainingConfigInput,
  ibpLoss,
  ibpSchedule,
  ibpTrainingConfigSchema,
} from './training/ibp.js';
