#!/usr/bin/env bash
# Times one parry command locally (--workers 2) and through the job queue with 1, 2 and 4
# `parry worker` processes (concurrency 1 each) on a redis-server started here; prints one line per
# run (seconds) and leaves each run's stdout in OUT. Run from the repository after `npm run build`.
#   scripts/queue-speedup.sh OUT evaluate --config examples/quick.json --json
#   scripts/queue-speedup.sh OUT certify --model models/fmnist-mlp --method smoothing --sigma 0.25 \
#     --n0 100 --n 20000 --n-examples 100 --json
set -euo pipefail
OUT=$1; shift
mkdir -p "$OUT"
PORT=${PORT:-6398}
dir=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
  --maxmemory-policy noeviction --save '' > "$OUT/redis.log" 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
url=redis://127.0.0.1:$PORT
extra() { [ "$1" = evaluate ] && echo "--out $OUT/$2"; true; }
t0=$(date +%s.%N)
node bin/parry.mjs "$@" --workers 2 $(extra "$1" local) > "$OUT/local.json"
echo "local, 2 threads: $(echo "$(date +%s.%N) - $t0" | bc) s"
for k in 1 2 4; do
  pids=()
  for _ in $(seq 1 "$k"); do node bin/parry.mjs worker --redis "$url" > /dev/null 2>&1 & pids+=($!); done
  sleep 4
  t0=$(date +%s.%N)
  node bin/parry.mjs "$@" --queue "$url" $(extra "$1" "queue-$k") > "$OUT/queue-$k.json"
  echo "queue, $k worker(s): $(echo "$(date +%s.%N) - $t0" | bc) s"
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  redis-cli -p "$PORT" flushall > /dev/null
done
