/** The data layer: readers for standard formats, the bundled subset, synthetic sets, helpers. */
export { CIFAR10_CLASSES, cifar10Files, loadCifar10, readCifar10Bytes } from './cifar10.js';
export {
  type Batch,
  batches,
  bytesToUnit,
  checkDataset,
  type Dataset,
  datasetSize,
  exampleSize,
  firstExamples,
  type Split,
  selectExamples,
  shuffleDataset,
  sliceDataset,
  splitDataset,
  stratifiedIndices,
  takeFirst,
} from './dataset.js';
export {
  decodeIdx,
  encodeIdx,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  type IdxArray,
  type IdxData,
  type IdxDtype,
  readIdx,
  readIdxImages,
  readIdxLabels,
  readMaybeGzip,
  writeIdx,
} from './idx.js';
export { unitToBytes, writeMnistFormat } from './idx-dataset.js';
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadMnistDir,
  loadMnistFormat,
  type MnistFormatOptions,
  mnistFiles,
} from './mnist.js';
export {
  DATASETS,
  type DatasetEntry,
  type LoadDatasetOptions,
  loadDataset,
  SYNTHETIC_DEFAULT_N,
} from './registry.js';
export {
  FASHION_MNIST_SUBSET,
  fashionMnistSubsetDir,
  loadFashionMnistSubset,
} from './subset.js';
export { type SyntheticOptions, syntheticDataset } from './synthetic.js';
