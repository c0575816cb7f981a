#!/usr/bin/env bash
# The GPU benchmark session (run through the device tool on an NVIDIA H200; the machine's own
# python3 holds jax[cuda], optax and torch). Writes to $OUT, or benchmarks/results when unset.
# Each part has its own time limit so that a slow part cannot take the others' results with it.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results}
nvidia-smi -L
python3 -c "import jax, optax, torch; print(jax.__version__, optax.__version__, torch.__version__, jax.devices())"
# Every optimizer on the two single arrays and the ResNet-like tree.
timeout "${T1:-185}" python3 benchmarks/run.py --trees 1x16M,1x64M,resnet --reps 10 --no-plain \
  --cpu-fusion off --label gpu-small --results-dir "$OUT" >"$OUT/gpu-small.log" 2>&1
echo "gpu-small rc=$?"; grep -E "^[a-z_+]+ +[0-9a-z]+ +gradtx=" "$OUT/gpu-small.log"
# The transformer-like tree (compiles are long: ~1000 leaves).
timeout "${T2:-150}" python3 benchmarks/run.py --optimizers adafactor,clip+adamw --trees transformer \
  --reps 10 --no-plain --cpu-fusion off --label gpu-transformer-2 --results-dir "$OUT" \
  >"$OUT/gpu-transformer-2.log" 2>&1
echo "gpu-transformer-2 rc=$?"; grep -E "^[a-z_+]+ +[0-9a-z]+ +gradtx=" "$OUT/gpu-transformer-2.log"
# A slice of the test suite on the GPU (4 workers sharing the card).
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "${T3:-40}" python3 -m pytest -q -x -n 4 \
  -p no:cacheprovider -p no:benchmark tests/test_step.py tests/test_optax_parity.py \
  >"$OUT/gpu-tests.log" 2>&1
echo "tests rc=$?"; tail -3 "$OUT/gpu-tests.log"
