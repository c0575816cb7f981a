#!/usr/bin/env bash
# The GPU benchmarks, run through a GPU machine (an NVIDIA H200 or H100 whose python3 holds
# jax[cuda], optax and torch). Writes to $OUT, or benchmarks/results when unset. Each part has
# its own time limit so that a slow part cannot take the others' results with it: a slice of
# the tests, Adam's donated step on the tree and packed against Optax and torch's fused Adam
# (adam_paths.py), every optimizer on single arrays and the ResNet-like tree, Adafactor and
# clip + AdamW on the transformer-like tree, and the elementwise optimizers on 5000 tiny leaves.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results}
nvidia-smi -L
python3 -c "import jax, optax, torch; print(jax.__version__, optax.__version__, torch.__version__, jax.devices())"
# A slice of the test suite on the GPU (4 workers sharing the card).
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "${T0:-70}" python3 -m pytest -q -n 4 \
  -p no:cacheprovider -p no:benchmark tests/test_step.py tests/test_optax_parity.py \
  tests/test_pack.py tests/test_adafactor_layout.py >"$OUT/gpu-tests.log" 2>&1
echo "tests rc=$?"; tail -3 "$OUT/gpu-tests.log"
# Adam's donated step: the user's tree and gradtx.pack against Optax, torch's fused Adam beside.
timeout "${TA:-240}" python3 benchmarks/adam_paths.py --label gpu-adam-paths --results-dir "$OUT" \
  >"$OUT/gpu-adam-paths.log" 2>&1
echo "gpu-adam-paths rc=$?"; grep "^|" "$OUT/gpu-adam-paths.log" | tail -9
# Every optimizer on the two single arrays and the ResNet-like tree.
timeout "${T1:-200}" python3 benchmarks/run.py --trees 1x16M,1x64M,resnet --reps 10 --no-plain \
  --cpu-fusion off --label gpu2-small --results-dir "$OUT" >"$OUT/gpu2-small.log" 2>&1
echo "gpu2-small rc=$?"; grep -E "^[a-z_+]+ +[0-9a-z]+ +gradtx=" "$OUT/gpu2-small.log"
# The transformer-like tree (compiles are long: ~1000 leaves).
timeout "${T2:-150}" python3 benchmarks/run.py --optimizers adafactor,clip+adamw --trees transformer \
  --reps 10 --no-plain --cpu-fusion off --label gpu2-transformer --results-dir "$OUT" \
  >"$OUT/gpu2-transformer.log" 2>&1
echo "gpu2-transformer rc=$?"; grep -E "^[a-z_+]+ +[0-9a-z]+ +gradtx=" "$OUT/gpu2-transformer.log"
# 5000 tiny leaves (Optax's per-leaf compile is the long part).
timeout "${T3:-90}" python3 benchmarks/run.py --optimizers adam,sgd_momentum --trees tiny \
  --reps 10 --no-plain --cpu-fusion off --label gpu2-tiny --results-dir "$OUT" \
  >"$OUT/gpu2-tiny.log" 2>&1
echo "gpu2-tiny rc=$?"; grep -E "^[a-z_+]+ +[0-9a-z]+ +gradtx=" "$OUT/gpu2-tiny.log"
