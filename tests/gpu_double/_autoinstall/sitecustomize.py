"""Installs the GPU double at interpreter start-up in child processes of a ``gpu`` test.

A GPU is visible to every process of a machine, so processes a ``gpu`` test spawns (gpuseg's
benchmark runs each stage in a fresh ``spawn`` process) must see the double too. While such a
test runs, ``tests/conftest.py`` puts this directory on ``PYTHONPATH`` and sets
``GPU_DOUBLE_AUTOINSTALL``; Python then imports this ``sitecustomize`` at start-up. Each process
models a device of its own (same size as the parent's); memory is not shared between them.
"""

import os
import sys

if os.environ.get("GPU_DOUBLE_AUTOINSTALL") == "1":
    sys.path.insert(0, os.environ["GPU_DOUBLE_PATH"])
    import gpu_double

    gpu_double.control.reset(total_memory=int(os.environ.get("GPU_DOUBLE_TOTAL_MEMORY", 16 << 30)))
    gpu_double.install()
