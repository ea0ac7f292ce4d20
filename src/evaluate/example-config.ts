/**
 * The config `parry evaluate --example` prints: every section of an evaluation on the bundled
 * models, commented, to start from.
 */

/** The example, as YAML; relative paths resolve against the config file's directory. */
export const EXAMPLE_CONFIG = `# parry evaluate --config eval.yaml --out out/eval
# Relative paths resolve against this file's directory.
title: Fashion-MNIST reference models
dataset: fashion-mnist-subset   # any --dataset spec; the first n test examples
n: 100
seed: 0
batchSize: 50
models:
  - path: models/fmnist-cnn-small
  - path: models/fmnist-mlp-ibp
  - name: fmnist-cnn-small
    path: models/fmnist-cnn-small
    defense:
      preprocess: squeeze-bits:bits=2   # parry defend --preprocess syntax
      adaptive: bpda                    # attacks see through it (BPDA); 'none' to attack it as is
attacks:
  - attack: fgsm
  - attack: pgd
    params: { steps: 20 }
  - attack: square
    params: { maxQueries: 100 }
eps:
  linf: [0.05, 0.1]
  l2: [1.0]
certify:
  ibp: true            # at the linf grid; or { eps: [0.01, 0.05] }
  # smoothing: { sigma: 0.25, n0: 100, n: 1000, alpha: 0.001 }
groups:
  byLabel:
    T-shirt/top: tops
    Pullover: tops
    Coat: tops
    Shirt: tops
    Dress: tops
    Trouser: bottoms
    Sandal: footwear
    Sneaker: footwear
    Ankle boot: footwear
    Bag: bags
gallery: { examples: 2 }
explain: { methods: [gradient, integrated-gradients] }
honesty: { enabled: true, examples: 50, moreSteps: { factor: 5, restarts: 2 } }
`;
