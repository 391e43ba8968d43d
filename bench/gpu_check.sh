#!/usr/bin/env bash
# The GPU check (README, Performance): on a CUDA machine, in about 8 minutes, fits the GRU and the
# RoPE net in 16-mixed and bf16-mixed, runs DAS with --device cuda, the quick learning-dynamics
# study and a RoPE study cell (bench/gpu_study.yaml: its alignments with study --device cuda) on the
# GPU, and prints each figure beside the same run on the CPU (bench/gpu_check.py).
#   bash bench/gpu_check.sh [OUT_DIR]                  # default runs/gpu_check; the table: OUT_DIR/gpu_check.md
#   GPU_CHECK_ARGS="--sweeps" bash bench/gpu_check.sh   # also issue 17's sweep ratios (bench/das_sweep.py) on the GPU
#   GPU_CHECK_ARGS="--accelerator cpu --smoke" bash bench/gpu_check.sh   # the script's own test, on a CPU
# Through the device tool (8 files come back from $OUT):
#   GPU_CHECK_ARGS="--sweeps" bash bench/gpu_check.sh runs/gpu_check; cp runs/gpu_check/gpu_check.md $OUT/;
#   tar czf $OUT/logs.tgz runs/gpu_check/*.log
# A machine without jsonargparse (numsym_pl's config parser) takes it as wheels in .whl/, fetched
# where pip works with:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     -d .whl jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-runs/gpu_check}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site .whl/*.whl
  export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=offline
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# shellcheck disable=SC2086
exec python3 bench/gpu_check.py --out "$OUT_DIR" ${GPU_CHECK_ARGS:-}
