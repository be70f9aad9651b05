#!/usr/bin/env bash
# Alternates Keras and this library on the same machine, same model and settings, and prints
# the seconds of every epoch after the first (steady state), round by round.
#
#   benches/keras/compare.sh model5 3 3 ../shared/data/mnist   # model, epochs, rounds, data
#
# Needs a Python with tensorflow-cpu and keras (PYTHON, default python3); see
# keras_mnist_timing.py. Run on an idle machine: both use every core.
set -euo pipefail
model=${1:-model5}
epochs=${2:-3}
rounds=${3:-3}
data=${4:-../shared/data/mnist}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
report=$(mktemp)
trap 'rm -f "$report"' EXIT
cargo build --quiet --release -p xtask
for round in $(seq "$rounds"); do
    keras=$("$python" "$here/keras_mnist_timing.py" --model "$model" --epochs "$epochs" \
        --data "$data" 2>/dev/null | sed -n "s/^$model epoch seconds: //p")
    cargo xtask train-mnist --model "$model" --epochs "$epochs" --data "$data" --verbose 0 \
        --report "$report" >/dev/null
    ours=$("$python" -c 'import json,sys; print(" ".join(f"{t:.2f}" for t in json.load(open(sys.argv[1]))["epoch_seconds"]))' "$report")
    echo "round $round $model epochs 2..$epochs: keras ${keras#* } | this library ${ours#* }"
done
