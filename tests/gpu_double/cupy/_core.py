"""``cupy.ndarray``: a device array whose data lives in a numpy buffer the host may not touch implicitly.

Each array is a numpy view (``_a``) over a *device allocation* (``_Memory``): one block
taken from the modelled memory pool and given back when the last array viewing it dies
(``weakref.finalize``), exactly when cupy's ``PooledMemory`` would be freed. Views (slicing,
``reshape``, ``.T``, ``astype(copy=False)``) share the allocation and the numpy strides, so a
kernel given a strided view reads it in place, as on the GPU.

Strictness follows cupy's source (cupy/_core/core.pyx, _routines_indexing.pyx):

* ``__array__`` raises ``TypeError`` (``np.asarray(x)``, ``np.array(x)``, assigning into a
  numpy array, ``float(np.float32(x))`` …); only ``get()``/``cupy.asnumpy`` copy to the host;
* binary operators route through numpy's ufunc protocol into the double's ufuncs, which
  refuse ``numpy.ndarray`` operands (``Unsupported type``) and accept Python/numpy scalars;
* indexing accepts cupy, numpy and list index arrays (numpy/list ones are copied to the
  device), integer index arrays *wrap around* instead of raising, boolean masks synchronise;
* assigning a non-scalar numpy array into a basic slice raises ``ValueError`` (cupy refuses
  it, gh-2079) while assigning it through an index array copies it to the device;
* reductions and scalar indexing return 0-d device arrays; ``int()``, ``float()``,
  ``bool()``, ``item()``, ``tolist()``, ``repr()`` copy to the host and synchronise.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._model import MODEL
from .cuda import stream as _stream
from .cuda.memory import MemoryPointer

ALIGNMENT = 256  # cudaMalloc returns 256-byte aligned blocks; kernels may rely on it (int4 loads)
SCALAR_TYPES = frozenset({int, float, bool, complex} | {np.dtype(c).type for c in "?bhilqBHILQefdFD"})
_POISON = 0xFF  # bytes of uninitialised memory: NaN for floats, -1 / max for integers


class _Memory:
    """One pool allocation and the host buffer standing in for it."""

    __slots__ = ("root", "chunk", "device_id", "nbytes", "__weakref__")

    def __init__(self, root: np.ndarray, nbytes: int) -> None:
        self.root = root
        self.nbytes = nbytes
        self.device_id = MODEL.current_device()
        pool = MODEL.pools[self.device_id]
        self.chunk = pool.malloc(nbytes, _stream.get_current_stream().ptr)
        if self.chunk is not None:
            weakref.finalize(self, pool.free, self.chunk)


def check_dtype(dtype: Any) -> np.dtype:
    """cupy supports bool, integers, float16/32/64 and complex64/128 only."""
    dt = np.dtype(dtype)
    if dt.kind in "biu" or (dt.kind == "f" and dt.itemsize in (2, 4, 8)) or (dt.kind == "c" and dt.itemsize in (8, 16)):
        return dt
    raise ValueError(f"Unsupported dtype {dt}")


def _root_of(a: np.ndarray) -> np.ndarray:
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    """A new device allocation (uninitialised: filled with 0xFF bytes, see ``control.poison``)."""
    dt = check_dtype(dtype)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError("negative dimensions are not allowed")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    buf = raw[start : start + nbytes]
    mem = _Memory(raw, nbytes)
    if MODEL_OPTIONS["poison"]:
        buf.fill(_POISON)
    return ndarray._wrap(buf.view(dt).reshape(shape, order="F" if order in ("F", "f") else "C"), mem)


MODEL_OPTIONS = {"poison": True}


def from_host(host: np.ndarray, dtype: Any = None, order: str = "K") -> ndarray:
    """Copy a host array to a new device allocation (one host-to-device transfer)."""
    host = np.asarray(host)
    dt = check_dtype(host.dtype if dtype is None else dtype)
    if order in ("K", "A", None):
        order = "F" if host.flags.f_contiguous and not host.flags.c_contiguous else "C"
    out = empty(host.shape, dt, order)
    MODEL.transfer("h2d", out.nbytes)
    with np.errstate(all="ignore"):
        np.copyto(out._a, host, casting="unsafe")
    return out


class Roots:
    """The allocations of a call's device inputs, to tell views of them from new results."""

    __slots__ = ("by_id", "arrays")

    def __init__(self) -> None:
        self.by_id: dict[int, _Memory] = {}
        self.arrays: dict[int, ndarray] = {}

    def add(self, x: ndarray) -> np.ndarray:
        self.by_id[id(x._mem.root)] = x._mem
        self.arrays[id(x._a)] = x
        return x._a


