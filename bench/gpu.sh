#!/usr/bin/env bash
# The GPU measurements of issue 14, for a session that has a CUDA GPU (none has run yet).
#
#   bash bench/gpu.sh [OUT]        # OUT: JSON lines file (default bench/gpu_results.jsonl)
#
# 1. bench/engine_vs_pythae.py --device cuda, eager and --compile (3 repeats each);
# 2. a batch-size sweep (64 ... 4096) of the same comparison, one repeat each, so the
#    examples/s of a step without host syncs can be read against the batch size.
# Each run appends its JSON line to OUT; bench/report.py does not read this file (the
# README's table is the CPU one): copy the figures into the README's GPU paragraph.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/gpu_results.jsonl}
PY=${PYTHON:-.venv/bin/python}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
run() {  # args... -> one JSON line appended to OUT
    echo "== engine_vs_pythae.py $*"
    PYTHONPATH=. "$PY" bench/engine_vs_pythae.py --device cuda "$@" | tee /dev/stderr \
        | grep '^{' | tail -n 1 >> "$OUT"
}
run --repeats 3
run --repeats 3 --compile
for b in 64 256 1024 4096; do
    run --repeats 1 --iwae-k 20 --iwae-timings 1 --batch "$b"
done
echo "wrote $OUT"
