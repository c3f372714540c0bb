#!/usr/bin/env bash
# The GPU checks and measurements of issue 14, as one script for a machine with a CUDA GPU.
#
#   bash bench/gpu.sh [OUTDIR]      # default bench/gpu_out
#
# Writes OUTDIR/tests.log (the CUDA tests), OUTDIR/bench.log (every benchmark's output) and
# OUTDIR/results.jsonl (one JSON line per benchmark run), in this order of priority:
# 1. tests/engine/test_gpu.py and test_cuda_graph.py (they skip on a machine without CUDA);
# 2. bench/engine_vs_pythae.py --device cuda at batch 64, eager and --cuda-graph (3 repeats,
#    10 epochs: 630 steps each, so the first steps' set-up weighs little);
# 3. a batch-size sweep (256, 1024, 4000 = the whole training split), eager and graphed, with
#    the epochs scaled so every run takes ~320 steps;
# 4. bench/gpu_jobs.py: 1, 2 and 4 jobs at once on the GPU (vaelab worker --jobs-per-gpu);
# 5. bf16 at the largest batch, and --compile (last: inductor's compilation takes the longest).
# Each part has its own time limit, so one that hangs leaves the others their time.
# Then, with the lines appended to bench/gpu_results.jsonl: python bench/report.py --gpu
# bench/gpu_results.jsonl rewrites the README's GPU table.
# PARTS="tests batch64 sweep multijob bf16 compile" (the default) picks parts; MODES="eager graph"
# (the default) the sweep's modes. A lent machine without internet lacks pydantic, pythae and
# mlxtend: bench/gpu_wheels.sh downloads them here, with the command that installs them there.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-bench/gpu_out}
mkdir -p "$OUTDIR"
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
RES="$OUTDIR/results.jsonl"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')" \
    || exit 1
{ nvidia-smi -L; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.version.cuda, torch.cuda.get_device_name(0))"; } | tee "$OUTDIR/env.txt"

bench() {  # LIMIT SCRIPT ARGS... -> its output to bench.log, its JSON line to results.jsonl
    local limit=$1; shift
    echo "== $* ($(date +%T))" | tee -a "$OUTDIR/bench.log"
    timeout "$limit" "$PY" "$@" 2>&1 | tee -a "$OUTDIR/bench.log" | grep '^{' >> "$RES" \
        || echo "   (no JSON line: failed or timed out)" | tee -a "$OUTDIR/bench.log"
}
vs() { local limit=$1; shift; bench "$limit" bench/engine_vs_pythae.py --device cuda "$@"; }

tests() {
    echo "== CUDA tests ($(date +%T))"
    # with pytest-xdist: 8 processes, so a capture that fails cannot take the others with it
    xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
    timeout 200 "$PY" -m pytest -q $xdist -p no:cacheprovider tests/engine/test_gpu.py \
        tests/engine/test_cuda_graph.py > "$OUTDIR/tests.log" 2>&1
    echo "   exit $?"; tail -n 15 "$OUTDIR/tests.log"
}
batch64() {
    vs 75 --repeats 3 --epochs 10 --iwae-timings 2 --no-cuda-graph
    vs 75 --repeats 3 --epochs 10 --iwae-timings 2 --cuda-graph
}
sweep() {  # MODES: which of eager and graph
    for b in 256 1024 4000; do
        e=$(( (320 * b + 3999) / 4000 ))
        for mode in $MODES; do
            flag=$([ "$mode" = graph ] && echo --cuda-graph || echo --no-cuda-graph)
            vs 60 --repeats 1 --iwae-k 20 --iwae-timings 1 --batch "$b" --epochs "$e" $flag
        done
    done
}
multijob() { bench 120 bench/gpu_jobs.py --jobs 1 2 4 --epochs 30 --cuda-graph; }
bf16() {
    vs 90 --repeats 1 --iwae-k 20 --iwae-timings 1 --batch 4000 --epochs 320 --cuda-graph --bf16
}
compile() { vs 120 --repeats 1 --iwae-k 20 --iwae-timings 1 --epochs 10 --compile --no-cuda-graph; }

MODES=${MODES:-eager graph}
for part in ${PARTS:-tests batch64 sweep multijob bf16 compile}; do "$part"; done
echo "done ($(date +%T)): $(wc -l < "$RES") JSON lines in $RES"
