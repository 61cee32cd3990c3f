"""``cupy.RawKernel``: the kernel's own CUDA source, compiled as C++ with g++ and run on the host.

The source is prefixed with ``cuda_builtins.h`` (``__global__``, ``blockIdx`` …, ``int4``,
``__ldg``, ``__int_as_float``, atomics) and followed by a launcher that loops over the grid
and the block *serially* and calls the kernel once per thread, reading each parameter from
its argument buffer by the parameter's declared type, as ``cuLaunchKernel`` does. The
launcher learns the parameter types from the kernel's own signature (a C++ template), so
nothing is parsed by hand. Shared libraries are cached under the temp directory, keyed by a
hash of header, source, name and options.

Arguments are marshalled as cupy marshals them (cupy/cuda/function.pyx ``_pointer`` and
cupy/_core/_scalar.pyx ``CScalar``): a device array passes the address of its first element
(views are *not* honoured: strides are the kernel's business), ``None`` a null pointer,
Python ``int`` an int64 (uint64 from 2**63), ``float`` a float64, ``bool`` a bool, numpy
scalars their own dtype, a numpy array of one element its bytes; a larger numpy array raises
cupy's ``TypeError``, anything else ``TypeError: Unsupported type``.

Where CUDA's behaviour is deterministic the double reproduces it, garbage included: an
argument wider than its parameter is read by its first bytes (a Python ``float`` given for a
``float`` parameter reads the low half of a double). Where CUDA's behaviour is undefined or a
fault, the double raises at launch instead of corrupting the test process: too few or too
many arguments (``TypeError``), an argument narrower than its parameter (``TypeError``), a
non-null scalar for a pointer parameter (``CUDA_ERROR_ILLEGAL_ADDRESS``), a pointer not
aligned for its pointee (``CUDA_ERROR_MISALIGNED_ADDRESS``), a block of more than 1024
threads or a grid beyond CUDA's limits (``CUDA_ERROR_INVALID_VALUE``). Out-of-bounds accesses
*inside* a kernel are not detected.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .._model import MODEL
from ._core import ndarray
from .cuda.compiler import CompileException
from .cuda.driver import CUDADriverError
from .cuda.memory import MemoryPointer

HEADER = Path(__file__).with_name("cuda_builtins.h")
CXX = os.environ.get("GPU_DOUBLE_CXX", "g++")
CXXFLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-w")
MAX_PARAMS = 256
_cache_lock = threading.Lock()
_loaded: dict[str, tuple[ctypes.CDLL, list[tuple[int, bool, bool, int]]]] = {}


def cache_dir() -> Path:
    path = Path(os.environ.get("GPU_DOUBLE_KERNEL_CACHE", Path(tempfile.gettempdir()) / "gpu_double_kernels"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _options_for_gxx(options: tuple) -> tuple[list[str], str]:
    flags, std = [], "-std=c++17"
    for opt in options:
        if opt.startswith(("-D", "-I", "-U")):
            flags.append(opt)
        elif opt.startswith(("-std=", "--std=")):
            std = "-std=" + opt.split("=", 1)[1]
    return flags, std


def _declares_extern_c(code: str, name: str) -> bool:
    single = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name) + r"\s*\(", code)
    block = re.search(r'extern\s+"C"\s*\{', code) and re.search(r"__global__\s+void\s+" + re.escape(name) + r"\s*\(",
                                                                 code)
    return bool(single or block)


def compile_kernel(code: str, name: str, options: tuple = ()) -> tuple[ctypes.CDLL, list[tuple[int, bool, bool, int]]]:
    """Compile (or load from the cache) ``code`` with a launcher for ``name``; return it and its parameters."""
    flags, std = _options_for_gxx(options)
    source = (f'#include "{HEADER}"\n#line 1 "raw_kernel.cu"\n{code}\n'
              f'extern "C" void gpu_double_entry_launch(const unsigned int* g, const unsigned int* b, void** a)'
              f" {{ gpu_double_launch(&{name}, g, b, a); }}\n"
              f'extern "C" int gpu_double_entry_describe(long long* out) {{ return gpu_double_describe(&{name}, out); }}\n')
    key = hashlib.sha256("\0".join([HEADER.read_text(), source, CXX, std, *flags, *CXXFLAGS]).encode()).hexdigest()[:32]
    with _cache_lock:
        if key in _loaded:
            return _loaded[key]
        so = cache_dir() / f"{key}.so"
        if not so.exists():
            src = cache_dir() / f"{key}.{os.getpid()}.{threading.get_ident()}.cpp"
            tmp = src.with_suffix(".so")
            src.write_text(source)
            cmd = [CXX, std, *CXXFLAGS, *flags, str(src), "-o", str(tmp)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            src.unlink(missing_ok=True)
            if proc.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise CompileException(proc.stderr, code, name, options)
            os.replace(tmp, so)
            MODEL.count("kernel_compiles")
        lib = ctypes.CDLL(str(so))
        lib.gpu_double_entry_launch.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                                ctypes.POINTER(ctypes.c_void_p)]
        lib.gpu_double_entry_launch.restype = None
        lib.gpu_double_entry_describe.restype = ctypes.c_int
        info = (ctypes.c_longlong * (4 * MAX_PARAMS))()
        n = lib.gpu_double_entry_describe(info)
        params = [(int(info[4 * i]), bool(info[4 * i + 1]), bool(info[4 * i + 2]), int(info[4 * i + 3]))
                  for i in range(n)]
        _loaded[key] = (lib, params)
        return lib, params


def _python_scalar(x: Any) -> np.generic | None:
    """cupy's ``numpy_dtype_from_pyscalar``: bool, int64 (uint64 from 2**63), float64, complex128."""
    if type(x) is bool:
        return np.bool_(x)
    if type(x) is int:
        return np.uint64(x) if x >= 0x8000000000000000 else np.int64(x)
    if type(x) is float:
        return np.float64(x)
    if type(x) is complex:
        return np.complex128(x)
    return None


