"""End-to-end pipeline benchmark: the ``gpuseg bench`` command, runnable as a script like the other benchmarks.

    python benchmarks/bench_pipeline.py [--sizes 128 256] [--device cpu|gpu|both] [--json r.json --plot r.png]

ingest (TIFF slices → zarr) → Gaussian filter → Otsu, watershed, random forest (train, predict)
→ compare with the truth, on ``nmc-1`` phantoms of each size, every stage in a fresh process beside
its whole-array scipy / scikit-image / scikit-learn / numpy reference (see ``docs/bench.md``).
Every option of ``gpuseg bench --help`` is accepted.
"""

from __future__ import annotations

import sys

from gpuseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
