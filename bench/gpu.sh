#!/usr/bin/env bash
# The GPU half of `make bench`, in one go (under 8 minutes on an H200): the CUDA tests
# (pytest -m cuda), then the GPU rows of BENCHMARKS.md — peak kernels, one training step
# and full iterations of both paper nets in faithful and fast mode at batch 128, and the
# scaling figures — recorded in bench/results/gpu.json and merged with the recorded CPU
# figures (bench/results/cpu.json) into BENCHMARKS.md.
#
#   bash bench/gpu.sh            # GPU=1 bash bench/gpu.sh for another device
#   PY=/path/to/python bash bench/gpu.sh   # an interpreter with a CUDA build of torch
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GPU=${GPU:-0}
"$PY" - <<'PYCHECK'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"bench/gpu.sh: no CUDA device visible to torch {torch.__version__} "
             "(a CUDA build of torch and a GPU are needed); nothing measured")
print(f"bench/gpu.sh: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
PYCHECK
mkdir -p bench/results
start=$(date +%s)
# the CUDA tests first; a failure is recorded in BENCHMARKS.md, the figures are still taken
status=0
timeout 180 "$PY" -m pytest -q -m cuda tests/ -p no:cacheprovider 2>&1 | tee bench/results/gpu_tests.txt || status=$?
timeout 420 "$PY" bench/run_all.py --gpu "$GPU" --tests-summary bench/results/gpu_tests.txt
echo "bench/gpu.sh: done in $(( $(date +%s) - start )) s (CUDA tests exit status $status)"
exit $status
