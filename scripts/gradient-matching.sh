#!/usr/bin/env bash
# Gradient matching (Witches' Brew) on the full Fashion-MNIST training set, against random-noise
# poisons of the same budget: one brew aimed at 10 target test images at once (1% budget = 600
# poisons of class 0, eps 0.1, matched on the clean reference OUT/clean-model of
# scripts/poisoning-table.sh), then cnn-small retrained from scratch on each poisoned set with
# each seed in SEEDS; success = a target predicted as class 0. Each step is skipped when its output
# exists, so the script resumes.
# Usage: scripts/gradient-matching.sh OUT_DIR [SEEDS (default "1 2 3")] [RESTARTS (default 1)]
# GM_TARGETS=i,j,… brews for those test images instead (e.g. one target, the paper's protocol), and
# GM_NAME=name keeps their sets and models apart (default gm).
set -euo pipefail
OUT=${1:?usage: scripts/gradient-matching.sh OUT_DIR [SEEDS] [RESTARTS]}
SEEDS=${2:-1 2 3}
RESTARTS=${3:-1}
P="node $(dirname "$0")/../bin/parry.mjs"
REF="$OUT/clean-model"
[ -f "$REF/model.json" ] || { echo "no clean reference at $REF: run scripts/poisoning-table.sh $OUT clean first" >&2; exit 2; }

# Targets: 10 test images (seed 1) not of class 0 that the clean reference classifies correctly.
if [ ! -f "$OUT/gm-targets.json" ]; then
  $P predict --model "$REF" --dataset fashion-mnist --json > "$OUT/gm-ref-predict.json"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const pool = r.labels.map((y, i) => i).filter((i) => r.labels[i] !== 0 && r.predictions[i] === r.labels[i]);
    let s = 1 >>> 0; // xorshift32, seed 1: a fixed, documented choice
    const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
    const picked = new Set();
    while (picked.size < 10) picked.add(pool[next() % pool.length]);
    const t = [...picked].sort((a, b) => a - b);
    console.log(JSON.stringify({ targets: t, labels: t.map((i) => r.labels[i]) }));
  ' "$OUT/gm-ref-predict.json" > "$OUT/gm-targets.json"
fi
TARGETS=${GM_TARGETS:-$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).targets.join(","))' "$OUT/gm-targets.json")}
NAME=${GM_NAME:-gm}
echo "targets: $TARGETS"

# The brew, and the random-noise control (no optimisation steps: the brew's random start, eps·N(0,1)
# clipped to the ball, on the same 600 images).
[ -f "$OUT/$NAME/poison.json" ] || $P poison --dataset fashion-mnist --attack gradient-matching --model "$REF" \
  --rate 0.01 --target 0 --target-images "$TARGETS" --eps 0.1 --restarts "$RESTARTS" --seed 1 --out "$OUT/$NAME" --json > "$OUT/$NAME.poison.json"
[ -f "$OUT/$NAME-noise/poison.json" ] || $P poison --dataset fashion-mnist --attack gradient-matching --model "$REF" \
  --rate 0.01 --target 0 --target-images "$TARGETS" --eps 0.1 --steps 0 --restarts 1 --seed 1 --out "$OUT/$NAME-noise" --json > "$OUT/$NAME-noise.poison.json"

for set in "$NAME" "$NAME-noise"; do
  for seed in $SEEDS; do
    m="$OUT/$set-model-s$seed"
    [ -f "$m/model.json" ] || $P train --dataset "mnist:$OUT/$set" --arch cnn-small --epochs 3 --batch-size 128 --lr 0.001 --seed "$seed" --workers 1 --out "$m"
    [ -f "$m.predict.json" ] || $P predict --model "$m" --dataset "mnist:$OUT/$set" --json > "$m.predict.json"
  done
done

# The table: per set and seed, clean accuracy and how many targets went to class 0.
node -e '
  const fs = require("fs");
  const [out, seeds, name, given] = [process.argv[1], process.argv[2].split(" ").filter(Boolean), process.argv[3], process.argv[4]];
  const targets = given.split(",").map(Number);
  const rows = [];
  for (const set of [name, `${name}-noise`]) for (const seed of seeds) {
    const f = `${out}/${set}-model-s${seed}.predict.json`;
    if (!fs.existsSync(f)) continue;
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    const hits = targets.filter((i) => r.predictions[i] === 0);
    rows.push({ set, seed: Number(seed), accuracy: r.accuracy, success: hits.length / targets.length, hits });
  }
  console.log(JSON.stringify({ targets, rows }, null, 1));
' "$OUT" "$SEEDS" "$NAME" "$TARGETS" | tee "$OUT/$NAME-table.json"