def wrap_result(res: Any, roots: Roots | None = None) -> Any:
    """numpy results → device arrays: views of inputs share their allocation, the rest allocate.

    numpy scalars (a reduction's result) become 0-d device arrays, as cupy returns them.
    """
    if isinstance(res, np.ndarray):
        if roots is not None:
            same = roots.arrays.get(id(res))
            if same is not None:
                return same
        root = _root_of(res)
        mem = roots.by_id.get(id(root)) if roots is not None else None
        if mem is None:
            if root.base is not None:  # a view of foreign memory: copy it into an allocation of its own
                res = res.copy()
                root = res
            check_dtype(res.dtype)
            mem = _Memory(root, root.nbytes)
        return ndarray._wrap(res, mem)
    if isinstance(res, np.generic):
        return wrap_result(np.array(res))
    if isinstance(res, tuple):
        if hasattr(res, "_fields"):  # a namedtuple (unique_all, …)
            return type(res)(*(wrap_result(r, roots) for r in res))
        return tuple(wrap_result(r, roots) for r in res)
    if isinstance(res, list):
        return [wrap_result(r, roots) for r in res]
    return res


def unsupported(x: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")


def unwrap(obj: Any, roots: Roots, *, host_ok: bool = False) -> Any:
    """Device arrays → their numpy views; a numpy array is refused unless ``host_ok`` (then copied over)."""
    if isinstance(obj, ndarray):
        return roots.add(obj)
    if isinstance(obj, np.ndarray):
        if not host_ok:
            raise unsupported(obj)
        MODEL.transfer("h2d", obj.nbytes)
        return obj.copy()
    if isinstance(obj, (list, tuple)) and obj and not isinstance(obj, str):
        items = [unwrap(o, roots, host_ok=host_ok) for o in obj]
        return type(obj)(items) if not hasattr(obj, "_fields") else type(obj)(*items)
    if isinstance(obj, dict):
        return {k: unwrap(v, roots, host_ok=host_ok) for k, v in obj.items()}
    return obj


def as_out(out: Any, roots: Roots) -> Any:
    """An ``out=`` argument must be a device array (cupy refuses numpy outputs)."""
    if out is None:
        return None
    if isinstance(out, tuple):
        return tuple(as_out(o, roots) for o in out)
    if not isinstance(out, ndarray):
        raise TypeError(f"Output must be cupy.ndarray, not {type(out)}")
    return roots.add(out)


# --------------------------------------------------------------------------- indexing


def _index_axes(key: tuple, ndim: int) -> list[int | None]:
    """The first array axis each index entry applies to (None for ``None``/``Ellipsis``)."""
    used = 0
    for k in key:
        if k is None or k is Ellipsis:
            continue
        used += k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1
    axes: list[int | None] = []
    axis = 0
    for k in key:
        if k is None:
            axes.append(None)
        elif k is Ellipsis:
            axes.append(None)
            axis += ndim - used
        else:
            axes.append(axis)
            axis += k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1
    return axes


def prepare_index(a: ndarray, key: Any) -> tuple[tuple, bool]:
    """cupy's ``_prepare_slice_list``: index arrays onto the device, integer arrays wrapped around.

    Returns the numpy key and whether it holds index arrays (advanced indexing).
    """
    entries = list(key) if isinstance(key, tuple) else [key]
    out: list[Any] = []
    advanced = False
    for k in entries:
        if k is None or k is Ellipsis or isinstance(k, slice):
            out.append(k)
        elif isinstance(k, ndarray):
            out.append(k._a)
            advanced = True
        elif isinstance(k, (bool, np.bool_)):
            out.append(np.asarray(k))  # a scalar bool index: numpy semantics
            advanced = True
        elif np.isscalar(k):
            out.append(k)  # scalar int: a view
        else:
            host = np.asarray(k)
            if host.dtype.kind not in "biu" and not (host.size == 0 and isinstance(k, (list, tuple))):
                raise IndexError(f"arrays used as indices must be of integer or boolean type (actual: {host.dtype.type})")
            if host.size == 0 and isinstance(k, (list, tuple)):
                host = host.astype(np.int32)
            MODEL.transfer("h2d", host.nbytes)
            out.append(host.copy())
            advanced = True
    if advanced:
        axes = _index_axes(tuple(out), a.ndim)
        for i, (k, axis) in enumerate(zip(out, axes)):
            if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and axis is not None and axis < a.ndim:
                n = a.shape[axis]
                if n == 0 and k.size:
                    raise IndexError("cannot do a non-empty take from an empty axes.")
                if n:
                    out[i] = np.mod(k, np.int64(n))  # cupy wraps out-of-bounds indices around
            elif isinstance(k, np.ndarray) and k.dtype == bool and k.ndim > 0:
                MODEL.sync("boolean mask indexing")
    return tuple(out), advanced


# --------------------------------------------------------------------------- the array


def _should_use_rop(x: Any, y: Any) -> bool:
    """cupy's ``_should_use_rop``: defer to ``y`` only if it opted out of ufuncs or outranks us."""
    y_ufunc = getattr(y, "__array_ufunc__", _MISSING)
    if y_ufunc is not _MISSING:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)


