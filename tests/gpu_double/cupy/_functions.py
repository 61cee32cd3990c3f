"""The ``cupy`` namespace: numpy's routines made strict about which side of the bus their arrays are on.

Every routine cupy implements is mapped onto the numpy routine of the same name, with these
rules (all from cupy's source):

* ufuncs accept device arrays and Python/numpy *scalars* only; a ``numpy.ndarray`` (0-d
  included) or a list raises ``TypeError: Unsupported type …`` (cupy/_core/_kernel.pyx);
  ``out=`` must be a device array; extra keywords raise ``TypeError: Wrong arguments``;
* other routines refuse ``numpy.ndarray`` arguments the same way, except those cupy documents
  as host-accepting: ``asarray``/``array``/``asanyarray`` (one host-to-device copy),
  ``asnumpy``, ``*_like`` (only the prototype's shape and dtype are read) and index arrays;
* results are device arrays, 0-d for reductions (never numpy scalars), and views of their
  inputs share the inputs' allocation;
* routines whose cupy implementation waits for the device count a synchronisation:
  ``bincount`` (two: its negativity check and its ``int(max)``), ``nonzero``, one-argument
  ``where``, ``argwhere``, ``flatnonzero``, ``unique``, ``extract``, ``compress``,
  ``histogram``;
* floating-point warnings are silenced (GPUs raise none).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._model import MODEL
from . import _core
from ._core import Roots, as_out, ndarray, unwrap, wrap_result


def _words(text: str) -> list[str]:
    return text.split()


# ufuncs cupy provides (cupy/__init__.py), by cupy name
UFUNC_NAMES = _words(
    "absolute add arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and bitwise_count bitwise_or "
    "bitwise_xor cbrt ceil conjugate copysign cos cosh deg2rad degrees divide divmod equal exp exp2 expm1 fabs "
    "float_power floor floor_divide fmax fmin fmod frexp gcd greater greater_equal heaviside hypot invert isfinite "
    "isinf isnan lcm ldexp left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and "
    "logical_not logical_or logical_xor maximum minimum modf multiply negative nextafter not_equal positive power "
    "rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh sqrt square subtract tan tanh "
    "trunc"
)
UFUNC_ALIASES = {
    "abs": "absolute", "conj": "conjugate", "true_divide": "divide", "mod": "remainder", "bitwise_not": "invert",
    "acos": "arccos", "asin": "arcsin", "atan": "arctan", "atan2": "arctan2", "acosh": "arccosh",
    "asinh": "arcsinh", "atanh": "arctanh", "pow": "power", "bitwise_left_shift": "left_shift",
    "bitwise_right_shift": "right_shift", "bitwise_invert": "invert",
}
# routines cupy implements that map one to one onto numpy's
GENERIC_NAMES = _words(
    "all amax amin angle any append apply_along_axis apply_over_axes argmax argmin argpartition argsort around "
    "array_split astype atleast_1d atleast_2d atleast_3d average bartlett blackman broadcast_arrays broadcast_to "
    "choose clip column_stack concatenate convolve corrcoef correlate cov cross cumprod cumsum cumulative_prod "
    "cumulative_sum delete diag diag_indices diag_indices_from diagflat diagonal diff digitize dot dsplit dstack "
    "ediff1d einsum expand_dims eye fill_diagonal fix flip fliplr flipud gradient hamming hanning hsplit hstack i0 "
    "identity imag indices inner interp intersect1d isclose iscomplex iscomplexobj isfortran isin isneginf "
    "isposinf isreal isrealobj ix_ kaiser kron lexsort linspace logspace mask_indices matmul matrix_transpose max "
    "mean median meshgrid min moveaxis nan_to_num nanargmax nanargmin nancumprod nancumsum nanmax nanmean "
    "nanmedian nanmin nanprod nanstd nansum nanvar outer packbits pad partition percentile piecewise place poly "
    "polyadd polyfit polymul polysub polyval prod put put_along_axis putmask quantile ravel ravel_multi_index real "
    "real_if_close repeat reshape resize roll rollaxis roots rot90 round searchsorted select setdiff1d setxor1d "
    "sinc sort sort_complex split squeeze stack std sum swapaxes take_along_axis tensordot tile trace transpose "
    "trapezoid tri tril tril_indices tril_indices_from trim_zeros triu triu_indices triu_indices_from union1d "
    "unpackbits unravel_index unwrap vander var vdot vsplit vstack arange"
)
GENERIC_ALIASES = {"concat": "concatenate", "permute_dims": "transpose", "alltrue": "all", "sometrue": "any",
                   "trapz": "trapezoid", "row_stack": "vstack"}
SYNCING_NAMES = {"argwhere": "argwhere", "flatnonzero": "flatnonzero", "unique": "unique",
                 "unique_all": "unique", "unique_counts": "unique", "unique_inverse": "unique",
                 "unique_values": "unique", "extract": "extract", "compress": "compress",
                 "histogram": "histogram", "histogram2d": "histogram", "histogramdd": "histogram"}
# names cupy re-exports from numpy unchanged
PASSTHROUGH_NAMES = _words(
    "e euler_gamma inf nan newaxis pi complexfloating floating generic inexact integer number signedinteger "
    "unsignedinteger bool_ byte short intc int_ longlong intp int8 int16 int32 int64 ubyte ushort uintc uint "
    "ulonglong uintp uint8 uint16 uint32 uint64 half single double float16 float32 float64 csingle cdouble "
    "complex64 complex128 promote_types dtype finfo iinfo issubdtype isdtype mintypecode typename index_exp "
    "ndindex s_ get_printoptions set_printoptions printoptions iterable broadcast_shapes bool long ulong isscalar"
)
PASSTHROUGH_ALIASES = {"float_": "float64", "singlecomplex": "complex64", "cfloat": "complex128",
                       "complex_": "complex128"}



def _silenced(func, *args, **kwargs):
    with np.errstate(all="ignore"):
        return func(*args, **kwargs)


class ufunc:
    """A cupy universal function: numpy's ufunc, strict about host operands (see the module docstring)."""

    def __init__(self, np_ufunc: np.ufunc, name: str) -> None:
        self._np = np_ufunc
        self.name = self.__name__ = name
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs
        self.types = np_ufunc.types
        self.__doc__ = np_ufunc.__doc__

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"

    @staticmethod
    def _operand(x: Any, roots: Roots) -> Any:
        if isinstance(x, ndarray):
            return roots.add(x)
        if type(x) in _core.SCALAR_TYPES:
            return x
        raise _core.unsupported(x)

    def __call__(self, *args: Any, out: Any = None, dtype: Any = None, casting: str = "same_kind",
                 _where: Any = None, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if not self.nin <= len(args) <= self.nargs:
            raise TypeError(f"Wrong number of arguments for {self.name!r}. It must be either {self.nin} or "
                            f"{self.nargs} (with outputs), but given {len(args)}.")
        in_args, out_args = args[: self.nin], args[self.nin :]
        if out is not None:
            if out_args:
                raise ValueError("Cannot specify 'out' as both a positional and keyword argument")
            out_args = out if isinstance(out, tuple) else (out,)
            if len(out_args) != self.nout:
                raise ValueError("The 'out' tuple must have exactly one entry per ufunc output")
        roots = Roots()
        ins = [self._operand(x, roots) for x in in_args]
        outs = [None if o is None else as_out(o, roots) for o in out_args]
        extra: dict[str, Any] = {"casting": casting}
        if dtype is not None:
            extra["dtype"] = dtype
        if _where is not None:
            extra["where"] = self._operand(_where, roots)
        if any(o is not None for o in outs):
            extra["out"] = tuple(outs) + (None,) * (self.nout - len(outs))
        res = _silenced(self._np, *ins, **extra)
        given = list(out_args)
        if self.nout == 1:
            return given[0] if given and given[0] is not None else wrap_result(res, roots)
        return tuple(g if g is not None else wrap_result(r, roots)
                     for g, r in zip(given + [None] * (self.nout - len(given)), res))

    def _array_method(self, method: str, array: Any, *args: Any, out: Any = None, **kwargs: Any) -> Any:
        roots = Roots()
        a = self._operand(array, roots)
        if not isinstance(array, ndarray):
            raise _core.unsupported(array)
        args = unwrap(args, roots)
        kwargs = unwrap(kwargs, roots)
        o = as_out(out, roots)
        if o is not None:
            kwargs["out"] = o
        res = _silenced(getattr(self._np, method), a, *args, **kwargs)
        return out if out is not None else wrap_result(res, roots)

    # cupy implements reduce/accumulate for add and multiply only, reduceat for add only (_kernel.pyx)
    def reduce(self, array: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        if self.name not in ("add", "multiply"):
            raise NotImplementedError(f"`{self.name}.reduce` is not supported yet")
        return self._array_method("reduce", array, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def accumulate(self, array: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
        if self.name not in ("add", "multiply"):
            raise NotImplementedError(f"`{self.name}.accumulate` is not supported yet")
        return self._array_method("accumulate", array, axis=axis, dtype=dtype, out=out)

    def reduceat(self, array: Any, indices: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
        if self.name != "add":
            raise NotImplementedError(f"`{self.name}.reduceat` is not supported yet")
        return self._array_method("reduceat", array, indices, axis=axis, dtype=dtype, out=out)

    def outer(self, A: Any, B: Any, **kwargs: Any) -> Any:
        roots = Roots()
        res = _silenced(self._np.outer, self._operand(A, roots), self._operand(B, roots), **kwargs)
        return wrap_result(res, roots)

    def at(self, a: Any, indices: Any, b: Any = None) -> None:
        """cupy's scatter ops (atomics): only some ufuncs, and with integer indices only some dtypes."""
        allowed = AT_DTYPES.get(self.name)
        if allowed is None:
            raise NotImplementedError(f"`{self.name}.at` is not supported yet")
        if not isinstance(a, ndarray):
            raise _core.unsupported(a)
        key, _ = _core.prepare_index(a, indices)
        masked = any(isinstance(k, np.ndarray) and k.dtype == bool for k in key)
        if not masked and any(isinstance(k, np.ndarray) for k in key) and a.dtype.char not in allowed:
            names = ", ".join(str(np.dtype(c)) for c in dict.fromkeys(np.dtype(c).name for c in allowed))
            raise TypeError(f"cupy.{self.name}.at only supports {names} as data type")
        if isinstance(b, ndarray):
            value = b._a
        elif isinstance(b, (np.ndarray, list, tuple)):
            value = np.array(b, dtype=a.dtype)
            MODEL.transfer("h2d", value.nbytes)
        else:
            value = b
        _silenced(self._np.at, a._a, key, value)


ufunc.__module__ = "cupy"
# dtypes (chars) each scatter op supports with integer indices (cupy/_core/_routines_indexing.pyx)
AT_DTYPES = {"add": "iqlefdIQL", "subtract": "iI", "maximum": "iqlfdIQL", "minimum": "iqlfdIQL",
             "bitwise_and": "iqlIQL", "bitwise_or": "iqlIQL", "bitwise_xor": "iqlIQL"}
UFUNCS: dict[str, ufunc] = {}
for _name in UFUNC_NAMES:
    _f = getattr(np, _name)
    UFUNCS[_name] = UFUNCS[_f.__name__] = ufunc(_f, _name)
for _alias, _target in UFUNC_ALIASES.items():
    UFUNCS[_alias] = UFUNCS[_target]


def _generic(name: str, np_func: Any, sync: str | None = None):
    """A cupy routine computed by numpy: device arrays in (numpy arrays refused), device arrays out."""

    def routine(*args: Any, **kwargs: Any) -> Any:
        roots = Roots()
        out = kwargs.pop("out", None)
        args = unwrap(args, roots)
        kwargs = unwrap(kwargs, roots)
        if out is not None:
            kwargs["out"] = as_out(out, roots)
        if sync:
            MODEL.sync(sync)
        res = _silenced(np_func, *args, **kwargs)
        if out is not None and res is kwargs["out"]:
            return out
        return wrap_result(res, roots)

    routine.__name__ = routine.__qualname__ = name
    routine.__module__ = "cupy"
    routine.__doc__ = f"cupy.{name} (gpu_double: numpy.{getattr(np_func, '__name__', name)} on device arrays)"
    return routine


def _to_array_result(name: str, np_func: Any, dtype: Any):
    """numpy returns a Python scalar here; cupy returns a 0-d device array."""
    gen = _generic(name, np_func)

    def routine(*args: Any, **kwargs: Any) -> Any:
        res = gen(*args, **kwargs)
        return wrap_result(np.array(res, dtype=dtype)) if not isinstance(res, ndarray) else res

    routine.__name__ = name
    return routine


# --------------------------------------------------------------------------- creation


def _shape_tuple(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return _core.empty(shape, dtype, order)


def zeros(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    a = _core.empty(shape, dtype, order)
    a._a[...] = 0
    return a


def ones(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    a = _core.empty(shape, dtype, order)
    a._a[...] = 1
    return a


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C") -> ndarray:
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, ndarray) else np.array(fill_value).dtype
    a = _core.empty(shape, dtype, order)
    a.fill(fill_value)
    return a


def _like_shape(prototype: Any, shape: Any) -> tuple[int, ...]:
    return _shape_tuple(shape) if shape is not None else tuple(prototype.shape)


def _like_order(prototype: Any, order: str) -> str:
    if order in ("K", "A"):
        flags = getattr(prototype, "flags", None)
        return "F" if flags is not None and flags.f_contiguous and not flags.c_contiguous else "C"
    return order


def empty_like(prototype: Any, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    if subok is not None:
        raise TypeError("subok is not supported yet")
    return _core.empty(_like_shape(prototype, shape), dtype or prototype.dtype, _like_order(prototype, order))


def zeros_like(prototype: Any, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    a = empty_like(prototype, dtype, order, subok, shape)
    a._a[...] = 0
    return a


def ones_like(prototype: Any, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    a = empty_like(prototype, dtype, order, subok, shape)
    a._a[...] = 1
    return a


def full_like(prototype: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: Any = None,
              shape: Any = None) -> ndarray:
    a = empty_like(prototype, dtype, order, subok, shape)
    a.fill(fill_value)
    return a


def _contains_device_array(obj: Any) -> bool:
    if isinstance(obj, ndarray):
        return True
    return isinstance(obj, (list, tuple)) and any(_contains_device_array(o) for o in obj)


def _contains_host_array(obj: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return True
    return isinstance(obj, (list, tuple)) and any(_contains_host_array(o) for o in obj)


def array(obj: Any, dtype: Any = None, copy: Any = True, order: str = "K", subok: bool = False, ndmin: int = 0,
          *, blocking: bool = False) -> ndarray:
    """Device copy of ``obj``: device arrays are copied on the device, anything else crosses the bus once."""
    if subok:
        raise NotImplementedError
    if isinstance(obj, ndarray):
        result = obj.astype(dtype or obj.dtype, order=order or "K", copy=bool(copy))
    elif isinstance(obj, (list, tuple)) and _contains_device_array(obj):
        if _contains_host_array(obj) or not all(isinstance(o, ndarray) or _contains_device_array(o) for o in obj):
            raise TypeError("Only cupy arrays can be concatenated")
        parts = [array(o) if isinstance(o, (list, tuple)) else o for o in obj]
        result = stack(parts)
        if dtype is not None:
            result = result.astype(dtype, copy=False)
    elif hasattr(obj, "__cuda_array_interface__"):
        raise NotImplementedError("gpu_double: foreign __cuda_array_interface__ objects are not modelled")
    else:
        host = np.array(obj, dtype=dtype, order=order if order in ("C", "F") else "K")
        if host.dtype == object:
            raise ValueError(f"Unsupported dtype {host.dtype}")
        if dtype is None and host.dtype.kind in "US":
            raise ValueError(f"Unsupported dtype {host.dtype}")
        result = _core.from_host(host, order=order)
        if blocking:
            MODEL.sync("array(blocking=True)")
    if ndmin > result.ndim:
        result = result.reshape((1,) * (ndmin - result.ndim) + result.shape)
    return result


def asarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> ndarray:
    """``a`` itself if it is already a device array of that dtype, else a (device or host-to-device) copy."""
    if isinstance(a, ndarray):
        return a.astype(dtype if dtype is not None else a.dtype, order=order or "K", copy=False)
    return array(a, dtype, copy=False, order=order or "K", blocking=blocking)


def asanyarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> ndarray:
    return asarray(a, dtype, order, blocking=blocking)


def _require_device(a: Any, name: str = "a") -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument '{name}' has incorrect type (expected cupy._core.core._ndarray_base, "
                        f"got {type(a).__name__})")
    return a


def ascontiguousarray(a: Any, dtype: Any = None) -> ndarray:
    _require_device(a)
    dt = np.dtype(dtype) if dtype is not None else a.dtype
    if a._a.flags.c_contiguous and dt == a.dtype:
        return a
    return a.astype(dt, order="C")


def asfortranarray(a: Any, dtype: Any = None) -> ndarray:
    _require_device(a)
    dt = np.dtype(dtype) if dtype is not None else a.dtype
    if a._a.flags.f_contiguous and dt == a.dtype:
        return a
    return a.astype(dt, order="F")


def asarray_chkfinite(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    a = asarray(a, dtype, order)
    if not bool(isfinite(a).all()):
        raise ValueError("array must not contain infs or NaNs")
    return a


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, *, blocking: bool = True) -> np.ndarray:
    """Host copy of a device array; anything else goes through ``numpy.asarray``."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    if hasattr(a, "__cuda_array_interface__"):
        raise NotImplementedError("gpu_double: foreign __cuda_array_interface__ objects are not modelled")
    temp = np.asarray(a, order=order)
    if out is not None:
        out[...] = temp
        return out
    return temp


def copy(a: Any, order: str = "K") -> ndarray:
    return _require_device(a).copy(order="C" if order == "K" else order)


def copyto(dst: Any, src: Any, casting: str = "same_kind", where: Any = None) -> None:
    roots = Roots()
    d = as_out(dst, roots)
    s = src._a if isinstance(src, ndarray) else src
    if isinstance(src, np.ndarray) or (not isinstance(src, ndarray) and type(src) not in _core.SCALAR_TYPES):
        raise _core.unsupported(src)
    w = None
    if where is not None:
        if not isinstance(where, ndarray):
            raise _core.unsupported(where)
        w = where._a
    _silenced(np.copyto, d, s, casting=casting, where=True if w is None else w)


# --------------------------------------------------------------------------- routines with cupy-specific behaviour


def bincount(x: Any, weights: Any = None, minlength: Any = None) -> ndarray:
    """cupy.bincount: checks as cupy, two synchronisations (``(x < 0).any()`` and ``int(x.max())``)."""
    if not isinstance(x, ndarray):
        raise _core.unsupported(x)
    if x.ndim > 1:
        raise ValueError("object too deep for desired array")
    if x.ndim < 1:
        raise ValueError("object of too small depth for desired array")
    if x.dtype.kind == "f":
        raise TypeError("x must be int array")
    if x.size and x.dtype.kind == "i":
        MODEL.sync("bincount")  # if (x < 0).any(): synchronize!
        if (x._a < 0).any():
            raise ValueError("The first argument of bincount must be non-negative")
    elif x.size:
        MODEL.sync("bincount")
    if weights is not None:
        if not isinstance(weights, ndarray):
            raise _core.unsupported(weights)
        if x.shape != weights.shape:
            raise ValueError("The weights and list don't have the same length.")
    if minlength is not None:
        minlength = int(minlength)
        if minlength < 0:
            raise ValueError("minlength must be non-negative")
    if x.size == 0:
        return zeros((minlength or 0,), dtype=np.intp)
    MODEL.sync("bincount")  # size = int(cupy.max(x)) + 1: synchronize!
    size = int(x._a.max()) + 1
    if minlength is not None:
        size = max(size, minlength)
    idx = x._a.astype(np.int64, copy=False)
    if weights is None:
        return wrap_result(np.bincount(idx, minlength=size).astype(np.intp, copy=False))
    return wrap_result(np.bincount(idx, weights=weights._a.astype(np.float64), minlength=size))


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if (x is None) != (y is None):
        raise ValueError("Must provide both 'x' and 'y' or neither.")
    if x is None:
        return nonzero(condition)
    if not isinstance(condition, ndarray):
        raise _core.unsupported(condition)
    roots = Roots()
    args = [ufunc._operand(v, roots) for v in (condition, x, y)]
    return wrap_result(_silenced(np.where, args[0].astype(bool, copy=False), args[1], args[2]), roots)


def nonzero(a: Any) -> tuple:
    if not isinstance(a, ndarray):
        raise _core.unsupported(a)
    return a.nonzero()


def take(a: Any, indices: Any, axis: Any = None, out: Any = None) -> ndarray:
    """cupy.take: out-of-bounds indices wrap around (cupy never raises for them)."""
    _require_device(a)
    roots = Roots()
    src = roots.add(a)
    if isinstance(indices, ndarray):
        idx = roots.add(indices)
    elif np.isscalar(indices):
        idx = indices
    else:
        idx = np.asarray(indices)
        MODEL.transfer("h2d", idx.nbytes)
    o = as_out(out, roots)
    res = np.take(src, idx, axis=axis, out=o, mode="wrap")
    return out if out is not None else wrap_result(res, roots)


def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None) -> ndarray:
    """cupy.clip: an elementwise kernel, so the bounds must be device arrays or scalars (not lists or numpy)."""
    if not isinstance(a, ndarray):
        raise _core.unsupported(a)
    if a_min is None and a_max is None:
        raise ValueError("array_clip: must set either max or min")
    roots = Roots()
    x = roots.add(a)
    lo = None if a_min is None else ufunc._operand(a_min, roots)
    hi = None if a_max is None else ufunc._operand(a_max, roots)
    o = as_out(out, roots)
    res = _silenced(np.clip, x, lo, hi, out=o)
    return out if out is not None else wrap_result(res, roots)


def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> ndarray:
    return _generic("ptp", np.ptp)(a, axis=axis, out=out, keepdims=keepdims)


def result_type(*arrays_and_dtypes: Any) -> np.dtype:
    return np.result_type(*[x.dtype if isinstance(x, ndarray) else x for x in arrays_and_dtypes])


def can_cast(from_: Any, to: Any, casting: str = "safe") -> bool:
    return bool(np.can_cast(from_.dtype if isinstance(from_, ndarray) else from_, to, casting))


def min_scalar_type(a: Any) -> np.dtype:
    return a.dtype if isinstance(a, ndarray) else np.min_scalar_type(a)


def ndim(a: Any) -> int:
    return a.ndim if isinstance(a, ndarray) else np.ndim(a)


def shape(a: Any) -> tuple[int, ...]:
    return a.shape if isinstance(a, ndarray) else np.shape(a)


def size(a: Any, axis: Any = None) -> int:
    if isinstance(a, ndarray):
        return a.size if axis is None else a.shape[axis]
    return np.size(a, axis)


def shares_memory(a: Any, b: Any, max_work: Any = None) -> bool:
    if isinstance(a, ndarray) and isinstance(b, ndarray):
        return a._mem is b._mem and bool(np.shares_memory(a._a, b._a))
    return False


def may_share_memory(a: Any, b: Any, max_work: Any = None) -> bool:
    if isinstance(a, ndarray) and isinstance(b, ndarray):
        return a._mem is b._mem and bool(np.may_share_memory(a._a, b._a))
    return False


def get_array_module(*args: Any):
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__.rsplit(".", 1)[0]]
    return np


def _not_modelled(name: str):
    def routine(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"gpu_double: cupy.{name} is not modelled")

    routine.__name__ = name
    return routine


def build_namespace() -> dict[str, Any]:
    """Every name of the double's ``cupy`` module that comes from this file."""
    ns: dict[str, Any] = {}
    for name in PASSTHROUGH_NAMES:
        if hasattr(np, name):
            ns[name] = getattr(np, name)
    for alias, target in PASSTHROUGH_ALIASES.items():
        ns[alias] = getattr(np, target)
    for name in GENERIC_NAMES:
        ns[name] = _generic(name, getattr(np, name))
    for alias, target in GENERIC_ALIASES.items():
        ns[alias] = ns[target]
    for name, reason in SYNCING_NAMES.items():
        ns[name] = _generic(name, getattr(np, name), sync=reason)
    ns.update(UFUNCS)
    ns["count_nonzero"] = _to_array_result("count_nonzero", np.count_nonzero, np.intp)
    ns["allclose"] = _to_array_result("allclose", np.allclose, bool)
    ns["array_equal"] = _to_array_result("array_equal", np.array_equal, bool)
    ns["array_equiv"] = _to_array_result("array_equiv", np.array_equiv, bool)
    for name in ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like", "array",
                 "asarray", "asanyarray", "ascontiguousarray", "asfortranarray", "asarray_chkfinite", "asnumpy",
                 "copy", "copyto", "bincount", "where", "nonzero", "take", "clip", "ptp", "result_type", "can_cast",
                 "min_scalar_type", "ndim", "shape", "size", "shares_memory", "may_share_memory",
                 "get_array_module"):
        ns[name] = globals()[name]
    for name in ("c_", "r_", "mgrid", "ogrid", "vectorize", "fromfunction", "fromiter", "frombuffer", "fromfile",
                 "fromstring", "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt",
                 "from_dlpack", "fromDlpack", "fuse", "ElementwiseKernel", "ReductionKernel", "RawModule",
                 "poly1d", "broadcast", "require", "array2string", "array_repr", "array_str", "memoize",
                 "clear_memo", "binary_repr", "base_repr", "common_type"):
        ns[name] = _not_modelled(name)
    ns["ufunc"] = ufunc
    ns["ndarray"] = ndarray
    ns["AxisError"] = np.exceptions.AxisError
    ns["ComplexWarning"] = np.exceptions.ComplexWarning
    ns["VisibleDeprecationWarning"] = np.exceptions.VisibleDeprecationWarning
    ns["RankWarning"] = np.exceptions.RankWarning
    ns["ModuleDeprecationWarning"] = np.exceptions.ModuleDeprecationWarning
    ns["TooHardError"] = np.exceptions.TooHardError
    return ns


isfinite = UFUNCS["isfinite"]
stack = _generic("stack", np.stack)
dot = _generic("dot", np.dot)
matmul = _generic("matmul", np.matmul)
