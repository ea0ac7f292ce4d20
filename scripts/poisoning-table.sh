#!/usr/bin/env bash
# The poisoning closing-note table, step by step (Fashion-MNIST full training set, cnn-small,
# 3 epochs, batch 128, lr 0.001, seed 1 everywhere). Each step is skipped when its output
# exists, so the script resumes. Usage: scripts/poisoning-table.sh OUT_DIR [STEP...]
set -euo pipefail
OUT=${1:?usage: scripts/poisoning-table.sh OUT_DIR [STEP...]}
shift || true
P="node $(dirname "$0")/../bin/parry.mjs"
TRAIN=(--arch cnn-small --epochs 3 --batch-size 128 --lr 0.001 --seed 1 --workers 1)
mkdir -p "$OUT"

poison() { # name args...
  local name=$1; shift
  [ -f "$OUT/$name/poison.json" ] || $P poison --dataset fashion-mnist --seed 1 "$@" --out "$OUT/$name"
}
train() { # data-dir model-name
  [ -f "$OUT/$2/model.json" ] || $P train --dataset "mnist:$OUT/$1" "${TRAIN[@]}" --out "$OUT/$2"
}
measure() { # data-dir model-name → clean accuracy and ASR json
  local f="$OUT/$2.measure.json"
  [ -f "$f" ] && return
  $P predict --model "$OUT/$2" --dataset "mnist:$OUT/$1" --json > "$OUT/$2.clean.json"
  # The triggered test split (backdoors only: label flips have no trigger).
  if [ -d "$OUT/$1-triggered" ] || $P poison --apply-trigger "$OUT/$1/poison.json" --out "$OUT/$1-triggered" 2>/dev/null; then
    $P predict --model "$OUT/$2" --dataset "mnist:$OUT/$1-triggered" --json > "$OUT/$2.asr.json"
  fi
  echo done > "$f"
}

inspect() { # model data method name extra... → OUT/name.json (scored against the recipe)
  local model=$1 data=$2 method=$3 name=$4; shift 4
  [ -f "$OUT/$name.json" ] || $P inspect --model "$OUT/$model" --dataset "mnist:$OUT/$data" \
    --method "$method" --poison-manifest "$OUT/$data/poison.json" --seed 1 "$@" --json > "$OUT/$name.json"
}
retrain() { # model data method name extra... → filtered set, model trained on it, measured
  local model=$1 data=$2 method=$3 name=$4; shift 4
  [ -f "$OUT/$name/poison.json" ] || $P inspect --model "$OUT/$model" --dataset "mnist:$OUT/$data" \
    --method "$method" --poison-manifest "$OUT/$data/poison.json" --seed 1 "$@" --out "$OUT/$name" --json > "$OUT/$name.inspect.json"
  train "$name" "$name-model"
  [ -f "$OUT/$name-model.clean.json" ] || $P predict --model "$OUT/$name-model" --dataset "mnist:$OUT/$name" --json > "$OUT/$name-model.clean.json"
  if [ -d "$OUT/$data-triggered" ] && [ ! -f "$OUT/$name-model.asr.json" ]; then
    $P predict --model "$OUT/$name-model" --dataset "mnist:$OUT/$data-triggered" --json > "$OUT/$name-model.asr.json"
  fi
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(badnets1 badnets5 badnets10 blended5 flip10 flip20 flip40 cleanlabel)
for s in "${steps[@]}"; do
  case $s in
    badnets1) poison badnets1 --attack badnets --rate 0.01 --target 0 --patch-size 3; train badnets1 badnets1-model; measure badnets1 badnets1-model ;;
    badnets5) poison badnets5 --attack badnets --rate 0.05 --target 0 --patch-size 3; train badnets5 badnets5-model; measure badnets5 badnets5-model ;;
    badnets10) poison badnets10 --attack badnets --rate 0.10 --target 0 --patch-size 3; train badnets10 badnets10-model; measure badnets10 badnets10-model ;;
    blended5) poison blended5 --attack blended --rate 0.05 --target 0 --alpha 0.1; train blended5 blended5-model; measure blended5 blended5-model ;;
    flip10|flip20|flip40) r=${s#flip}; poison "$s" --attack label-flip --rate "0.$r"; train "$s" "$s-model"; measure "$s" "$s-model" ;;
    cleanlabel) poison cleanlabel --attack clean-label --model models/fmnist-cnn-small --rate 0.05 --target 0 --patch-size 3; train cleanlabel cleanlabel-model; measure cleanlabel cleanlabel-model ;;
    clean) # the clean reference, trained exactly as the poisoned models
      [ -f "$OUT/clean-model/model.json" ] || $P train --dataset fashion-mnist "${TRAIN[@]}" --out "$OUT/clean-model"
      [ -f "$OUT/clean-model.clean.json" ] || $P predict --model "$OUT/clean-model" --dataset fashion-mnist --json > "$OUT/clean-model.clean.json"
      [ -f "$OUT/clean-model.asr1.json" ] || $P predict --model "$OUT/clean-model" --dataset "mnist:$OUT/badnets1-triggered" --json > "$OUT/clean-model.asr1.json" ;;
    detect) # data inspections on the backdoored sets (5%, 10%: the table's rows) and blended 5%
      for d in badnets5 badnets10 blended5; do
        inspect "$d-model" "$d" spectral "$d.spectral"
        inspect "$d-model" "$d" ac "$d.ac"
      done ;;
    # ε as the paper means it: the poisoned share of the class (3,000 of 9,000 in class 0).
    ac-retrain) # activation clustering with the paper's reclassification (the default since)
      for d in badnets5 badnets10 blended5; do inspect "$d-model" "$d" ac "$d.ac-retrain" --reclassify retrain; done ;;
    retrain-spectral) retrain badnets5-model badnets5 spectral badnets5-spectral-clean --expected-fraction 0.34 ;;
    retrain-ac) retrain badnets5-model badnets5 ac badnets5-ac-clean ;;
    nc) # Neural Cleanse on the 1% backdoor and on the clean reference model
      [ -f "$OUT/badnets1.nc.json" ] || $P scan --model "$OUT/badnets1-model" --dataset fashion-mnist --n 1000 --method neural-cleanse --rounds 60 --out "$OUT/badnets1-nc" --json > "$OUT/badnets1.nc.json"
      [ -f "$OUT/clean.nc.json" ] || $P scan --model models/fmnist-cnn-small --dataset fashion-mnist --n 1000 --method neural-cleanse --rounds 60 --out "$OUT/clean-nc" --json > "$OUT/clean.nc.json" ;;
    strip) [ -f "$OUT/badnets1.strip.json" ] || node "$(dirname "$0")/strip-far.mjs" "$OUT/badnets1-model" "$OUT/badnets1/poison.json" fashion-mnist 0.01 1000 > "$OUT/badnets1.strip.json" ;;
    knn) for r in 10 20 40; do retrain "flip$r-model" "flip$r" knn "flip$r-knn-clean"; done ;;
    knn20) retrain flip20-model flip20 knn flip20-knn-clean ;;
    dpa) [ -f "$OUT/dpa.json" ] || $P dpa --dataset fashion-mnist --k 50 --arch cnn-tiny --epochs 10 --seed 1 --workers 1 --json > "$OUT/dpa.json" ;;
    *) echo "unknown step $s" >&2; exit 2 ;;
  esac
done