_MISSING = object()


def _ufunc(name: str):
    from . import _functions

    return _functions.UFUNCS[name]


def _binary(name: str, npname: str | None = None):
    npfunc = getattr(np, npname or name)

    def op(self, other):
        if isinstance(other, ndarray):
            return _ufunc(name)(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        return npfunc(self, other)  # numpy dispatches to __array_ufunc__, as in cupy

    def rop(self, other):  # Cython shares op and rop: cupy computes (other op self) right away
        return _ufunc(name)(other, self)

    def iop(self, other):
        return _ufunc(name)(self, other, out=self)

    return op, rop, iop


def _compare(name: str):
    def op(self, other):
        if isinstance(other, ndarray):
            return _ufunc(name)(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        if isinstance(other, np.ndarray) and other.ndim == 0:
            other = other.item()
        if name in ("equal", "not_equal") and (other is None or type(other).__eq__ is object.__eq__):
            from . import _functions

            return (_functions.zeros if name == "equal" else _functions.ones)(self.shape, dtype=bool)
        return getattr(np, name)(self, other)

    return op


def _method(name: str, *, sync: str | None = None):
    """An ndarray method computed by numpy's method of the same name (strict arguments, device results)."""

    def method(self, *args, **kwargs):
        roots = Roots()
        a = roots.add(self)
        out = kwargs.pop("out", None)
        args = unwrap(args, roots)
        kwargs = unwrap(kwargs, roots)
        if out is not None:
            kwargs["out"] = as_out(out, roots)
        if sync:
            MODEL.sync(sync)
        with np.errstate(all="ignore"):
            res = getattr(a, name)(*args, **kwargs)
        if res is None:
            return None
        if out is not None and res is kwargs["out"]:
            return out
        return wrap_result(res, roots)

    method.__name__ = name
    return method


class _Flags:
    def __init__(self, a: np.ndarray, owndata: bool) -> None:
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = owndata

    def __getitem__(self, name: str) -> bool:
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous, "OWNDATA": self.owndata}[name]

    def __repr__(self) -> str:
        return f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n  OWNDATA : {self.owndata}"


class ndarray:
    """A device array (see the module docstring for what is modelled)."""

    __slots__ = ("_a", "_mem", "__weakref__")
    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None, order: str = "C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("gpu_double: ndarray(memptr=…, strides=…) is not modelled")
        new = empty(shape, dtype, order)
        self._a, self._mem = new._a, new._mem

    @classmethod
    def _wrap(cls, a: np.ndarray, mem: _Memory) -> ndarray:
        obj = object.__new__(cls)
        obj._a = a
        obj._mem = mem
        return obj

    # ------------------------------------------------------------------ attributes

    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @shape.setter
    def shape(self, value: Any) -> None:
        new = self._a.reshape(value)
        if new.size and _root_of(new) is not self._mem.root:
            raise AttributeError("incompatible shape")
        self._a = new

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def strides(self) -> tuple[int, ...]:
        return self._a.strides

    @property
    def itemsize(self) -> int:
        return self._a.itemsize

    @property
    def nbytes(self) -> int:
        return self._a.nbytes

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def T(self) -> ndarray:
        return ndarray._wrap(self._a.T, self._mem)

    @property
    def mT(self) -> ndarray:
        if self.ndim < 2:
            raise ValueError("matrix transpose with ndim < 2 is undefined")
        return ndarray._wrap(np.swapaxes(self._a, -1, -2), self._mem)

    @property
    def flags(self) -> _Flags:
        return _Flags(self._a, self._a.base is self._mem.root and self._a.nbytes == self._mem.nbytes)

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self._a.ctypes.data if self._a.size else 0, self._mem.device_id, self._mem)

    @property
    def device(self):
        from .cuda.device import Device

        return Device(self._mem.device_id)

    @property
    def real(self) -> ndarray:
        return ndarray._wrap(self._a.real, self._mem) if self.dtype.kind == "c" else self

    @real.setter
    def real(self, value: Any) -> None:
        self.real[...] = value

    @property
    def imag(self) -> ndarray:
        if self.dtype.kind == "c":
            return ndarray._wrap(self._a.imag, self._mem)
        from . import _functions

        return _functions.zeros(self.shape, self.dtype)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "descr": a.dtype.descr, "version": 3,
                "data": (a.ctypes.data if a.size else 0, False),
                "strides": None if a.flags.c_contiguous else a.strides,
                "stream": _stream.get_current_stream().ptr or 1}

    # ------------------------------------------------------------------ host conversion

    def __reduce__(self):
        """As cupy: pickling (dask tokenises arrays this way) copies the data to the host."""
        from . import _functions

        return _functions.array, (self.get(order="A"),)

    def __array__(self, dtype: Any = None, copy: Any = None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream: Any = None, order: str = "C", out: np.ndarray | None = None, blocking: bool = True):
        """Copy to the host (one device-to-host transfer; waits for the stream when ``blocking``)."""
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained fromcupy.ndarray")
            if self.dtype != out.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if self.shape != out.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
            np.copyto(out, self._a)
            result = out
        else:
            if order == "A":
                order = "F" if self._a.flags.f_contiguous and not self._a.flags.c_contiguous else "C"
            result = np.array(self._a, order=order, copy=True)
        MODEL.transfer("d2h", self.nbytes)
        if blocking:
            MODEL.sync("get")
        return result

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Copy a host array of the same shape and dtype in (one host-to-device transfer)."""
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        MODEL.transfer("h2d", arr.nbytes)
        np.copyto(self._a, arr)

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self) -> Any:
        return self.get().tolist()

    def tobytes(self, order: str = "C") -> bytes:
        return self.get().tobytes(order)

    def __int__(self) -> int:
        return int(self.get())

    def __float__(self) -> float:
        return float(self.get())

    def __complex__(self) -> complex:
        return complex(self.get())

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error. Use `array.size > 0` to check that an array is not empty.",
                          DeprecationWarning, stacklevel=2)
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() or a.all()")

    def __repr__(self) -> str:
        return repr(self.get())

    def __str__(self) -> str:
        return str(self.get())

    def __format__(self, spec: str) -> str:
        return format(self.get(), spec)

    # ------------------------------------------------------------------ numpy protocols

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
        from . import _functions

        inout = inputs
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            inout += out
            kwargs["out"] = out[0]
        if method not in ("__call__", "outer", "at", "reduce", "accumulate", "reduceat"):
            return NotImplemented
        func = _functions.UFUNCS.get(ufunc.__name__)
        if func is None:
            return NotImplemented
        if method != "__call__":
            func = getattr(func, method)
        for x in inout:
            if (type(x) not in SCALAR_TYPES and not isinstance(x, (ndarray, np.ndarray))
                    and not hasattr(x, "__cuda_array_interface__")):
                return NotImplemented
        if ufunc.__name__ in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
        return func(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Iterable[type], args: tuple, kwargs: dict):
        import sys

        cupy = sys.modules[__name__.rsplit(".", 1)[0]]
        try:
            module = cupy
            for part in func.__module__.split(".")[1:]:
                module = getattr(module, part)
            cupy_func = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        if cupy_func is func:
            return NotImplemented
        for t in types:
            if not issubclass(t, (ndarray, np.ndarray)):
                return NotImplemented
        return cupy_func(*args, **kwargs)

    # ------------------------------------------------------------------ container

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key: Any) -> ndarray:
        nkey, _ = prepare_index(self, key)
        res = self._a[nkey]
        if not isinstance(res, np.ndarray):  # every index an integer: cupy returns a 0-d view
            res = self._a[(*nkey, Ellipsis)]
        roots = Roots()
        roots.add(self)
        return wrap_result(res, roots) if res is not self._a else ndarray._wrap(res, self._mem)

    def __setitem__(self, key: Any, value: Any) -> None:
        nkey, advanced = prepare_index(self, key)
        if isinstance(value, ndarray):
            v: Any = value._a
        elif advanced:
            if isinstance(value, (np.ndarray, list, tuple)):
                v = np.array(value, dtype=self.dtype)
                MODEL.transfer("h2d", v.nbytes)
            elif type(value) in SCALAR_TYPES:
                v = value
            else:
                raise unsupported(value)
        else:
            if type(value) not in SCALAR_TYPES and not isinstance(value, (np.ndarray, list, tuple)):
                raise unsupported(value)
            host = np.asarray(value, dtype=self.dtype)  # cupy's fill(): only scalars may come from the host
            if host.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            v = host[()]
        with np.errstate(all="ignore"):
            self._a[nkey] = v

    # ------------------------------------------------------------------ methods

    def copy(self, order: str = "C") -> ndarray:
        out = empty(self.shape, self.dtype, "F" if order == "F" or (order in ("A", "K") and self._a.flags.f_contiguous
                                                                    and not self._a.flags.c_contiguous) else "C")
        np.copyto(out._a, self._a)
        return out

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> ndarray:
        return self.copy()

    def astype(self, dtype: Any, order: str = "K", casting: Any = None, subok: Any = None, copy: bool = True) -> ndarray:
        dt = check_dtype(dtype)
        if not copy and dt == self.dtype and (order in ("K", "A") or
                                              (order == "C" and self._a.flags.c_contiguous) or
                                              (order == "F" and self._a.flags.f_contiguous)):
            return self
        if order == "K":
            order = "F" if self._a.flags.f_contiguous and not self._a.flags.c_contiguous else "C"
        out = empty(self.shape, dt, "F" if order == "F" else "C")
        with np.errstate(all="ignore"):
            np.copyto(out._a, self._a, casting=casting or "unsafe")
        return out

    def view(self, dtype: Any = None, array_class: Any = None) -> ndarray:
        return ndarray._wrap(self._a.view() if dtype is None else self._a.view(check_dtype(dtype)), self._mem)

    def fill(self, value: Any) -> None:
        if isinstance(value, ndarray):
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            self._a[...] = value._a
            return
        host = np.asarray(value, dtype=self.dtype)
        if host.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._a[...] = host[()]

    def reshape(self, *shape: Any, order: str = "C", copy: Any = None) -> ndarray:
        if len(shape) == 1 and not np.isscalar(shape[0]):
            shape = tuple(shape[0])
        res = self._a.reshape(shape, order=order)
        if _root_of(res) is self._mem.root:
            return ndarray._wrap(res, self._mem)
        return wrap_result(res)

    def ravel(self, order: str = "C") -> ndarray:
        return self.reshape(-1, order=order)

    def flatten(self, order: str = "C") -> ndarray:
        return wrap_result(self._a.flatten(order))

    def transpose(self, *axes: Any) -> ndarray:
        return ndarray._wrap(self._a.transpose(*axes), self._mem)

    def swapaxes(self, axis1: int, axis2: int) -> ndarray:
        return ndarray._wrap(self._a.swapaxes(axis1, axis2), self._mem)

    def squeeze(self, axis: Any = None) -> ndarray:
        return ndarray._wrap(self._a.squeeze(axis), self._mem)

    def take(self, indices: Any, axis: Any = None, out: Any = None) -> ndarray:
        from . import _functions

        return _functions.take(self, indices, axis=axis, out=out)

    def nonzero(self) -> tuple:
        MODEL.sync("nonzero")
        return wrap_result(self._a.nonzero())

    def sort(self, axis: int = -1, kind: Any = None) -> None:
        self._a.sort(axis=axis, kind="stable" if kind == "stable" else None)

    def partition(self, kth: int, axis: int = -1) -> None:
        self._a.partition(kth, axis=axis)

    def dot(self, b: ndarray, out: Any = None) -> ndarray:
        from . import _functions

        return _functions.dot(self, b, out=out)

    def __dlpack__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("gpu_double: DLPack is not modelled")

    def reduced_view(self, dtype: Any = None) -> ndarray:
        return self

    # reductions and the rest: numpy's methods, with device results
    max = _method("max")
    min = _method("min")
    argmax = _method("argmax")
    argmin = _method("argmin")
    sum = _method("sum")
    prod = _method("prod")
    mean = _method("mean")
    var = _method("var")
    std = _method("std")
    all = _method("all")
    any = _method("any")
    cumsum = _method("cumsum")
    cumprod = _method("cumprod")

    def clip(self, min: Any = None, max: Any = None, out: Any = None) -> ndarray:
        from . import _functions

        return _functions.clip(self, min, max, out=out)

    round = _method("round")
    trace = _method("trace")
    diagonal = _method("diagonal")
    conj = _method("conj")
    conjugate = _method("conjugate")
    repeat = _method("repeat")
    argsort = _method("argsort")
    argpartition = _method("argpartition")
    searchsorted = _method("searchsorted")
    compress = _method("compress", sync="compress")
    choose = _method("choose")
    put = _method("put")

    def ptp(self, axis: Any = None, out: Any = None, keepdims: bool = False) -> ndarray:
        from . import _functions

        return _functions.ptp(self, axis=axis, out=out, keepdims=keepdims)

    # ------------------------------------------------------------------ operators

    __add__, __radd__, __iadd__ = _binary("add")
    __sub__, __rsub__, __isub__ = _binary("subtract")
    __mul__, __rmul__, __imul__ = _binary("multiply")
    __truediv__, __rtruediv__, __itruediv__ = _binary("true_divide", "divide")
    __floordiv__, __rfloordiv__, __ifloordiv__ = _binary("floor_divide")
    __mod__, __rmod__, __imod__ = _binary("remainder")
    __pow__, __rpow__, __ipow__ = _binary("power")
    __lshift__, __rlshift__, __ilshift__ = _binary("left_shift")
    __rshift__, __rrshift__, __irshift__ = _binary("right_shift")
    __and__, __rand__, __iand__ = _binary("bitwise_and")
    __or__, __ror__, __ior__ = _binary("bitwise_or")
    __xor__, __rxor__, __ixor__ = _binary("bitwise_xor")
    __lt__ = _compare("less")
    __le__ = _compare("less_equal")
    __eq__ = _compare("equal")
    __ne__ = _compare("not_equal")
    __gt__ = _compare("greater")
    __ge__ = _compare("greater_equal")

    def __divmod__(self, other: Any):
        return _ufunc("divmod")(self, other)

    def __rdivmod__(self, other: Any):
        return _ufunc("divmod")(other, self)

    def __matmul__(self, other: Any):
        from . import _functions

        return _functions.matmul(self, other)

    def __rmatmul__(self, other: Any):
        from . import _functions

        return _functions.matmul(other, self)

    def __neg__(self) -> ndarray:
        return _ufunc("negative")(self)

    def __pos__(self) -> ndarray:
        return _ufunc("positive")(self)

    def __abs__(self) -> ndarray:
        return _ufunc("absolute")(self)

    def __invert__(self) -> ndarray:
        return _ufunc("invert")(self)


ndarray.__module__ = "cupy"
ndarray.__qualname__ = ndarray.__name__ = "ndarray"
