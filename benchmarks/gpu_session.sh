#!/usr/bin/env bash
# Everything the GPU paths need checked and measured, in one call on a GPU machine (device time is scarce).
# Here:    bash ../shared/tools/gpu-wheels.sh dask-cuda     (puts dask, zarr, cuCIM, dask-cuda wheels in ./.whl)
# There:   bash benchmarks/gpu_session.sh "$OUT"             (carry .whl; results land in $OUT)
set -uo pipefail
out=${1:-/tmp/gpuseg-gpu}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
# 1. correctness: every gpu-marked test (GPU against CPU and scikit-learn)
python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$out/pytest-gpu.txt" | tail -15
# 2. limits of this machine and the roofline bounds (16 cores)
python3 benchmarks/roofline.py 2>&1 | tee "$out/roofline.txt" | tail -12
# 3. classification and Gaussian, GPU beside CPU and scikit-image (same run)
python3 benchmarks/bench_classify.py --sizes 128 256 --workers 16 2>&1 | tee "$out/classify.txt" | tail -8
python3 benchmarks/bench_filter.py --sizes 256 512 2>&1 | tee "$out/filter.txt" | tail -8
# 4. end-to-end per stage, CPU and GPU, JSON + plot
python3 -m gpuseg bench --sizes 128 256 512 --device both --json "$out/bench.json" --plot "$out/bench.png" 2>&1 | tail -30
