#!/usr/bin/env bash
# What the GPU paths need checked and measured, in a few full calls on a GPU machine (device time is scarce;
# one call may run at most 10 minutes).
# Here:    bash ../shared/tools/gpu-wheels.sh dask-cuda numba llvmlite   (dask, zarr, cuCIM, dask-cuda, numba wheels in ./.whl)
# There:   bash benchmarks/gpu_session.sh tests|bench|large "$OUT"  (carry .whl; results land in $OUT)
#   tests  every gpu-marked test (GPU against CPU and scikit-learn), then the roofline limits of the machine
#   bench  classification and Gaussian beside CPU and scikit-image, and gpuseg bench per stage, CPU and GPU
#   large  2048³ random-forest segmentation end to end on the GPU: a volume larger than device memory
set -uo pipefail
what=${1:?tests, bench or large}
out=${2:-/tmp/gpuseg-gpu}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
case $what in
  tests)
    python3 -m pytest -q -p no:cacheprovider -m gpu tests gpuseg 2>&1 | tee "$out/pytest-gpu.txt" | tail -15
    python3 benchmarks/roofline.py 2>&1 | tee "$out/roofline.txt" | tail -12 ;;
  bench)
    python3 benchmarks/bench_classify.py --sizes 128 256 --workers 16 2>&1 | tee "$out/classify.txt" | tail -8
    python3 benchmarks/bench_filter.py --sizes 256 512 2>&1 | tee "$out/filter.txt" | tail -8
    python3 -m gpuseg bench --sizes 128 256 512 --device both --json "$out/bench.json" --plot "$out/bench.png" \
      2>&1 | tail -30 ;;
  large)
    python3 benchmarks/bench_classify_ooc.py --size 2048 --device gpu --workers 16 --workdir /tmp/rf2048 \
      2>&1 | tee "$out/rf2048.txt" | tail -12 ;;
  *) echo "unknown: $what (tests, bench or large)"; exit 2 ;;
esac
