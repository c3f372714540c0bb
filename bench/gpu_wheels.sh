#!/usr/bin/env bash
# The wheels a lent GPU machine lacks for bench/gpu.sh, downloaded here into .whl/ (ignored by
# git) so that the device tool can carry them: that machine has torch with CUDA but no
# internet and none of the packages below.
#
#   bash bench/gpu_wheels.sh [PYTHON_VERSION]     # the device's python3, default 3.12
#
# Then, on the device (run tool, carry [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site && PARTS=tests PYTHON=python3 bash bench/gpu.sh $OUT
# These versions ran on the H200 of 2026-12-04 (Python 3.12, torch 2.11.0+cu130).
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${1:-3.12}
ABI=cp${PYV/./}
PIP=${PIP:-$([ -x .venv/bin/pip ] && echo .venv/bin/pip || echo "python3 -m pip")}
rm -rf .whl && mkdir .whl
$PIP download --quiet --only-binary=:all: --no-deps --python-version "$PYV" --implementation cp \
    --abi "$ABI" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
    pydantic==2.12.5 pydantic-core==2.41.5 annotated-types==0.7.0 typing-inspection==0.4.2 \
    pythae==0.1.2 mlxtend==0.23.4
ls .whl