def _marshal(arg: Any) -> tuple[bytes, int | None]:
    """(bytes the kernel parameter is read from, device address or None) for one argument."""
    if arg is None:
        return (0).to_bytes(8, "little"), 0
    if isinstance(arg, ndarray):
        ptr = arg._a.ctypes.data if arg.size else 0
        return ptr.to_bytes(8, "little"), ptr
    if isinstance(arg, MemoryPointer):
        return int(arg.ptr).to_bytes(8, "little"), int(arg.ptr)
    if isinstance(arg, np.ndarray):
        if arg.size == 1:
            return arg.tobytes(), None
        raise TypeError(f"You are trying to pass a numpy.ndarray of shape {arg.shape} as a kernel parameter. Only "
                        "numpy.ndarrays of size one can be passed by value. If you meant to pass a pointer to "
                        "__global__ memory, you need to pass a cupy.ndarray instead.")
    scalar = _python_scalar(arg)
    if scalar is None and isinstance(arg, np.generic):
        scalar = arg
    if scalar is None:
        raise TypeError(f"Unsupported type {type(arg)}")
    return scalar.tobytes(), None


class Function:
    """A compiled kernel: ``func(grid, block, args, shared_mem=0, stream=None)``."""

    def __init__(self, lib: ctypes.CDLL, params: list[tuple[int, bool, bool, int]], name: str) -> None:
        self._lib, self._params, self.name = lib, params, name

    def __call__(self, grid: tuple, block: tuple, args: Any, shared_mem: int = 0, stream: Any = None,
                 enable_cooperative_groups: bool = False) -> None:
        for label, value in (("grid", grid), ("block", block)):
            if not isinstance(value, tuple):
                raise TypeError(f"Argument '{label}' has incorrect type (expected tuple, got {type(value).__name__})")
        g = [max(1, int(v)) for v in (grid + (1, 1))[:3]]
        b = [max(1, int(v)) for v in (block + (1, 1))[:3]]
        if b[0] * b[1] * b[2] > 1024 or b[0] > 1024 or b[1] > 1024 or b[2] > 64:
            raise CUDADriverError("CUDA_ERROR_INVALID_VALUE", "invalid argument")
        if g[0] > 2**31 - 1 or g[1] > 65535 or g[2] > 65535:
            raise CUDADriverError("CUDA_ERROR_INVALID_VALUE", "invalid argument")
        if shared_mem:
            raise NotImplementedError("gpu_double: dynamic shared memory is not modelled")
        values = tuple(args)
        if len(values) != len(self._params):
            raise TypeError(f"gpu_double: kernel {self.name} takes {len(self._params)} parameters, {len(values)} "
                            "arguments were given (undefined behaviour in CUDA)")
        buffers = []
        for i, (arg, (size, is_pointer, _, align)) in enumerate(zip(values, self._params)):
            data, ptr = _marshal(arg)
            if is_pointer and ptr is None:
                value = int.from_bytes(data[:8].ljust(8, b"\0"), "little")
                if value != 0:
                    raise CUDADriverError("CUDA_ERROR_ILLEGAL_ADDRESS",
                                          f"an illegal memory access was encountered (gpu_double: argument {i} is "
                                          f"a {type(arg).__name__}, parameter {i} of {self.name} is a pointer)")
            if is_pointer and ptr and ptr % align:
                raise CUDADriverError("CUDA_ERROR_MISALIGNED_ADDRESS",
                                      f"misaligned address (gpu_double: argument {i} of {self.name} is not "
                                      f"{align}-byte aligned)")
            if len(data) < size:
                raise TypeError(f"gpu_double: argument {i} of {self.name} ({type(arg).__name__}, {len(data)} bytes) "
                                f"is narrower than its {size}-byte parameter (undefined behaviour in CUDA)")
            buffers.append(ctypes.create_string_buffer(data, max(len(data), 16)))
        argv = (ctypes.c_void_p * max(1, len(buffers)))(*[ctypes.addressof(buf) for buf in buffers])
        MODEL.count("kernel_launches")
        self._lib.gpu_double_entry_launch((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), argv)


class RawKernel:
    """``cupy.RawKernel(code, name, options=())``: compiled on first use, then cached."""

    def __init__(self, code: str, name: str, options: tuple = (), backend: str = "nvrtc", *,
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False, jitify: Any = None):
        for label, value, kind in (("code", code, str), ("name", name, str), ("options", options, tuple),
                                   ("backend", backend, str)):
            if not isinstance(value, kind):
                raise TypeError(f"Argument '{label}' has incorrect type (expected {kind.__name__}, "
                                f"got {type(value).__name__})")
        self.code, self.name, self.options, self.backend = code, name, options, backend
        self.enable_cooperative_groups = enable_cooperative_groups
        self.__name__ = name
        self._function: Function | None = None

    @property
    def kernel(self) -> Function:
        if self._function is None:
            if not _declares_extern_c(self.code, self.name):
                raise CUDADriverError("CUDA_ERROR_NOT_FOUND", "named symbol not found")
            lib, params = compile_kernel(self.code, self.name, self.options)
            self._function = Function(lib, params, self.name)
        return self._function

    def compile(self, log_stream: Any = None) -> None:
        self.kernel  # noqa: B018

    def __call__(self, grid: tuple, block: tuple, args: Any, **kwargs: Any) -> None:
        self.kernel(grid, block, args, **kwargs)


RawKernel.__module__ = "cupy"
